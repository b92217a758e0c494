//! GraphQL errors with the contract's `extensions.code` (the list in the
//! header of feeds/src/shift/schema.graphql), built from `VenueError` or
//! from argument checks the resolvers make.

use async_graphql::{Error, ErrorExtensions};
use feeds::VenueError;

/// A code from the contract's list, or one of the two this server adds
/// for requests the contract's list has no word for ([`ErrorCode::BadUserInput`],
/// [`ErrorCode::TooManySubscriptions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    UnknownPair,
    UnknownAsset,
    InvalidOrder,
    InvalidAmount,
    InsufficientFunds,
    OrderNotFound,
    OrderNotOpen,
    /// The pair is halted: the venue takes no new orders for it.
    MarketHalted,
    Unavailable,
    /// An argument outside its allowed range (e.g. `depth < 1`, an empty
    /// or over-long user id) that is not an order or an amount.
    BadUserInput,
    /// A WebSocket connection asked for more subscriptions than allowed.
    TooManySubscriptions,
}

impl ErrorCode {
    /// The wire spelling, as in `extensions.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::UnknownPair => "UNKNOWN_PAIR",
            ErrorCode::UnknownAsset => "UNKNOWN_ASSET",
            ErrorCode::InvalidOrder => "INVALID_ORDER",
            ErrorCode::InvalidAmount => "INVALID_AMOUNT",
            ErrorCode::InsufficientFunds => "INSUFFICIENT_FUNDS",
            ErrorCode::OrderNotFound => "ORDER_NOT_FOUND",
            ErrorCode::OrderNotOpen => "ORDER_NOT_OPEN",
            ErrorCode::MarketHalted => "MARKET_HALTED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::TooManySubscriptions => "TOO_MANY_SUBSCRIPTIONS",
        }
    }

    /// The contract's code for a venue error.
    pub fn of(err: &VenueError) -> ErrorCode {
        match err {
            VenueError::UnknownPair(_) => ErrorCode::UnknownPair,
            VenueError::UnknownAsset(_) => ErrorCode::UnknownAsset,
            VenueError::InvalidOrder(_) => ErrorCode::InvalidOrder,
            VenueError::InsufficientFunds => ErrorCode::InsufficientFunds,
            VenueError::OrderNotFound => ErrorCode::OrderNotFound,
            VenueError::OrderNotOpen => ErrorCode::OrderNotOpen,
            VenueError::MarketHalted { .. } => ErrorCode::MarketHalted,
            VenueError::InvalidAmount(_) => ErrorCode::InvalidAmount,
            VenueError::Unavailable(_) | VenueError::PartUnavailable { .. } => {
                ErrorCode::Unavailable
            }
        }
    }
}

/// A GraphQL error saying `message` with `extensions.code = code`.
pub fn coded(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, ext| ext.set("code", code.as_str()))
}

/// The GraphQL error for a venue error (its message and its code). A
/// halt's message is the venue's reason alone (the pair is the caller's).
pub fn venue_error(err: VenueError) -> Error {
    let message = match &err {
        VenueError::MarketHalted { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    coded(ErrorCode::of(&err), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_venue_error_maps_to_the_contract_code() {
        let cases = [
            (VenueError::UnknownPair("X-Y".into()), "UNKNOWN_PAIR"),
            (VenueError::UnknownAsset("X".into()), "UNKNOWN_ASSET"),
            (VenueError::InvalidOrder("x".into()), "INVALID_ORDER"),
            (VenueError::InsufficientFunds, "INSUFFICIENT_FUNDS"),
            (VenueError::OrderNotFound, "ORDER_NOT_FOUND"),
            (VenueError::OrderNotOpen, "ORDER_NOT_OPEN"),
            (VenueError::InvalidAmount("x".into()), "INVALID_AMOUNT"),
            (VenueError::Unavailable("x".into()), "UNAVAILABLE"),
        ];
        let halted = venue_error(VenueError::MarketHalted {
            pair: "BTC-USD".into(),
            reason: "circuit breaker".into(),
        });
        assert_eq!(halted.message, "circuit breaker");
        assert_eq!(
            halted.extensions.and_then(|e| e.get("code").cloned()),
            Some(async_graphql::Value::String("MARKET_HALTED".into()))
        );
        for (err, code) in cases {
            let gql = venue_error(err.clone());
            let ext = gql.extensions.expect("coded errors carry extensions");
            assert_eq!(
                ext.get("code"),
                Some(&async_graphql::Value::String(code.into())),
                "{err:?}"
            );
            assert_eq!(gql.message, err.to_string());
        }
    }
}
