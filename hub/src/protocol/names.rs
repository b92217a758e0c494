//! The closed vocabularies of the wire: the `type` of every hub → client
//! message, the `op` of every client frame, the `code` of every `error`.
//! Each is declared once, here, as an enum with its wire names; the
//! encoders and the decoder take these enums, so nothing can reach the
//! wire without being listed. `hub/tests/asyncapi.rs` checks that
//! docs/asyncapi.yaml documents exactly these names.

/// Declares an enum of wire names with `ALL`, `NAMES`, `as_str` and
/// `parse`, all generated from the one list.
macro_rules! wire_names {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];
            /// Every wire name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text,)+];

            /// The name on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value of a wire name.
            pub fn parse(name: &str) -> Option<$name> {
                match name {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

wire_names! {
    /// The `type` of a hub → client message (docs/PROTOCOL.md, "Hub →
    /// client").
    pub enum MessageType {
        /// Answer to `subscribe`.
        Subscribed = "subscribed",
        /// Answer to `unsubscribe`.
        Unsubscribed = "unsubscribed",
        /// Answer to `auth`.
        Authed = "authed",
        /// Answer to `ping`.
        Pong = "pong",
        /// A refused frame, or a private session that ended.
        Error = "error",
        /// `book.PAIR`: the whole book.
        Snapshot = "snapshot",
        /// `book.PAIR`: changed levels.
        Update = "update",
        /// `depthN.PAIR`: the top N levels.
        Depth = "depth",
        /// `trades.PAIR`: a batch of executions.
        Trades = "trades",
        /// `ticker.PAIR`.
        Ticker = "ticker",
        /// `candlesN.PAIR`: the last 300 candles (state message).
        Candles = "candles",
        /// `candlesN.PAIR`: the open candle changed, or a candle closed.
        Candle = "candle",
        /// `heartbeat`: once a second.
        Heartbeat = "heartbeat",
        /// `status`: every pair's market state, on subscribe and whenever
        /// one changes.
        Status = "status",
        /// `orders`: one of the user's orders as it is now.
        Order = "order",
        /// `balances`: one of the user's balances as it is now.
        Balance = "balance",
        /// The hub is shutting down; a close 1001 follows.
        Shutdown = "shutdown",
        // Order entry (docs/PROTOCOL.md "Order entry").
        /// Answer to `order.cancel_all` (with `id`), or a dead-man's
        /// switch that fired (on `orders`): the cancelled order ids.
        Cancelled = "cancelled",
        /// Answer to `cancel_after`: the trigger time.
        CancelAfterSet = "cancel_after_set",
    }
}

wire_names! {
    /// The `op` of a client → hub frame (docs/PROTOCOL.md, "Client → hub").
    pub enum OpName {
        Subscribe = "subscribe",
        Unsubscribe = "unsubscribe",
        Auth = "auth",
        Ping = "ping",
        // Order entry (docs/PROTOCOL.md "Order entry").
        OrderPlace = "order.place",
        OrderCancel = "order.cancel",
        OrderCancelAll = "order.cancel_all",
        CancelAfter = "cancel_after",
    }
}

wire_names! {
    /// The `code` of an `error` message.
    pub enum ErrorCode {
        /// Not JSON, not an object, over the depth or value bounds, a
        /// missing, mistyped or unknown field, an empty `channels`, a
        /// binary frame, or `auth` as a second user.
        BadRequest = "bad_request",
        /// An `op` the hub does not know.
        UnknownOp = "unknown_op",
        /// A channel name that is not one of the protocol's, or names a
        /// pair the hub does not carry.
        UnknownChannel = "unknown_channel",
        /// `auth` with a token that does not verify (or on a hub without
        /// the REST API); a private channel without `auth`; a session
        /// that ended (logout, token expiry) while private channels ran.
        Unauthorized = "unauthorized",
        /// The subscription would exceed `limits.max_subscriptions`.
        TooManySubscriptions = "too_many_subscriptions",
        /// Over `limits.frames_per_sec` / `limits.frame_burst`; an order
        /// op over the user's REST request budget.
        RateLimited = "rate_limited",
        // Order entry: the REST API's codes of `POST /orders` and
        // `DELETE /orders/{id}` (docs/API.md), answered alike.
        /// A member of `order` the REST body does not have.
        UnknownField = "unknown_field",
        /// A member `order` needs (e.g. `price` of a limit order).
        MissingField = "missing_field",
        /// A member of the wrong type or value.
        InvalidField = "invalid_field",
        InvalidQty = "invalid_qty",
        InvalidPrice = "invalid_price",
        /// A pair the venue does not trade.
        UnknownPair = "unknown_pair",
        /// The venue refused the order.
        InvalidOrder = "invalid_order",
        InsufficientFunds = "insufficient_funds",
        /// The user's KYC is not `VERIFIED`.
        KycRequired = "kyc_required",
        /// The `client_order_id` was used for another order (or is being
        /// placed by another request right now).
        DuplicateClientOrderId = "duplicate_client_order_id",
        /// No such order of this user (another user's order included).
        OrderNotFound = "order_not_found",
        /// The order is filled, cancelled or rejected.
        OrderNotOpen = "order_not_open",
        /// The venue halted trading in the pair (docs/PROTOCOL.md,
        /// "Market status").
        MarketHalted = "market_halted",
        /// The venue is down (breaker open) or did not answer in time.
        UpstreamUnavailable = "upstream_unavailable",
        UpstreamTimeout = "upstream_timeout",
        /// The store (or the switch state in Redis) is unreachable.
        StoreUnavailable = "store_unavailable",
        /// New orders are paused while the order sync catches up with
        /// the venue (`[api] order_sync_backlog_max`); cancels go through.
        Overloaded = "overloaded",
        /// A bug; details only in the hub's log.
        Internal = "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            all: &[T],
            names: &[&str],
            as_str: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
        ) {
            assert_eq!(all.len(), names.len());
            for (value, name) in all.iter().zip(names) {
                assert_eq!(as_str(*value), *name);
                assert_eq!(parse(name), Some(*value));
            }
            let unique: std::collections::HashSet<_> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "{names:?}");
        }
        check(
            MessageType::ALL,
            MessageType::NAMES,
            MessageType::as_str,
            MessageType::parse,
        );
        check(OpName::ALL, OpName::NAMES, OpName::as_str, OpName::parse);
        check(
            ErrorCode::ALL,
            ErrorCode::NAMES,
            ErrorCode::as_str,
            ErrorCode::parse,
        );
        assert_eq!(OpName::parse("dance"), None);
    }
}
