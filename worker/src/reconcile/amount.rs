//! Exact decimal amounts for reconciliation: parsing the stored decimal
//! strings into integers at an asset's scale and writing them back, with
//! no floats and no rounding (an amount with more decimals than its
//! asset's scale is refused, never rounded).

/// The longest decimal string accepted (stored amounts are far shorter).
const MAX_CHARS: usize = 40;

/// A signed decimal `text` (`"-1.5"`, `"0.00012345"`) as an integer at
/// `scale` decimals; `None` when it is not a plain decimal, has more
/// than `scale` significant decimals, or does not fit.
pub fn parse(text: &str, scale: u8) -> Option<i128> {
    if text.is_empty() || text.len() > MAX_CHARS {
        return None;
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !plain(whole) || !plain(fraction) {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > usize::from(scale) {
        return None;
    }
    let mut raw: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        raw = raw.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    raw = raw.checked_mul(10i128.checked_pow(u32::from(scale) - fraction.len() as u32)?)?;
    Some(if negative { -raw } else { raw })
}

/// `raw` (at `scale` decimals) written with exactly `scale` decimals.
pub fn format(raw: i128, scale: u8) -> String {
    let sign = if raw < 0 { "-" } else { "" };
    let digits = raw.unsigned_abs().to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{sign}{whole}.{fraction}")
}

/// `price × qty` (decimal strings) as an integer at `scale` decimals, when
/// exact at that scale.
pub fn product(price: &str, qty: &str, scale: u8) -> Option<i128> {
    let decimals = |s: &str| s.split_once('.').map_or(0, |(_, f)| f.len());
    let (pd, qd) = (decimals(price), decimals(qty));
    let (ps, qs) = (u8::try_from(pd).ok()?, u8::try_from(qd).ok()?);
    let raw = parse(price, ps)?.checked_mul(parse(qty, qs)?)?;
    let have = u32::from(ps) + u32::from(qs);
    let want = u32::from(scale);
    if have <= want {
        raw.checked_mul(10i128.checked_pow(want - have)?)
    } else {
        let divisor = 10i128.checked_pow(have - want)?;
        (raw % divisor == 0).then(|| raw / divisor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_at_the_scale() {
        assert_eq!(parse("0.00012345", 8), Some(12_345));
        assert_eq!(parse("1.5", 8), Some(150_000_000));
        assert_eq!(parse("-2.10", 2), Some(-210));
        assert_eq!(parse("7", 0), Some(7));
        assert_eq!(parse("1.001", 2), None);
        for bad in ["", "-", "1.2.3", "1e5", " 1", "+1", ".5", "1,5"] {
            assert_eq!(parse(bad, 8), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_with_every_decimal() {
        assert_eq!(format(12_345, 8), "0.00012345");
        assert_eq!(format(-210, 2), "-2.10");
        assert_eq!(format(0, 2), "0.00");
        assert_eq!(format(5, 0), "5");
        assert_eq!(format(150_000_000, 8), "1.50000000");
    }

    #[test]
    fn products_are_exact_or_refused() {
        assert_eq!(product("100.25", "0.500000", 8), Some(5_012_500_000));
        assert_eq!(product("0.01", "0.001", 4), None);
        assert_eq!(product("0.01", "0.001", 5), Some(1));
    }
}
