//! The book checksum of docs/PROTOCOL.md (Kraken v2 style): CRC-32 (IEEE) over
//! the top 10 asks (lowest first) then the top 10 bids (highest first), each
//! level contributing its price then its quantity with the `.` and leading
//! zeros removed.
//!
//! Because every price and quantity is written in its pair's fixed scale,
//! "the string without `.` and leading zeros" is exactly the decimal digits
//! of the raw integer, so the checksum needs no formatting, no scale and no
//! allocation: `itoa` into a stack buffer and feed the CRC.

use crate::book::L2Book;

/// Levels per side that the checksum covers.
pub const CHECKSUM_DEPTH: usize = 10;

/// The checksum of `book`'s top 10 levels each side.
pub fn book_checksum(book: &L2Book) -> u32 {
    checksum_top(book, CHECKSUM_DEPTH)
}

/// The same checksum over the top `min(depth, 10)` levels each side: what a
/// client of a `depthN` channel with N < 10 holds.
pub fn checksum_top(book: &L2Book, depth: usize) -> u32 {
    let depth = depth.min(CHECKSUM_DEPTH);
    // All digits go into one stack buffer and the CRC runs once: crc32fast's
    // fast path needs more than the 4-9 bytes of a single number.
    let mut text = [0u8; 2 * 2 * CHECKSUM_DEPTH * 20];
    let mut len = 0;
    let mut digits = itoa::Buffer::new();
    for ladder in [book.asks(), book.bids()] {
        for level in ladder.iter().take(depth) {
            for v in [level.price.0, level.qty.0] {
                let d = digits.format(v).as_bytes();
                text[len..len + d.len()].copy_from_slice(d);
                len += d.len();
            }
        }
    }
    crc32fast::hash(&text[..len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decimal::format_scaled;
    use crate::{BookDelta, Price, Qty, Side};
    use proptest::prelude::*;

    /// The checksum exactly as docs/PROTOCOL.md words it, on formatted strings.
    fn reference(book: &L2Book, price_scale: u8, qty_scale: u8) -> u32 {
        let strip = |s: String| s.replace('.', "").trim_start_matches('0').to_string();
        let mut text = String::new();
        for ladder in [book.asks(), book.bids()] {
            for l in ladder.iter().take(10) {
                text += &strip(format_scaled(l.price.0, price_scale));
                text += &strip(format_scaled(l.qty.0, qty_scale));
            }
        }
        crc32fast::hash(text.as_bytes())
    }

    #[test]
    fn empty_book_is_crc_of_nothing() {
        assert_eq!(book_checksum(&L2Book::new()), 0);
    }

    #[test]
    fn matches_a_hand_computed_value() {
        let mut b = L2Book::new();
        // "64000.10" "1.50000000" bid, "64000.20" "0.25000000" ask
        b.apply_snapshot(
            &[(Price(6_400_010), Qty(150_000_000))],
            &[(Price(6_400_020), Qty(25_000_000))],
        )
        .unwrap();
        let text = "640002025000000".to_string() + "6400010150000000";
        assert_eq!(book_checksum(&b), crc32fast::hash(text.as_bytes()));
    }

    #[test]
    fn shallow_checksum_covers_only_the_top_levels() {
        let mut b = L2Book::new();
        for p in 1..=20u64 {
            b.apply_delta(BookDelta {
                side: Side::Buy,
                price: Price(p),
                qty: Qty(p),
            });
            b.apply_delta(BookDelta {
                side: Side::Sell,
                price: Price(100 + p),
                qty: Qty(p),
            });
        }
        // top 1: ask 101 qty 1, bid 20 qty 20
        assert_eq!(checksum_top(&b, 1), crc32fast::hash(b"10112020"));
        assert_eq!(checksum_top(&b, 50), book_checksum(&b));
    }

    proptest! {
        #[test]
        fn equals_reference_implementation(
            levels in proptest::collection::vec((any::<bool>(), 1u64..10_000_000, 1u64..u64::MAX), 0..60),
            price_scale in 0u8..10,
            qty_scale in 0u8..10,
        ) {
            let mut b = L2Book::new();
            for (buy, p, q) in levels {
                let side = if buy { Side::Buy } else { Side::Sell };
                b.apply_delta(BookDelta { side, price: Price(p), qty: Qty(q) });
            }
            prop_assert_eq!(book_checksum(&b), reference(&b, price_scale, qty_scale));
        }
    }
}
