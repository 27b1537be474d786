//! `rangeset`: sets of `i64` stored as sorted, disjoint, non-adjacent
//! half-open intervals `[start, end)`.
//!
//! Inserting `[1, 4)` and then `[4, 6)` yields the single interval `[1, 6)`.

mod interval;
mod set;

pub use interval::{Interval, ParseIntervalError};
pub use set::RangeSet;
