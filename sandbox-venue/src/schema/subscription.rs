//! The contract's `Subscription` type. Market subscriptions each open
//! their own venue market stream (see `streams`); user subscriptions each
//! open their own venue user-event stream.

use super::errors::venue_error;
use super::objects::{Balance, BookEvent, MarketStatus, Order, TradeBatch, UserEvent};
use super::streams::{user_events, PairFeed};
use super::{checked_user_id, VenueState};
use async_graphql::{Context, Result, Subscription, ID};
use feeds::{venue, MarketFeed, Venue};
use futures_util::{Stream, StreamExt};

/// The root of subscriptions.
pub struct Subscription;

#[Subscription(name = "Subscription")]
impl Subscription {
    /// A SNAPSHOT first, then every DELTA in seq order (a new SNAPSHOT with reason resync if the subscriber fell behind).
    async fn order_book_updates(
        &self,
        ctx: &Context<'_>,
        pair: String,
    ) -> Result<impl Stream<Item = BookEvent>> {
        Ok(pair_feed(ctx, &pair).await?.book_events())
    }

    /// Every trade batch of the pair from now on, in seq order.
    async fn trades(
        &self,
        ctx: &Context<'_>,
        pair: String,
    ) -> Result<impl Stream<Item = TradeBatch>> {
        Ok(pair_feed(ctx, &pair).await?.trade_batches())
    }

    /// The pair's trading status now, then every change (halt, resume).
    async fn market_status(
        &self,
        ctx: &Context<'_>,
        pair: String,
    ) -> Result<impl Stream<Item = MarketStatus>> {
        Ok(pair_feed(ctx, &pair).await?.status_events())
    }

    /// A user's order reports.
    async fn user_orders(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> Result<impl Stream<Item = Order>> {
        let user = checked_user_id(&user_id)?.to_string();
        let events = venue_user_events(
            ctx,
            move |e| matches!(e, venue::UserEvent::Order(r) if r.user == user),
        )
        .await?;
        Ok(events.filter_map(|e| async move {
            match e {
                UserEvent::Order(order) => Some(order),
                _ => None,
            }
        }))
    }

    /// A user's balance changes.
    async fn user_balances(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> Result<impl Stream<Item = Balance>> {
        let user = checked_user_id(&user_id)?.to_string();
        let events = venue_user_events(
            ctx,
            move |e| matches!(e, venue::UserEvent::Balance { user: u, .. } if *u == user),
        )
        .await?;
        Ok(events.filter_map(|e| async move {
            match e {
                UserEvent::Balance(balance) => Some(balance),
                _ => None,
            }
        }))
    }

    /// Every user's orders, fills and balance changes, in venue order (for the API's order sync).
    async fn user_events(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = UserEvent>> {
        venue_user_events(ctx, |_| true).await
    }
}

async fn pair_feed(ctx: &Context<'_>, pair: &str) -> Result<PairFeed> {
    let state = ctx.data::<VenueState>()?;
    let spec = state.catalog.market(pair)?.clone();
    let stream = state.venue.subscribe().await.map_err(venue_error)?;
    Ok(PairFeed::new(stream, spec, state.faults.clone()))
}

async fn venue_user_events<F>(
    ctx: &Context<'_>,
    keep: F,
) -> Result<impl Stream<Item = UserEvent> + Send + 'static>
where
    F: Fn(&venue::UserEvent) -> bool + Send + 'static,
{
    let state = ctx.data::<VenueState>()?;
    let events = state.venue.user_events().await.map_err(venue_error)?;
    Ok(user_events(events, state.catalog.clone(), keep))
}
