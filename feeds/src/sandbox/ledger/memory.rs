//! How much of its users' orders the sandbox remembers: every open order
//! and each user's newest finished ones (docs/ARCHITECTURE.md, "The
//! sandbox venue's memory of orders").

use super::{parse_order_key, Ledger, UserOrder};

/// Finished orders (filled, cancelled, rejected, expired) the sandbox
/// remembers per user, the newest ones; open orders are always kept. A
/// user's older finished orders are forgotten (absent from the user's
/// list, `OrderNotFound` to `order`, `OrderNotOpen` to a cancel: see
/// [`Ledger::forgot`]), so a sandbox that runs for days under order load
/// keeps its memory, and its order map's size, bounded. The hub's store
/// keeps every order (docs/ARCHITECTURE.md, "The sandbox venue's memory
/// of orders").
pub const KEEP_FINISHED: usize = 100;

/// A user's order ids, oldest first, and when to forget the finished
/// ones past [`KEEP_FINISHED`].
#[derive(Debug, Default)]
pub(crate) struct UserOrders {
    pub(crate) ids: Vec<String>,
    /// The length of `ids` at which [`Ledger::add_order`] forgets next:
    /// twice what the last pass kept (at least `2 * KEEP_FINISHED`), so
    /// the passes cost O(1) per order placed even for a user with many
    /// open orders.
    forget_at: usize,
    /// The engine ids of the user's forgotten orders lie in this range
    /// (first and last forgotten; every id of this venue's run is above
    /// an earlier run's, since ids start at the start time).
    forgotten: Option<(u64, u64)>,
}

impl Ledger {
    /// Records a new order of its user, and now and then forgets the
    /// user's finished orders past the newest [`KEEP_FINISHED`].
    pub(crate) fn add_order(&mut self, order: UserOrder) {
        let id = order.report.order_id.clone();
        let mine = self
            .orders_by_user
            .entry(order.report.user.clone())
            .or_default();
        self.orders.insert(id.clone(), order);
        mine.ids.push(id);
        if mine.ids.len() < mine.forget_at.max(2 * KEEP_FINISHED) {
            return;
        }
        let orders = &mut self.orders;
        let mut finished = 0;
        // Newest first: which ids stay (every open order, and the newest
        // finished ones).
        let stays: Vec<bool> = mine
            .ids
            .iter()
            .rev()
            .map(|id| {
                let done = orders.get(id).is_none_or(|o| o.report.status.is_final());
                finished += usize::from(done);
                !done || finished <= KEEP_FINISHED
            })
            .collect();
        let mut stay = stays.into_iter().rev();
        let forgotten = &mut mine.forgotten;
        mine.ids.retain(|id| {
            let keep = stay.next().unwrap_or(true);
            if !keep {
                orders.remove(id);
                if let Some(n) = parse_order_key(id) {
                    let (low, high) = forgotten.get_or_insert((n.0, n.0));
                    (*low, *high) = ((*low).min(n.0), (*high).max(n.0));
                }
            }
            keep
        });
        mine.forget_at = 2 * mine.ids.len();
    }

    /// Whether `order_id` may be one of `user`'s forgotten orders (its
    /// engine id within the range of theirs this run forgot). A cancel of
    /// one answers `OrderNotOpen`, as for a finished order still
    /// remembered, not `OrderNotFound`: the hub reads `OrderNotFound` as
    /// "the venue lost this order" and records it cancelled, which for a
    /// filled order its order sync has not caught up with would be wrong.
    /// An id of that range that was never the user's (another user's, a
    /// market maker's) gets the same answer; the hub only cancels a
    /// user's own orders.
    pub(crate) fn forgot(&self, user: &str, order_id: &str) -> bool {
        let Some((low, high)) = self.orders_by_user.get(user).and_then(|m| m.forgotten) else {
            return false;
        };
        parse_order_key(order_id).is_some_and(|n| (low..=high).contains(&n.0))
    }
}
