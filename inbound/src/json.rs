//! [`JsonBounds`]: size, nesting depth and element count of a JSON text,
//! checked in one pass without parsing it, and that the text is UTF-8.
//!
//! JSON exchanged between systems is UTF-8 (RFC 8259, section 8.1), and a
//! parser checks that only in what it reads: serde_json parsing into a
//! typed struct skips the string of a member it ignores without looking at
//! its bytes (into a `Value` it refuses them), so whether such input
//! passed depended on the parser. The check refuses it first, for all.
//!
//! The scan knows just enough JSON to tell structure from string contents
//! (quotes and backslash escapes); it does not validate the grammar. A text that passes
//! may still be malformed (the parser after it says so), but a text that
//! passes cannot nest deeper than `max_depth` or hold more than
//! `max_elements` values, whatever a lenient parser makes of it: every
//! bracket outside a string counts, matched or not.

use thiserror::Error;

/// Limits for one kind of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonBounds {
    /// Largest accepted text, bytes.
    pub max_bytes: usize,
    /// Deepest nesting of arrays and objects (`{}` is depth 1).
    pub max_depth: usize,
    /// Most values: every array or object opened plus every `,` separating
    /// elements or members. An upper bound on what a parser allocates.
    pub max_elements: usize,
}

/// Which bound a text broke. Messages are short and client-safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BoundsError {
    #[error("input is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("input nests deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("input holds more than {max} elements")]
    TooManyElements { max: usize },
    #[error("input is not UTF-8")]
    NotUtf8,
}

impl JsonBounds {
    /// Checks `text` against every bound, and that it is UTF-8; linear
    /// time, constant memory.
    pub fn check(&self, text: &[u8]) -> Result<(), BoundsError> {
        self.text(text).map(drop)
    }

    /// [`JsonBounds::check`], answering the text as a `str`, so a parser
    /// that reads a `str` does not check the UTF-8 a second time.
    pub fn text<'a>(&self, bytes: &'a [u8]) -> Result<&'a str, BoundsError> {
        if bytes.len() > self.max_bytes {
            return Err(BoundsError::TooLarge {
                max: self.max_bytes,
            });
        }
        self.scan(bytes)?;
        std::str::from_utf8(bytes).map_err(|_| BoundsError::NotUtf8)
    }

    /// The depth and element bounds of `text`, in one pass.
    fn scan(&self, text: &[u8]) -> Result<(), BoundsError> {
        let (mut depth, mut elements) = (0usize, 0usize);
        let mut bytes = text.iter();
        while let Some(&b) = bytes.next() {
            match b {
                b'"' => skip_string(&mut bytes),
                b'[' | b'{' => {
                    depth += 1;
                    elements += 1;
                    if depth > self.max_depth {
                        return Err(BoundsError::TooDeep {
                            max: self.max_depth,
                        });
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b',' => elements += 1,
                _ => continue,
            }
            if elements > self.max_elements {
                return Err(BoundsError::TooManyElements {
                    max: self.max_elements,
                });
            }
        }
        Ok(())
    }
}

/// Advances past the closing quote of a string whose opening quote was
/// just read (or to the end of an unterminated one).
fn skip_string(bytes: &mut std::slice::Iter<'_, u8>) {
    while let Some(&b) = bytes.next() {
        match b {
            b'"' => return,
            b'\\' => {
                bytes.next();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const B: JsonBounds = JsonBounds {
        max_bytes: 1 << 20,
        max_depth: 4,
        max_elements: 10,
    };

    #[test]
    fn refuses_deep_nesting_of_arrays_and_objects() {
        assert_eq!(B.check(b"[[[[]]]]"), Ok(()));
        assert_eq!(B.check(b"[[[[[]]]]]"), Err(BoundsError::TooDeep { max: 4 }));
        assert_eq!(
            B.check(br#"{"a":{"b":{"c":{"d":{}}}}}"#),
            Err(BoundsError::TooDeep { max: 4 })
        );
        let attack = format!("{}{}", "[".repeat(4000), "]".repeat(4000));
        assert_eq!(
            B.check(attack.as_bytes()),
            Err(BoundsError::TooDeep { max: 4 })
        );
    }

    #[test]
    fn unmatched_openers_count_too() {
        assert_eq!(B.check(b"[[[[["), Err(BoundsError::TooDeep { max: 4 }));
        // Closers never drive the depth below zero to buy extra openers.
        assert_eq!(B.check(b"]]]]][[[[["), Err(BoundsError::TooDeep { max: 4 }));
    }

    #[test]
    fn brackets_inside_strings_are_content() {
        assert_eq!(
            B.check(br#"["[[[[[[[[[[", "{{{{{{{,,,,,,,,,,,,,"]"#),
            Ok(())
        );
        assert_eq!(B.check(br#"["\"[[[[[[[["]"#), Ok(()));
        // An escaped backslash ends before the quote: the quote closes.
        assert_eq!(
            B.check(br#"["\\"[[[[[]"#),
            Err(BoundsError::TooDeep { max: 4 })
        );
    }

    #[test]
    fn counts_elements_and_members() {
        assert_eq!(B.check(b"[1,2,3,4,5,6,7,8,9]"), Ok(()));
        assert_eq!(
            B.check(b"[1,2,3,4,5,6,7,8,9,10,11]"),
            Err(BoundsError::TooManyElements { max: 10 })
        );
        assert_eq!(
            B.check(br#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11}"#),
            Err(BoundsError::TooManyElements { max: 10 })
        );
    }

    #[test]
    fn refuses_bytes_that_are_not_utf8_wherever_they_are() {
        assert_eq!(B.check("{\"a\":\"é\"}".as_bytes()), Ok(()));
        assert_eq!(
            B.check(b"{\"ignored\":\"\xff\"}"),
            Err(BoundsError::NotUtf8)
        );
        assert_eq!(B.check(b"[1]\xc3"), Err(BoundsError::NotUtf8));
    }

    #[test]
    fn refuses_large_input_before_scanning() {
        let small = JsonBounds { max_bytes: 4, ..B };
        assert_eq!(small.check(b"[1,2]"), Err(BoundsError::TooLarge { max: 4 }));
        assert_eq!(small.check(b"[12]"), Ok(()));
    }

    /// A JSON value of known depth and element count, as serde_json writes it.
    fn nested(depth: usize, width: usize) -> (String, usize) {
        let mut value = serde_json::json!([]);
        let mut elements = 1;
        for _ in 1..depth {
            let mut items = vec![value];
            items.extend((1..width).map(|i| serde_json::json!(format!("s{i}],{{\"\\"))));
            elements += width; // the new array plus its commas
            value = serde_json::Value::Array(items);
        }
        (value.to_string(), elements)
    }

    proptest! {
        /// For JSON a parser accepts, the scan measures exactly the depth
        /// and (an upper bound of) the element count.
        #[test]
        fn agrees_with_a_parser(depth in 1usize..12, width in 1usize..5) {
            let (text, elements) = nested(depth, width);
            let exact = JsonBounds { max_bytes: usize::MAX, max_depth: depth, max_elements: elements };
            prop_assert_eq!(exact.check(text.as_bytes()), Ok(()));
            let shallower = JsonBounds { max_depth: depth - 1, ..exact };
            prop_assert_eq!(shallower.check(text.as_bytes()), Err(BoundsError::TooDeep { max: depth - 1 }));
            let fewer = JsonBounds { max_elements: elements - 1, ..exact };
            prop_assert!(fewer.check(text.as_bytes()).is_err());
        }

        /// Whatever the bytes, the scan ends and never panics.
        #[test]
        fn any_bytes_are_safe(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = B.check(&bytes);
        }
    }
}
