//! Exact fixed-scale decimals for prices, quantities and amounts.
//!
//! Inside the book a number is a `u64` count of the smallest unit of its
//! scale (a "raw" value): `64000.10` at scale 2 is `6_400_010`. Parsing and
//! formatting happen only at the edges, and both are exact: a string that
//! does not fit the scale is an error, never rounded (docs/PROTOCOL.md "Number
//! format"). Integer arithmetic keeps the apply path free of allocation and
//! of the 16-byte `rust_decimal::Decimal`, which is offered at the edges via
//! [`to_decimal`] / [`from_decimal`] for the REST layer.

use rust_decimal::Decimal;
use thiserror::Error;

/// Largest scale we accept: `10^18` still fits a `u64` with headroom.
pub const MAX_SCALE: u8 = 18;

/// Why a decimal string (or `Decimal`) was refused. Nothing is ever rounded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecimalError {
    #[error("empty number")]
    Empty,
    #[error("negative numbers are not allowed")]
    Negative,
    #[error("exponent notation is not allowed")]
    Exponent,
    #[error("not a number")]
    NotANumber,
    #[error("unexpected character {0:?}")]
    InvalidChar(char),
    #[error("malformed number")]
    Malformed,
    #[error("more than {scale} decimal places")]
    TooManyDecimals { scale: u8 },
    #[error("number too large")]
    Overflow,
    #[error("must be greater than zero")]
    Zero,
    #[error("scale {0} is above the maximum of {MAX_SCALE}")]
    BadScale(u8),
}

/// `10^scale` as a `u64`, for scales up to [`MAX_SCALE`].
#[inline]
pub const fn pow10(scale: u8) -> u64 {
    let mut v = 1u64;
    let mut i = 0;
    while i < scale {
        v *= 10;
        i += 1;
    }
    v
}

/// Parses a non-negative decimal string with at most `scale` decimals into
/// its raw value (`"1.5"` at scale 2 is `150`). Accepts fewer decimals than
/// the scale (`"1"`, `"1.5"`); refuses signs, exponents, `NaN`/`inf`,
/// separators, white space, a bare `.`, and anything that overflows `u64`.
pub fn parse_scaled(s: &str, scale: u8) -> Result<u64, DecimalError> {
    if scale > MAX_SCALE {
        return Err(DecimalError::BadScale(scale));
    }
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return Err(DecimalError::Empty);
    }
    match bytes[0] {
        b'-' => return Err(DecimalError::Negative),
        b'+' => return Err(DecimalError::InvalidChar('+')),
        _ => {}
    }
    let lower = s.to_ascii_lowercase();
    if lower.contains("nan") || lower.contains("inf") {
        return Err(DecimalError::NotANumber);
    }
    let (int_part, frac_part) = match s.find('.') {
        Some(dot) => (&s[..dot], Some(&s[dot + 1..])),
        None => (s, None),
    };
    check_digits(int_part)?;
    if int_part.is_empty() {
        return Err(DecimalError::Malformed);
    }
    let mut raw: u64 = 0;
    for b in int_part.bytes() {
        raw = raw
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(DecimalError::Overflow)?;
    }
    raw = raw
        .checked_mul(pow10(scale))
        .ok_or(DecimalError::Overflow)?;
    if let Some(frac) = frac_part {
        check_digits(frac)?;
        if frac.is_empty() {
            return Err(DecimalError::Malformed);
        }
        if frac.len() > usize::from(scale) {
            return Err(DecimalError::TooManyDecimals { scale });
        }
        let mut f: u64 = 0;
        for b in frac.bytes() {
            f = f * 10 + u64::from(b - b'0');
        }
        f *= pow10(scale - frac.len() as u8);
        raw = raw.checked_add(f).ok_or(DecimalError::Overflow)?;
    }
    Ok(raw)
}

fn check_digits(part: &str) -> Result<(), DecimalError> {
    for c in part.chars() {
        match c {
            '0'..='9' => {}
            'e' | 'E' => return Err(DecimalError::Exponent),
            '-' => return Err(DecimalError::Negative),
            '.' => return Err(DecimalError::Malformed),
            other => return Err(DecimalError::InvalidChar(other)),
        }
    }
    Ok(())
}

/// Appends `raw` written with exactly `scale` decimals (`150` at scale 2 is
/// `"1.50"`). No allocation beyond growing `out`.
pub fn write_scaled(out: &mut Vec<u8>, raw: u64, scale: u8) {
    let mut digits = [0u8; 20];
    let mut n = raw;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    let scale = usize::from(scale);
    // Pad with zeros so that there is at least one integer digit.
    while len <= scale {
        digits[len] = b'0';
        len += 1;
    }
    for i in (scale..len).rev() {
        out.push(digits[i]);
    }
    if scale > 0 {
        out.push(b'.');
        for i in (0..scale).rev() {
            out.push(digits[i]);
        }
    }
}

/// `raw` at `scale` as a `String`; see [`write_scaled`].
pub fn format_scaled(raw: u64, scale: u8) -> String {
    let mut out = Vec::with_capacity(24);
    write_scaled(&mut out, raw, scale);
    String::from_utf8(out).expect("write_scaled writes only ASCII digits and '.'")
}

/// Converts a raw value to an exact `Decimal` (for the REST edge).
pub fn to_decimal(raw: u64, scale: u8) -> Decimal {
    Decimal::from_i128_with_scale(i128::from(raw), u32::from(scale))
}

/// Converts a `Decimal` to a raw value at `scale`, refusing negatives and
/// values with more decimals than `scale` (after dropping trailing zeros).
pub fn from_decimal(d: Decimal, scale: u8) -> Result<u64, DecimalError> {
    if scale > MAX_SCALE {
        return Err(DecimalError::BadScale(scale));
    }
    if d.is_sign_negative() && !d.is_zero() {
        return Err(DecimalError::Negative);
    }
    let d = d.normalize();
    if d.scale() > u32::from(scale) {
        return Err(DecimalError::TooManyDecimals { scale });
    }
    let mantissa = u64::try_from(d.mantissa()).map_err(|_| DecimalError::Overflow)?;
    mantissa
        .checked_mul(pow10(scale - d.scale() as u8))
        .ok_or(DecimalError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exact_values() {
        assert_eq!(parse_scaled("64000.10", 2), Ok(6_400_010));
        assert_eq!(parse_scaled("1", 8), Ok(100_000_000));
        assert_eq!(parse_scaled("1.5", 8), Ok(150_000_000));
        assert_eq!(parse_scaled("0.00000001", 8), Ok(1));
        assert_eq!(parse_scaled("0", 0), Ok(0));
        assert_eq!(parse_scaled("007.5", 1), Ok(75));
    }

    #[test]
    fn refuses_every_bad_form_with_its_own_error() {
        use DecimalError::*;
        let cases: &[(&str, DecimalError)] = &[
            ("", Empty),
            ("-1", Negative),
            ("-0.5", Negative),
            ("+1", InvalidChar('+')),
            ("1e5", Exponent),
            ("1.5E-3", Exponent),
            ("NaN", NotANumber),
            ("nan", NotANumber),
            ("inf", NotANumber),
            ("Infinity", NotANumber),
            ("1,000.00", InvalidChar(',')),
            (" 1", InvalidChar(' ')),
            ("1 ", InvalidChar(' ')),
            ("0x10", InvalidChar('x')),
            (".5", Malformed),
            ("5.", Malformed),
            ("1.2.3", Malformed),
            ("1.234", TooManyDecimals { scale: 2 }),
            ("1.230", TooManyDecimals { scale: 2 }),
            ("18446744073709551616", Overflow),
            ("184467440737095516.16", Overflow),
            ("99999999999999999999.99", Overflow),
        ];
        for (input, want) in cases {
            assert_eq!(parse_scaled(input, 2), Err(want.clone()), "input {input:?}");
        }
        assert_eq!(parse_scaled("1", 19), Err(BadScale(19)));
    }

    #[test]
    fn formats_with_exactly_the_scale() {
        assert_eq!(format_scaled(6_400_010, 2), "64000.10");
        assert_eq!(format_scaled(0, 8), "0.00000000");
        assert_eq!(format_scaled(1, 8), "0.00000001");
        assert_eq!(format_scaled(25_000_000, 8), "0.25000000");
        assert_eq!(format_scaled(42, 0), "42");
        assert_eq!(format_scaled(u64::MAX, 18), "18.446744073709551615");
    }

    #[test]
    fn decimal_edge_conversions_are_exact() {
        let d: Decimal = "1.50".parse().unwrap();
        assert_eq!(from_decimal(d, 8), Ok(150_000_000));
        assert_eq!(to_decimal(150_000_000, 8).to_string(), "1.50000000");
        let too_fine: Decimal = "0.001".parse().unwrap();
        assert_eq!(
            from_decimal(too_fine, 2),
            Err(DecimalError::TooManyDecimals { scale: 2 })
        );
        let neg: Decimal = "-1".parse().unwrap();
        assert_eq!(from_decimal(neg, 2), Err(DecimalError::Negative));
        let big: Decimal = "100000000000000000000".parse().unwrap();
        assert_eq!(from_decimal(big, 0), Err(DecimalError::Overflow));
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(raw in any::<u64>(), scale in 0u8..=18) {
            let s = format_scaled(raw, scale);
            prop_assert_eq!(parse_scaled(&s, scale), Ok(raw));
            // and agrees with rust_decimal's own rendering
            prop_assert_eq!(to_decimal(raw, scale).to_string(), s);
        }
    }
}
