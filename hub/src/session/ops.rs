//! The client ops of one connection, decoded by `protocol::ops`:
//! `subscribe` (public topics, `heartbeat`, private channels; with
//! `resume`), `unsubscribe`, `auth` and `ping`, each answered with its
//! reply from `protocol::replies`; the order-entry ops go to `orders.rs`.

use super::connection::{Shared, Sub, Subscriptions};
use super::HubContext;
use super::{orders, private};
use crate::metrics as m;
use crate::protocol::channel::{Cadence, Channel, ChannelKind};
use crate::protocol::ops::{Op, OpError, ResumePoint};
use crate::protocol::{replies, ErrorCode};
use feeds::event::now_micros;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

pub(super) async fn handle(
    op: Op,
    shared: &Arc<Shared>,
    ctx: &Arc<HubContext>,
    subs: &mut Subscriptions,
    close: &mpsc::UnboundedSender<(u16, &'static str)>,
) -> Result<(), OpError> {
    match op {
        Op::Ping { id } => {
            shared.reply(replies::pong(id, now_micros()));
            Ok(())
        }
        Op::Auth {
            id,
            token,
            cancel_on_disconnect,
        } => authenticate(id, &token, cancel_on_disconnect, shared, ctx, close).await,
        Op::OrderPlace { id, order } => {
            orders::run(id, shared, ctx, move |s, c| async move {
                orders::place(id, &order, &s, &c).await
            })
            .await
        }
        Op::OrderCancel { id, order_id } => {
            orders::run(id, shared, ctx, move |s, c| async move {
                orders::cancel(id, &order_id, &s, &c).await
            })
            .await
        }
        Op::OrderCancelAll { id, pair } => orders::cancel_all(id, pair, shared, ctx).await,
        Op::CancelAfter { id, timeout_ms } => {
            orders::run(id, shared, ctx, move |s, c| async move {
                orders::cancel_after(id, timeout_ms, &s, &c).await
            })
            .await
        }
        Op::Unsubscribe { id, channels } => {
            let channels = dedup(channels);
            // Validate everything first: a refused request changes nothing.
            for name in &channels {
                Channel::parse(name).map_err(|e| {
                    OpError::new(Some(id), ErrorCode::UnknownChannel, e.to_string())
                })?;
            }
            let mut removed = Vec::new();
            for name in channels {
                if let Some(entry) = subs.remove(&name) {
                    match entry {
                        Sub::Market(ch) => {
                            shared.subscriber.queue.unsubscribe(ch.id);
                            ctx.markets.unsubscribe(&ch, shared.subscriber.conn_id);
                        }
                        Sub::Heartbeat => shared.heartbeat.store(false, Ordering::Relaxed),
                        Sub::Private(ch) => shared.private.unsubscribe(ch),
                    }
                    removed.push(name);
                }
            }
            metrics::gauge!(m::SUBSCRIPTIONS).decrement(removed.len() as f64);
            shared.reply(replies::unsubscribed(id, &removed));
            Ok(())
        }
        Op::Subscribe {
            id,
            channels,
            resume,
        } => subscribe(id, channels, resume, shared, ctx, subs).await,
    }
}

async fn subscribe(
    id: i64,
    channels: Vec<String>,
    resume: HashMap<String, ResumePoint>,
    shared: &Shared,
    ctx: &HubContext,
    subs: &mut Subscriptions,
) -> Result<(), OpError> {
    let err = |code, msg: String| OpError::new(Some(id), code, msg);
    let channels = dedup(channels);
    if channels.is_empty() {
        return Err(err(
            ErrorCode::BadRequest,
            "channels must not be empty".into(),
        ));
    }
    // Validate everything first: a refused request changes nothing.
    let mut resolved = Vec::with_capacity(channels.len());
    for name in &channels {
        let channel =
            Channel::parse(name).map_err(|e| err(ErrorCode::UnknownChannel, e.to_string()))?;
        let unknown = || {
            err(
                ErrorCode::UnknownChannel,
                format!("no such channel: {name}"),
            )
        };
        let sub = match channel.kind {
            ChannelKind::Private(private) => {
                if shared.private.user().is_none() {
                    return Err(err(ErrorCode::Unauthorized, format!("{name} needs auth")));
                }
                // `orders` and `balances` refuse a cadence.
                if channel.cadence != Cadence::Raw {
                    return Err(unknown());
                }
                Sub::Private(private)
            }
            ChannelKind::Heartbeat => Sub::Heartbeat,
            ChannelKind::Topic(_) | ChannelKind::Status => {
                Sub::Market(ctx.markets.resolve(&channel).ok_or_else(unknown)?)
            }
        };
        resolved.push((name.clone(), sub));
    }
    let new = resolved
        .iter()
        .filter(|(n, _)| !subs.contains_key(n))
        .count();
    if subs.len() + new > ctx.limits.max_subscriptions {
        return Err(err(
            ErrorCode::TooManySubscriptions,
            format!(
                "at most {} channels per connection",
                ctx.limits.max_subscriptions
            ),
        ));
    }
    let (mut recovered, mut not_recovered) = (Vec::new(), Vec::new());
    let mut release = Vec::new();
    let mut pending = Vec::new();
    let mut private_subs = Vec::new();
    for (name, sub) in resolved {
        let point = resume.get(&name).map(|p| (p.epoch.clone(), p.seq));
        match &sub {
            Sub::Heartbeat => shared.heartbeat.store(true, Ordering::Relaxed),
            Sub::Private(ch) => {
                // Private channels keep no history: a resume is never recovered.
                if point.is_some() {
                    not_recovered.push(name.clone());
                }
                private_subs.push(*ch);
            }
            Sub::Market(ch) => {
                release.push(ch.id);
                let rx = ctx
                    .markets
                    .subscribe(ch, shared.subscriber.clone(), point.clone());
                pending.push((name.clone(), point.is_some(), rx));
            }
        }
        if subs.insert(name, sub).is_none() {
            metrics::gauge!(m::SUBSCRIPTIONS).increment(1.0);
        }
    }
    for (name, asked, rx) in pending {
        let ok = rx.await.unwrap_or(false);
        if asked {
            if ok {
                recovered.push(name)
            } else {
                not_recovered.push(name)
            }
        }
    }
    shared.reply(replies::subscribed(
        id,
        &channels,
        &recovered,
        &not_recovered,
    ));
    shared.subscriber.queue.release(&release);
    // After the reply, so the reply precedes the channel's first message.
    for ch in private_subs {
        shared.private.subscribe(ch);
    }
    Ok(())
}

/// `auth`: verifies the access token with the API, records the user and
/// starts forwarding their private updates.
async fn authenticate(
    id: i64,
    token: &str,
    cancel_on_disconnect: bool,
    shared: &Shared,
    ctx: &HubContext,
    close: &mpsc::UnboundedSender<(u16, &'static str)>,
) -> Result<(), OpError> {
    let Some(api) = &ctx.api else {
        return Err(OpError::new(
            Some(id),
            ErrorCode::Unauthorized,
            "this hub runs without the REST API",
        ));
    };
    let user = api
        .auth
        .verify_access(token)
        .await
        .map_err(|e| OpError::new(Some(id), ErrorCode::Unauthorized, e.message))?;
    let another_user = || {
        OpError::new(
            Some(id),
            ErrorCode::BadRequest,
            "already authenticated as another user",
        )
    };
    if shared.private.user().is_some_and(|u| u != user.user_id) {
        return Err(another_user());
    }
    // Before the user is recorded: a switch that cannot be attached
    // refuses the whole `auth` (ops of a connection run one at a time, so
    // the user cannot change in between).
    if cancel_on_disconnect {
        super::orders::attach(id, &user.user_id, shared, ctx).await?;
    }
    if !shared.private.set_user(&user.user_id, token) {
        return Err(another_user());
    }
    let mut forwarder = shared.forwarder.lock();
    if forwarder.as_ref().is_none_or(|f| f.is_finished()) {
        let updates = api.private.subscribe(&user.user_id);
        *forwarder = Some(tokio::spawn(private::forward(
            api.clone(),
            updates,
            shared.private.clone(),
            shared.subscriber.clone(),
            ctx.markets.epoch().to_string(),
            close.clone(),
        )));
    }
    drop(forwarder);
    let attached = shared.attached.lock().is_some();
    tracing::Span::current().record("user_id", user.user_id.as_str());
    shared.reply(replies::authed(id, &user.user_id, attached));
    Ok(())
}

fn dedup(channels: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    channels
        .into_iter()
        .filter(|c| seen.insert(c.clone()))
        .collect()
}
