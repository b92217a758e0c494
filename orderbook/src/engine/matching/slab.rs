//! Where resting orders live: a slab of nodes, each on its price level's
//! FIFO and its account's list (both intrusive, doubly linked), with the
//! id and account indexes. See the engine's module docs, "Data structure".

use crate::engine::types::{AccountId, OrderId, RestingOrder};
use crate::Qty;
use std::collections::HashMap;

/// "No slot": the end of an intrusive list.
pub(super) const NIL: usize = usize::MAX;

/// One resting order and its links on its level's FIFO and its account's list.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    pub(super) order: RestingOrder,
    pub(super) prev: usize,
    pub(super) next: usize,
    pub(super) acct_prev: usize,
    pub(super) acct_next: usize,
}

/// One price level: a FIFO of slots (oldest at `head`) and their total leaves.
#[derive(Debug, Clone, Copy)]
pub(super) struct Level {
    pub(super) head: usize,
    pub(super) tail: usize,
    pub(super) total: Qty,
}

impl Level {
    pub(super) const EMPTY: Level = Level {
        head: NIL,
        tail: NIL,
        total: Qty::ZERO,
    };

    pub(super) fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// Appends slot `i` at the back of the FIFO (newest, lowest priority).
    pub(super) fn push_back(&mut self, nodes: &mut [Node], i: usize) {
        nodes[i].prev = self.tail;
        nodes[i].next = NIL;
        if self.tail == NIL {
            self.head = i;
        } else {
            nodes[self.tail].next = i;
        }
        self.tail = i;
    }

    /// Takes slot `i` out of the FIFO (anywhere in it).
    pub(super) fn unlink(&mut self, nodes: &mut [Node], i: usize) {
        let (prev, next) = (nodes[i].prev, nodes[i].next);
        if prev == NIL {
            self.head = next;
        } else {
            nodes[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            nodes[next].prev = prev;
        }
        nodes[i].prev = NIL;
        nodes[i].next = NIL;
    }
}

/// The slab of resting orders with its id and account indexes.
#[derive(Debug, Clone, Default)]
pub(super) struct Orders {
    pub(super) nodes: Vec<Node>,
    pub(super) free: Vec<usize>,
    pub(super) by_id: HashMap<OrderId, usize>,
    /// Head slot of each account's list; an account with no resting order
    /// has no entry.
    pub(super) by_account: HashMap<AccountId, usize>,
}

impl Orders {
    /// Stores `order` in a slot (not yet on any level) and indexes it.
    pub(super) fn insert(&mut self, order: RestingOrder) -> usize {
        let head = self.by_account.get(&order.account).copied().unwrap_or(NIL);
        let node = Node {
            order,
            prev: NIL,
            next: NIL,
            acct_prev: NIL,
            acct_next: head,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i] = node;
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        if head != NIL {
            self.nodes[head].acct_prev = i;
        }
        self.by_account.insert(order.account, i);
        self.by_id.insert(order.id, i);
        i
    }

    /// Drops slot `i` from the indexes and frees it. The caller has already
    /// unlinked it from its level.
    pub(super) fn remove(&mut self, i: usize) {
        let Node {
            order,
            acct_prev,
            acct_next,
            ..
        } = self.nodes[i];
        if acct_prev == NIL {
            if acct_next == NIL {
                self.by_account.remove(&order.account);
            } else {
                self.by_account.insert(order.account, acct_next);
            }
        } else {
            self.nodes[acct_prev].acct_next = acct_next;
        }
        if acct_next != NIL {
            self.nodes[acct_next].acct_prev = acct_prev;
        }
        self.by_id.remove(&order.id);
        self.free.push(i);
    }
}
