//! TON amounts: integer nanotons parsed from and printed as decimal TON, never through floats.

/// Nanotons in one TON.
pub const NANO_PER_TON: u128 = 1_000_000_000;

/// Why a TON amount string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Empty input.
    #[error("empty amount")]
    Empty,
    /// A minus sign: amounts are never negative.
    #[error("negative amount: {0:?}")]
    Negative(String),
    /// Anything but digits and one decimal point.
    #[error("not a decimal TON amount: {0:?}")]
    Invalid(String),
    /// More than nine digits after the point (below one nanoton).
    #[error("more than 9 decimals (below 1 nanoton): {0:?}")]
    TooPrecise(String),
    /// Does not fit in u128 nanotons.
    #[error("amount too large: {0:?}")]
    Overflow(String),
}

/// Parses a decimal TON amount (`"1.5"`, `"0.000000001"`, `"12"`) into nanotons.
pub fn parse_ton(text: &str) -> Result<u128, AmountError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(AmountError::Empty);
    }
    if s.starts_with('-') {
        return Err(AmountError::Negative(text.to_string()));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(AmountError::Invalid(text.to_string()));
    }
    if frac.len() > 9 {
        return Err(AmountError::TooPrecise(text.to_string()));
    }
    let overflow = || AmountError::Overflow(text.to_string());
    let mut whole: u128 = 0;
    for b in int.bytes() {
        whole = whole
            .checked_mul(10)
            .and_then(|w| w.checked_add(u128::from(b - b'0')))
            .ok_or_else(overflow)?;
    }
    let mut nanos: u128 = 0;
    for i in 0..9 {
        let d = frac.as_bytes().get(i).map_or(0, |b| b - b'0');
        nanos = nanos * 10 + u128::from(d);
    }
    whole
        .checked_mul(NANO_PER_TON)
        .and_then(|w| w.checked_add(nanos))
        .ok_or_else(overflow)
}

/// Prints nanotons as decimal TON with only the decimals needed (`1_500_000_000` → `"1.5"`).
pub fn format_ton(nanotons: u128) -> String {
    let whole = nanotons / NANO_PER_TON;
    let frac = nanotons % NANO_PER_TON;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:09}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(parse_ton("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_ton("0.000000001"), Ok(1));
        assert_eq!(parse_ton("12"), Ok(12_000_000_000));
        assert_eq!(parse_ton(".5"), Ok(500_000_000));
        assert_eq!(parse_ton("3."), Ok(3_000_000_000));
        assert_eq!(parse_ton(" 0 "), Ok(0));
        assert_eq!(parse_ton("+2.25"), Ok(2_250_000_000));
    }

    #[test]
    fn refuses_bad_amounts() {
        assert!(matches!(parse_ton(""), Err(AmountError::Empty)));
        assert!(matches!(parse_ton("-1"), Err(AmountError::Negative(_))));
        assert!(matches!(
            parse_ton("0.0000000001"),
            Err(AmountError::TooPrecise(_))
        ));
        assert!(matches!(parse_ton("1e9"), Err(AmountError::Invalid(_))));
        assert!(matches!(parse_ton("1.2.3"), Err(AmountError::Invalid(_))));
        assert!(matches!(parse_ton("."), Err(AmountError::Invalid(_))));
        assert!(matches!(parse_ton("1,5"), Err(AmountError::Invalid(_))));
        let max_whole = u128::MAX / NANO_PER_TON;
        assert!(matches!(
            parse_ton(&format!("{}", max_whole + 1)),
            Err(AmountError::Overflow(_))
        ));
        assert!(matches!(
            parse_ton("999999999999999999999999999999999999999999"),
            Err(AmountError::Overflow(_))
        ));
    }

    #[test]
    fn formats_and_round_trips() {
        assert_eq!(format_ton(1_500_000_000), "1.5");
        assert_eq!(format_ton(1), "0.000000001");
        assert_eq!(format_ton(0), "0");
        assert_eq!(format_ton(10_000_000_000), "10");
        for n in [
            0u128,
            1,
            999_999_999,
            1_000_000_001,
            123_456_789_012,
            u128::MAX,
        ] {
            assert_eq!(parse_ton(&format_ton(n)), Ok(n), "{n}");
        }
    }
}
