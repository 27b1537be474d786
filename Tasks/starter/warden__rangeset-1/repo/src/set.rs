use std::fmt;

use crate::interval::Interval;

/// A set of integers stored as sorted, disjoint, non-adjacent intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    ivs: Vec<Interval>,
}

impl RangeSet {
    pub fn new() -> RangeSet {
        RangeSet { ivs: Vec::new() }
    }

    pub fn from_intervals<I: IntoIterator<Item = Interval>>(items: I) -> RangeSet {
        let mut s = RangeSet::new();
        for iv in items {
            s.insert(iv.start, iv.end);
        }
        s
    }

    pub fn intervals(&self) -> &[Interval] {
        &self.ivs
    }

    pub fn is_empty(&self) -> bool {
        self.ivs.is_empty()
    }

    /// Number of integers in the set.
    pub fn len(&self) -> u64 {
        self.ivs.iter().map(|iv| iv.len()).sum()
    }

    /// Index of the first interval whose end is >= `x`.
    fn lower_bound(&self, x: i64) -> usize {
        let (mut lo, mut hi) = (0, self.ivs.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.ivs[mid].end <= x {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    pub fn contains(&self, x: i64) -> bool {
        let i = self.lower_bound(x);
        // the interval at i may end exactly at x (not containing it); check the next one too
        self.ivs[i..].iter().take(2).any(|iv| iv.contains(x))
    }

    /// Add `[start, end)`, merging with every interval it touches.
    pub fn insert(&mut self, start: i64, end: i64) {
        let mut new = Interval::new(start, end);
        if new.is_empty() {
            return;
        }
        let first = self.lower_bound(start);
        let mut last = first;
        while last < self.ivs.len() && self.ivs[last].touches(&new) {
            new = new.hull(&self.ivs[last]);
            last += 1;
        }
        self.ivs.splice(first..last, std::iter::once(new));
    }

    /// Remove `[start, end)` from the set, splitting intervals as needed.
    pub fn remove(&mut self, start: i64, end: i64) {
        let cut = Interval::new(start, end);
        if cut.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(self.ivs.len() + 1);
        for iv in &self.ivs {
            if !iv.overlaps(&cut) {
                out.push(*iv);
                continue;
            }
            if iv.start < cut.start {
                out.push(Interval::new(iv.start, cut.start));
            }
            if cut.end < iv.end {
                out.push(Interval::new(cut.end, iv.end));
            }
        }
        self.ivs = out;
    }

    pub fn union(&self, other: &RangeSet) -> RangeSet {
        let mut out = self.clone();
        for iv in &other.ivs {
            out.insert(iv.start, iv.end);
        }
        out
    }

    pub fn intersection(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < self.ivs.len() && j < other.ivs.len() {
            let (a, b) = (self.ivs[i], other.ivs[j]);
            if let Some(iv) = a.intersection(&b) {
                out.push(iv);
            }
            if a.end < b.end {
                i += 1;
            } else {
                j += 1;
            }
        }
        RangeSet { ivs: out }
    }

    pub fn difference(&self, other: &RangeSet) -> RangeSet {
        let mut out = self.clone();
        for iv in &other.ivs {
            out.remove(iv.start, iv.end);
        }
        out
    }

    /// The gaps between `lo` and `hi` not covered by the set.
    pub fn gaps(&self, lo: i64, hi: i64) -> RangeSet {
        let mut all = RangeSet::new();
        all.insert(lo, hi);
        all.difference(self)
    }

    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.ivs.iter().flat_map(|iv| iv.start..iv.end)
    }

    pub fn min(&self) -> Option<i64> {
        self.ivs.first().map(|iv| iv.start)
    }

    pub fn max(&self) -> Option<i64> {
        self.ivs.last().map(|iv| iv.end - 1)
    }
}

impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ivs.is_empty() {
            return write!(f, "{{}}");
        }
        let parts: Vec<String> = self.ivs.iter().map(|iv| iv.to_string()).collect();
        write!(f, "{}", parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_bound_finds_first_candidate() {
        let s = RangeSet::from_intervals(vec![Interval::new(0, 2), Interval::new(5, 8)]);
        assert_eq!(s.lower_bound(-3), 0);
        assert_eq!(s.lower_bound(3), 1);
        assert_eq!(s.lower_bound(9), 2);
    }
}
