//! The contract's two custom scalars: `Decimal` (an exact decimal string,
//! never a float) and `UInt64` (a JSON number below 2^53).
//!
//! `Decimal` only checks that it got a string here; the scale it must fit
//! depends on the pair or asset, so resolvers parse it with
//! `orderbook::MarketSpec` / `orderbook::decimal` and answer with the
//! contract's error codes.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// Longest `Decimal` string accepted (a `u64` at scale 18 needs 21 chars).
const MAX_DECIMAL_LEN: usize = 40;

/// Largest integer a JSON number carries exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A decimal number as a string, at the pair's or asset's scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal(pub String);

/// A decimal number as a string, at the pair's or asset's scale.
#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) if s.len() <= MAX_DECIMAL_LEN => Ok(Decimal(s)),
            Value::String(_) => Err(InputValueError::custom(format!(
                "a Decimal has at most {MAX_DECIMAL_LEN} characters"
            ))),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(_))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// An unsigned integer below 2^53, as a JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UInt64(pub u64);

/// An unsigned integer below 2^53, as a JSON number.
#[Scalar(name = "UInt64")]
impl ScalarType for UInt64 {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => match n.as_u64() {
                Some(v) if v <= MAX_SAFE_INTEGER => Ok(UInt64(v)),
                _ => Err(InputValueError::custom(
                    "UInt64 must be an integer in 0..2^53",
                )),
            },
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::Number(n) if n.as_u64().is_some_and(|v| v <= MAX_SAFE_INTEGER))
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_accepts_strings_only() {
        assert_eq!(
            Decimal::parse(Value::String("1.50".into())).unwrap(),
            Decimal("1.50".into())
        );
        assert!(Decimal::parse(Value::Number(1.into())).is_err());
        assert!(Decimal::parse(Value::String("1".repeat(41))).is_err());
    }

    #[test]
    fn uint64_refuses_negative_fractional_and_unsafe_numbers() {
        assert_eq!(UInt64::parse(Value::Number(42.into())).unwrap(), UInt64(42));
        assert!(UInt64::parse(Value::Number((-1).into())).is_err());
        assert!(UInt64::parse(Value::Number(serde_json::Number::from_f64(1.5).unwrap())).is_err());
        assert!(UInt64::parse(Value::Number((1u64 << 53).into())).is_err());
        assert_eq!(UInt64(7).to_value(), Value::Number(7.into()));
    }
}
