use rangeset::{Interval, RangeSet};

fn set(pairs: &[(i64, i64)]) -> RangeSet {
    RangeSet::from_intervals(pairs.iter().map(|&(a, b)| Interval::new(a, b)))
}

#[test]
fn insert_disjoint_keeps_order() {
    let s = set(&[(10, 12), (1, 3), (5, 7)]);
    assert_eq!(s.to_string(), "[1, 3) [5, 7) [10, 12)");
}

#[test]
fn insert_overlapping_merges() {
    let s = set(&[(1, 5), (3, 8)]);
    assert_eq!(s.to_string(), "[1, 8)");
}

#[test]
fn insert_spanning_several() {
    let s = set(&[(1, 2), (4, 5), (7, 8), (0, 10)]);
    assert_eq!(s.to_string(), "[0, 10)");
}

#[test]
fn empty_insert_ignored() {
    let s = set(&[(5, 5), (6, 2)]);
    assert!(s.is_empty());
    assert_eq!(s.to_string(), "{}");
}

#[test]
fn contains_and_len() {
    let s = set(&[(1, 3), (5, 7)]);
    assert!(s.contains(1));
    assert!(!s.contains(3));
    assert!(s.contains(6));
    assert_eq!(s.len(), 4);
}

#[test]
fn remove_splits() {
    let mut s = set(&[(0, 10)]);
    s.remove(3, 5);
    assert_eq!(s.to_string(), "[0, 3) [5, 10)");
    s.remove(-5, 1);
    assert_eq!(s.to_string(), "[1, 3) [5, 10)");
}

#[test]
fn intersection_of_sets() {
    let a = set(&[(0, 5), (10, 15)]);
    let b = set(&[(3, 12)]);
    assert_eq!(a.intersection(&b).to_string(), "[3, 5) [10, 12)");
}

#[test]
fn difference_and_gaps() {
    let a = set(&[(0, 10)]);
    let b = set(&[(2, 3), (6, 8)]);
    assert_eq!(a.difference(&b).to_string(), "[0, 2) [3, 6) [8, 10)");
    assert_eq!(b.gaps(0, 10).to_string(), "[0, 2) [3, 6) [8, 10)");
}

#[test]
fn iter_min_max() {
    let s = set(&[(1, 3), (7, 9)]);
    assert_eq!(s.iter().collect::<Vec<_>>(), vec![1, 2, 7, 8]);
    assert_eq!(s.min(), Some(1));
    assert_eq!(s.max(), Some(8));
}
