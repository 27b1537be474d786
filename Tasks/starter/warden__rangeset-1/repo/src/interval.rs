use std::fmt;
use std::str::FromStr;

/// A half-open interval `[start, end)`. Empty when `start >= end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interval {
    pub start: i64,
    pub end: i64,
}

impl Interval {
    pub fn new(start: i64, end: i64) -> Interval {
        Interval { start, end }
    }

    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    pub fn len(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            (self.end as i128 - self.start as i128) as u64
        }
    }

    pub fn contains(&self, x: i64) -> bool {
        self.start <= x && x < self.end
    }

    /// True when the two intervals share at least one point.
    pub fn overlaps(&self, other: &Interval) -> bool {
        !self.is_empty() && !other.is_empty() && self.start < other.end && other.start < self.end
    }

    /// True when the two intervals overlap or are directly adjacent,
    /// i.e. their union is a single interval.
    pub fn touches(&self, other: &Interval) -> bool {
        !self.is_empty() && !other.is_empty() && self.start < other.end && other.start < self.end
    }

    pub fn intersection(&self, other: &Interval) -> Option<Interval> {
        let iv = Interval::new(self.start.max(other.start), self.end.min(other.end));
        if iv.is_empty() {
            None
        } else {
            Some(iv)
        }
    }

    /// Smallest interval covering both (only meaningful when they touch).
    pub fn hull(&self, other: &Interval) -> Interval {
        Interval::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct ParseIntervalError(pub String);

impl fmt::Display for ParseIntervalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid interval: {}", self.0)
    }
}

impl std::error::Error for ParseIntervalError {}

impl FromStr for Interval {
    type Err = ParseIntervalError;

    /// Accepts `a..b` (half-open), `a..=b` (inclusive) and a single integer `a`.
    fn from_str(s: &str) -> Result<Interval, ParseIntervalError> {
        let s = s.trim();
        let err = || ParseIntervalError(s.to_string());
        if let Some((a, b)) = s.split_once("..=") {
            let a: i64 = a.trim().parse().map_err(|_| err())?;
            let b: i64 = b.trim().parse().map_err(|_| err())?;
            let end = b.checked_add(1).ok_or_else(err)?;
            return Ok(Interval::new(a, end));
        }
        if let Some((a, b)) = s.split_once("..") {
            let a: i64 = a.trim().parse().map_err(|_| err())?;
            let b: i64 = b.trim().parse().map_err(|_| err())?;
            return Ok(Interval::new(a, b));
        }
        let a: i64 = s.parse().map_err(|_| err())?;
        let end = a.checked_add(1).ok_or_else(err)?;
        Ok(Interval::new(a, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_len() {
        assert!(Interval::new(3, 3).is_empty());
        assert!(Interval::new(4, 3).is_empty());
        assert_eq!(Interval::new(-2, 3).len(), 5);
        assert_eq!(Interval::new(4, 3).len(), 0);
    }

    #[test]
    fn contains_is_half_open() {
        let iv = Interval::new(1, 3);
        assert!(iv.contains(1));
        assert!(iv.contains(2));
        assert!(!iv.contains(3));
    }

    #[test]
    fn overlap_excludes_adjacent() {
        assert!(Interval::new(1, 3).overlaps(&Interval::new(2, 5)));
        assert!(!Interval::new(1, 3).overlaps(&Interval::new(3, 5)));
    }

    #[test]
    fn parse_forms() {
        assert_eq!("1..4".parse::<Interval>(), Ok(Interval::new(1, 4)));
        assert_eq!("1..=4".parse::<Interval>(), Ok(Interval::new(1, 5)));
        assert_eq!(" 7 ".parse::<Interval>(), Ok(Interval::new(7, 8)));
        assert!("x..3".parse::<Interval>().is_err());
    }
}
