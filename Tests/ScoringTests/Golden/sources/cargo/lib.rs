/// Adds two numbers.
///
/// ```
/// assert_eq!(rgold::add(1, 2), 3);
/// ```
pub fn add(a: i32, b: i32) -> i32 { a + b }

pub mod math {
    pub fn double(x: i32) -> i32 { x * 2 }

    #[cfg(test)]
    mod tests {
        use super::*;
        #[test]
        fn doubles() { assert_eq!(double(2), 4); }
        #[test]
        fn doubles_wrong() { assert_eq!(double(2), 5); }
        #[test]
        #[ignore]
        fn slow_one() {}
        #[test]
        #[ignore = "needs network"]
        fn with_reason() {}
        #[test]
        #[should_panic]
        fn panics() { panic!("expected") }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn top_level() { println!("noise"); assert_eq!(super::add(2, 2), 4); }
}
