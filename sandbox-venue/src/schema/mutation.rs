//! The contract's `Mutation` type: create and cancel orders, credit and
//! debit balances. Decimal arguments are parsed at the pair's or asset's
//! scale before the venue is called, so a malformed number changes nothing.

use super::enums::{OrderType, Side, TimeInForce};
use super::errors::{coded, venue_error, ErrorCode};
use super::objects::{Balance, Order};
use super::scalars::Decimal;
use super::{checked_user_id, VenueState};
use async_graphql::{Context, InputObject, Object, Result, ID};
use feeds::event::now_micros;
use feeds::venue::PlaceOrder;
use feeds::Venue;
use orderbook::decimal::parse_scaled;

/// Longest `clientId` accepted.
const MAX_CLIENT_ID_LEN: usize = 128;

#[derive(InputObject, Debug, Clone)]
pub struct CreateOrderInput {
    pub user_id: ID,
    pub client_id: Option<String>,
    pub pair: String,
    pub side: Side,
    #[graphql(name = "type")]
    pub order_type: OrderType,
    pub price: Option<Decimal>,
    pub qty: Decimal,
    #[graphql(default)]
    pub time_in_force: TimeInForce,
    #[graphql(default)]
    pub post_only: bool,
}

/// The root of mutations.
pub struct Mutation;

#[Object(name = "Mutation")]
impl Mutation {
    /// Checks and locks funds, then matches; returns the order after matching.
    async fn create_order(&self, ctx: &Context<'_>, input: CreateOrderInput) -> Result<Order> {
        let state = ctx.data::<VenueState>()?;
        let user = checked_user_id(&input.user_id)?;
        let spec = state.catalog.market(&input.pair)?;
        let invalid = |why: String| coded(ErrorCode::InvalidOrder, why);
        if input
            .client_id
            .as_ref()
            .is_some_and(|id| id.len() > MAX_CLIENT_ID_LEN)
        {
            return Err(invalid(format!(
                "clientId: at most {MAX_CLIENT_ID_LEN} bytes"
            )));
        }
        let price = input
            .price
            .as_ref()
            .map(|p| spec.parse_price(&p.0))
            .transpose()
            .map_err(|e| invalid(format!("price: {e}")))?;
        let qty = spec
            .parse_qty(&input.qty.0)
            .map_err(|e| invalid(format!("qty: {e}")))?;
        let report = state
            .venue
            .place_order(PlaceOrder {
                user: user.to_string(),
                client_id: input.client_id.clone(),
                pair: spec.symbol.clone(),
                side: input.side.into(),
                order_type: input.order_type.into(),
                price,
                qty,
                time_in_force: input.time_in_force.into(),
                post_only: input.post_only,
            })
            .await
            .map_err(venue_error)?;
        Ok(Order::from_report(&report, spec))
    }

    async fn cancel_order(&self, ctx: &Context<'_>, user_id: ID, id: ID) -> Result<Order> {
        let state = ctx.data::<VenueState>()?;
        let user = checked_user_id(&user_id)?;
        let report = state
            .venue
            .cancel_order(user, &id)
            .await
            .map_err(venue_error)?;
        Ok(Order::from_report(
            &report,
            state.catalog.market(&report.pair)?,
        ))
    }

    async fn credit_balance(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        asset: String,
        amount: Decimal,
    ) -> Result<Balance> {
        change_balance(ctx, &user_id, &asset, &amount, Change::Credit).await
    }

    async fn debit_balance(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        asset: String,
        amount: Decimal,
    ) -> Result<Balance> {
        change_balance(ctx, &user_id, &asset, &amount, Change::Debit).await
    }
}

/// Which way [`change_balance`] moves funds.
#[derive(Debug, Clone, Copy)]
enum Change {
    Credit,
    Debit,
}

/// Credits or debits `amount` of `asset` to the user and returns the new
/// balance.
async fn change_balance(
    ctx: &Context<'_>,
    user_id: &ID,
    asset: &str,
    amount: &Decimal,
    change: Change,
) -> Result<Balance> {
    let state = ctx.data::<VenueState>()?;
    let user = checked_user_id(user_id)?;
    let (scale, raw) = parse_amount(state, asset, amount)?;
    let balance = match change {
        Change::Credit => state.venue.credit(user, asset, raw).await,
        Change::Debit => state.venue.debit(user, asset, raw).await,
    }
    .map_err(venue_error)?;
    Ok(Balance::new(user, asset, balance, scale, now_micros()))
}

/// The asset's scale and `amount` raw at it; `UNKNOWN_ASSET` or
/// `INVALID_AMOUNT` (zero is left to the venue, which refuses it too).
fn parse_amount(state: &VenueState, asset: &str, amount: &Decimal) -> Result<(u8, u64)> {
    let scale = state.catalog.asset_scale(asset)?;
    let raw = parse_scaled(&amount.0, scale)
        .map_err(|e| coded(ErrorCode::InvalidAmount, format!("amount: {e}")))?;
    Ok((scale, raw))
}
