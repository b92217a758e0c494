//! The contract's `Query` type: markets and assets, a pair's book, and a
//! user's balances and orders, each read from the venue.

use super::enums::OrderStatus;
use super::errors::venue_error;
use super::objects::{Asset, Balance, Market, Order, OrderBook, User};
use super::{checked_user_id, VenueState};
use async_graphql::{Context, Object, Result, ID};
use feeds::event::now_micros;
use feeds::Venue;

/// The root of queries.
pub struct Query;

#[Object(name = "Query")]
impl Query {
    async fn markets(&self, ctx: &Context<'_>) -> Result<Vec<Market>> {
        let state = ctx.data::<VenueState>()?;
        Ok(state
            .catalog
            .markets()
            .iter()
            .map(Market::from_spec)
            .collect())
    }

    async fn assets(&self, ctx: &Context<'_>) -> Result<Vec<Asset>> {
        let state = ctx.data::<VenueState>()?;
        Ok(state
            .catalog
            .assets()
            .iter()
            .map(|a| Asset {
                symbol: a.symbol.clone(),
                scale: i32::from(a.scale),
            })
            .collect())
    }

    // `depth` (at least 1) keeps the best `depth` levels of each side;
    // without it, the whole book.
    async fn order_book(
        &self,
        ctx: &Context<'_>,
        pair: String,
        depth: Option<i32>,
    ) -> Result<OrderBook> {
        let state = ctx.data::<VenueState>()?;
        state.order_book(&pair, depth).await
    }

    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        let state = ctx.data::<VenueState>()?;
        let user = checked_user_id(&id)?;
        let balances = state.venue.balances(user).await.map_err(venue_error)?;
        let now = now_micros();
        let balances = balances
            .into_iter()
            .map(|(asset, balance)| {
                let scale = state.catalog.asset_scale(&asset)?;
                Ok(Balance::new(user, &asset, balance, scale, now))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(User {
            id: ID(user.to_string()),
            balances,
        })
    }

    /// A user's orders, newest first.
    async fn orders(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        status: Option<OrderStatus>,
        pair: Option<String>,
    ) -> Result<Vec<Order>> {
        let state = ctx.data::<VenueState>()?;
        let user = checked_user_id(&user_id)?;
        if let Some(pair) = &pair {
            state.catalog.market(pair)?;
        }
        let reports = state.venue.orders(user).await.map_err(venue_error)?;
        reports
            .iter()
            .filter(|r| pair.as_deref().is_none_or(|p| r.pair == p))
            .filter(|r| status.is_none_or(|s| OrderStatus::from(r.status) == s))
            .map(|r| Ok(Order::from_report(r, state.catalog.market(&r.pair)?)))
            .collect()
    }

    async fn order(&self, ctx: &Context<'_>, user_id: ID, id: ID) -> Result<Order> {
        let state = ctx.data::<VenueState>()?;
        let user = checked_user_id(&user_id)?;
        let report = state.venue.order(user, &id).await.map_err(venue_error)?;
        Ok(Order::from_report(
            &report,
            state.catalog.market(&report.pair)?,
        ))
    }
}
