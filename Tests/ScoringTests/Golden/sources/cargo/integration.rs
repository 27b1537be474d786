#[test]
fn integration_passes() { assert_eq!(rgold::add(1, 1), 2); }

#[test]
fn integration_fails() { assert_eq!(rgold::add(1, 1), 3, "one plus one"); }
