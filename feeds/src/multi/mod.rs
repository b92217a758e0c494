//! [`MultiVenue`]: several venues behind one [`Venue`], each owning a set
//! of pairs (docs/ARCHITECTURE.md, "Several venues").
//!
//! - **Pairs**: every pair belongs to exactly one venue; an order goes to
//!   the venue that owns its pair.
//! - **Order ids** are the venue's id behind the venue's name
//!   (`NAME:ID`), so a cancel or a lookup reaches the venue that holds the
//!   order and two venues' ids never collide. An id without a venue's
//!   name (stored while the hub ran one venue) is looked up at every
//!   venue; the one that knows it serves it (two that know it: not found,
//!   rather than a guess).
//! - **Assets**: an asset several venues hold (BTC traded against AUD on
//!   one and USD on the other) is one balance to the user: the sum of its
//!   balances at every venue that lists it. Deposits and withdrawals of an
//!   asset credit and debit its *funding* venue only (configured, else the
//!   first venue trading a pair of it, else the first listing it): funds
//!   are never split across venues, and a debit larger than what the
//!   funding venue holds is `InsufficientFunds`.
//! - **Failures** of one venue are [`VenueError::PartUnavailable`], named:
//!   each venue has its own breaker and timeouts (its adapter's), and a
//!   breaker over the whole must not open for one venue's outage.
//! - **User events** of every venue are merged; a balance event of a
//!   shared asset carries the sum (see `events.rs`).
//! - **Market data**: the hub subscribes to each venue itself (each keeps
//!   its own epoch, reconnects and staleness); [`MarketFeed::subscribe`]
//!   here merges the venues' streams for callers that want one.

mod events;
#[cfg(test)]
mod tests;

use crate::event::MarketStream;
use crate::venue::{
    AssetSpec, Balance, MarketFeed, OrderReport, PlaceOrder, UserEvent, Venue, VenueError,
};
use async_trait::async_trait;
use orderbook::MarketSpec;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Separates a venue's name from its own order id (`NAME:ID`).
const ID_SEPARATOR: char = ':';

/// One venue of a [`MultiVenue`], as configured.
#[derive(Clone)]
pub struct VenuePart {
    /// Unique, without `:` (it prefixes the venue's order ids).
    pub name: String,
    pub venue: Arc<dyn Venue>,
    /// The pairs this venue owns; empty: every pair it lists.
    pub pairs: Vec<String>,
    /// Assets whose deposits and withdrawals go to this venue.
    pub funds: Vec<String>,
}

/// Why a set of venues cannot run together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("venues: {0}")]
pub struct MultiVenueError(pub String);

struct Part {
    name: String,
    venue: Arc<dyn Venue>,
}

struct Inner {
    parts: Vec<Part>,
    /// Pair → owning part.
    owner: HashMap<String, usize>,
    specs: Vec<MarketSpec>,
    /// Every asset once, in the order first listed.
    assets: Vec<AssetSpec>,
    /// Asset → the parts that list it, in configuration order.
    holders: HashMap<String, Vec<usize>>,
    /// Asset → the part its deposits and withdrawals go to.
    funding: HashMap<String, usize>,
}

/// Several venues as one. Cheap to clone.
#[derive(Clone)]
pub struct MultiVenue {
    inner: Arc<Inner>,
}

fn invalid(message: String) -> MultiVenueError {
    MultiVenueError(message)
}

impl MultiVenue {
    /// Checks that the venues fit together: names unique, every owned pair
    /// listed by its venue and owned once, an asset at one scale
    /// everywhere, every funded asset listed by its venue and funded once.
    pub fn new(parts: Vec<VenuePart>) -> Result<MultiVenue, MultiVenueError> {
        if parts.is_empty() {
            return Err(invalid("no venue".into()));
        }
        let mut inner = Inner {
            parts: Vec::new(),
            owner: HashMap::new(),
            specs: Vec::new(),
            assets: Vec::new(),
            holders: HashMap::new(),
            funding: HashMap::new(),
        };
        for (i, part) in parts.into_iter().enumerate() {
            if part.name.is_empty() || part.name.contains(ID_SEPARATOR) {
                return Err(invalid(format!(
                    "venue name {:?} must be non-empty and without '{ID_SEPARATOR}'",
                    part.name
                )));
            }
            if inner.parts.iter().any(|p| p.name == part.name) {
                return Err(invalid(format!("two venues are named {}", part.name)));
            }
            let listed = part.venue.markets();
            let owned: Vec<MarketSpec> = if part.pairs.is_empty() {
                listed
            } else {
                let mut owned = Vec::new();
                for pair in &part.pairs {
                    let spec = listed.iter().find(|s| &s.symbol == pair).ok_or_else(|| {
                        let names: Vec<&str> = listed.iter().map(|s| s.symbol.as_str()).collect();
                        invalid(format!(
                            "venue {} does not list {pair} (it lists {})",
                            part.name,
                            names.join(", ")
                        ))
                    })?;
                    owned.push(spec.clone());
                }
                owned
            };
            for spec in owned {
                if let Some(&other) = inner.owner.get(&spec.symbol) {
                    return Err(invalid(format!(
                        "{} is owned by both {} and {}",
                        spec.symbol, inner.parts[other].name, part.name
                    )));
                }
                inner.owner.insert(spec.symbol.clone(), i);
                inner.specs.push(spec);
            }
            let mut listed_assets = std::collections::HashSet::new();
            for asset in part.venue.assets() {
                match inner.assets.iter().find(|a| a.symbol == asset.symbol) {
                    Some(known) if known.scale != asset.scale => {
                        return Err(invalid(format!(
                            "{} has {} decimals at one venue and {} at {}",
                            asset.symbol, known.scale, asset.scale, part.name
                        )));
                    }
                    Some(_) => {}
                    None => inner.assets.push(asset.clone()),
                }
                inner
                    .holders
                    .entry(asset.symbol.clone())
                    .or_default()
                    .push(i);
                listed_assets.insert(asset.symbol);
            }
            for asset in &part.funds {
                if !listed_assets.contains(asset) {
                    return Err(invalid(format!(
                        "venue {} funds {asset} but does not list it",
                        part.name
                    )));
                }
                if let Some(&other) = inner.funding.get(asset) {
                    return Err(invalid(format!(
                        "{asset} is funded at both {} and {}",
                        inner.parts[other].name, part.name
                    )));
                }
                inner.funding.insert(asset.clone(), i);
            }
            inner.parts.push(Part {
                name: part.name,
                venue: part.venue,
            });
        }
        // Unnamed: the first venue trading a pair of the asset, else the
        // first listing it.
        for (asset, holders) in &inner.holders {
            let trades = |&&h: &&usize| {
                inner.specs.iter().any(|spec| {
                    inner.owner.get(&spec.symbol) == Some(&h)
                        && (&spec.base == asset || &spec.quote == asset)
                })
            };
            let default = holders.iter().find(trades).unwrap_or(&holders[0]);
            inner.funding.entry(asset.clone()).or_insert(*default);
        }
        Ok(MultiVenue {
            inner: Arc::new(inner),
        })
    }

    /// The venue that owns `pair`, by name.
    pub fn owner_of(&self, pair: &str) -> Option<&str> {
        let i = *self.inner.owner.get(pair)?;
        Some(&self.inner.parts[i].name)
    }

    /// The venue that deposits and withdrawals of `asset` go to, by name.
    pub fn funding_venue(&self, asset: &str) -> Option<&str> {
        let i = *self.inner.funding.get(asset)?;
        Some(&self.inner.parts[i].name)
    }

    fn part_of_pair(&self, pair: &str) -> Result<&Part, VenueError> {
        let i = self
            .inner
            .owner
            .get(pair)
            .ok_or_else(|| VenueError::UnknownPair(pair.to_owned()))?;
        Ok(&self.inner.parts[*i])
    }

    /// The part that holds order `id` of `user` and the venue's own id:
    /// the part its `NAME:` prefix names; for an id without one (stored
    /// before the hub ran several venues) the one venue that knows it.
    /// Never `OrderNotFound` for an order that may still be open
    /// somewhere (a caller records such an order as cancelled): an id
    /// two venues know is refused, and an id naming a venue no longer
    /// configured is that venue unavailable.
    async fn part_of_order<'a>(
        &self,
        user: &str,
        id: &'a str,
    ) -> Result<(&Part, &'a str), VenueError> {
        let prefix = id.split_once(ID_SEPARATOR);
        if let Some((name, own)) = prefix {
            if let Some(part) = self.inner.parts.iter().find(|p| p.name == name) {
                return Ok((part, own));
            }
        }
        let mut found: Vec<&Part> = Vec::new();
        for part in &self.inner.parts {
            match part.venue.order(user, id).await {
                Ok(_) => found.push(part),
                Err(VenueError::OrderNotFound) => {}
                Err(e) => return Err(of_part(&part.name, e)),
            }
        }
        match (found.as_slice(), prefix) {
            ([part], _) => Ok((part, id)),
            ([], Some((name, _))) => Err(VenueError::PartUnavailable {
                venue: name.to_owned(),
                reason: "not configured".into(),
            }),
            ([], None) => Err(VenueError::OrderNotFound),
            (several, _) => {
                let names: Vec<&str> = several.iter().map(|p| p.name.as_str()).collect();
                Err(VenueError::InvalidOrder(format!(
                    "order id {id} is known at venues {}: cancel it at its venue",
                    names.join(" and ")
                )))
            }
        }
    }

    fn funding_part(&self, asset: &str) -> Result<&Part, VenueError> {
        let i = self
            .inner
            .funding
            .get(asset)
            .ok_or_else(|| VenueError::UnknownAsset(asset.to_owned()))?;
        Ok(&self.inner.parts[*i])
    }
}

/// `report` with its order id behind `venue`'s name.
fn tag_report(venue: &str, mut report: OrderReport) -> OrderReport {
    report.order_id = tagged(venue, &report.order_id);
    report
}

fn tagged(venue: &str, id: &str) -> String {
    format!("{venue}{ID_SEPARATOR}{id}")
}

/// A venue's error as the error of one venue of several: its being
/// unavailable is [`VenueError::PartUnavailable`], named.
fn of_part(venue: &str, e: VenueError) -> VenueError {
    match e {
        VenueError::Unavailable(reason) => VenueError::PartUnavailable {
            venue: venue.to_owned(),
            reason,
        },
        other => other,
    }
}

/// `a + b`, field by field.
fn add(a: Balance, b: Balance) -> Balance {
    Balance {
        available: a.available.saturating_add(b.available),
        locked: a.locked.saturating_add(b.locked),
    }
}

#[async_trait]
impl MarketFeed for MultiVenue {
    fn markets(&self) -> Vec<MarketSpec> {
        self.inner.specs.clone()
    }

    /// Every venue's stream merged (only the pairs each owns); the epoch
    /// is the venues' epochs joined with `.`, in configuration order. It
    /// ends once every venue's stream has ended; a venue that reconnects
    /// with a new epoch is not followed (the hub subscribes per venue).
    async fn subscribe(&self) -> Result<MarketStream, VenueError> {
        let mut streams = Vec::new();
        for part in &self.inner.parts {
            streams.push(part.venue.subscribe().await?);
        }
        let epoch = combined_epoch(streams.iter().map(|s| s.epoch.as_str()));
        let (tx, rx) = mpsc::channel(1024);
        for (i, mut stream) in streams.into_iter().enumerate() {
            let (tx, inner) = (tx.clone(), self.inner.clone());
            tokio::spawn(async move {
                while let Some(event) = stream.events.recv().await {
                    if inner.owner.get(&**event.pair()) == Some(&i) && tx.send(event).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
        Ok(MarketStream { epoch, events: rx })
    }

    /// The first venue's problem, named.
    fn problem(&self) -> Option<String> {
        self.inner.parts.iter().find_map(|p| {
            p.venue
                .problem()
                .map(|problem| format!("venue {}: {problem}", p.name))
        })
    }
}

/// The epoch of several venues' channels taken together: their epochs
/// joined with `.` in configuration order (one venue: its own epoch). It
/// changes whenever any of them does.
pub fn combined_epoch<'a>(epochs: impl IntoIterator<Item = &'a str>) -> String {
    epochs.into_iter().collect::<Vec<_>>().join(".")
}

#[async_trait]
impl Venue for MultiVenue {
    fn assets(&self) -> Vec<AssetSpec> {
        self.inner.assets.clone()
    }

    async fn place_order(&self, order: PlaceOrder) -> Result<OrderReport, VenueError> {
        let part = self.part_of_pair(&order.pair)?;
        let report = part
            .venue
            .place_order(order)
            .await
            .map_err(|e| of_part(&part.name, e))?;
        Ok(tag_report(&part.name, report))
    }

    async fn cancel_order(&self, user: &str, order_id: &str) -> Result<OrderReport, VenueError> {
        let (part, own) = self.part_of_order(user, order_id).await?;
        let report = part
            .venue
            .cancel_order(user, own)
            .await
            .map_err(|e| of_part(&part.name, e))?;
        Ok(tag_report(&part.name, report))
    }

    async fn order(&self, user: &str, order_id: &str) -> Result<OrderReport, VenueError> {
        let (part, own) = self.part_of_order(user, order_id).await?;
        let report = part
            .venue
            .order(user, own)
            .await
            .map_err(|e| of_part(&part.name, e))?;
        Ok(tag_report(&part.name, report))
    }

    /// Every venue's orders of `user`, newest first; fails when any venue
    /// does (a partial list would look like lost orders).
    async fn orders(&self, user: &str) -> Result<Vec<OrderReport>, VenueError> {
        let lists = futures_util::future::try_join_all(
            self.inner
                .parts
                .iter()
                .map(|p| async { p.venue.orders(user).await.map_err(|e| of_part(&p.name, e)) }),
        )
        .await?;
        let mut all: Vec<OrderReport> = lists
            .into_iter()
            .zip(&self.inner.parts)
            .flat_map(|(list, part)| list.into_iter().map(|r| tag_report(&part.name, r)))
            .collect();
        all.sort_by_key(|r| std::cmp::Reverse(r.created_ts));
        Ok(all)
    }

    /// Every asset with the sum of `user`'s balances at the venues that
    /// list it; fails when any venue does.
    async fn balances(&self, user: &str) -> Result<Vec<(String, Balance)>, VenueError> {
        let lists = futures_util::future::try_join_all(self.inner.parts.iter().map(|p| async {
            p.venue
                .balances(user)
                .await
                .map_err(|e| of_part(&p.name, e))
        }))
        .await?;
        let mut sums: HashMap<String, Balance> = HashMap::new();
        for (asset, balance) in lists.into_iter().flatten() {
            let sum = sums.entry(asset).or_default();
            *sum = add(*sum, balance);
        }
        Ok(self
            .inner
            .assets
            .iter()
            .map(|a| (a.symbol.clone(), sums.remove(&a.symbol).unwrap_or_default()))
            .collect())
    }

    /// Credits the asset's funding venue; answers the user's balance there.
    async fn credit(&self, user: &str, asset: &str, amount: u64) -> Result<Balance, VenueError> {
        let part = self.funding_part(asset)?;
        let credited = part.venue.credit(user, asset, amount).await;
        credited.map_err(|e| of_part(&part.name, e))
    }

    /// Debits the asset's funding venue only (see the module doc).
    async fn debit(&self, user: &str, asset: &str, amount: u64) -> Result<Balance, VenueError> {
        let part = self.funding_part(asset)?;
        let debited = part.venue.debit(user, asset, amount).await;
        debited.map_err(|e| of_part(&part.name, e))
    }

    async fn user_events(&self) -> Result<mpsc::UnboundedReceiver<UserEvent>, VenueError> {
        events::merge(self.inner.clone()).await
    }
}
