//! [`OrderCommits`]: `POST /orders` tells the order sync that it committed
//! an order, so the sync, holding a venue report that arrived before the
//! commit, re-reads the store at once instead of polling it.

use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::Notify;

/// Orders the sync waits for, by order id (see the module doc).
#[derive(Default)]
pub struct OrderCommits {
    waiting: DashMap<String, Arc<Notify>>,
}

impl OrderCommits {
    /// Says that `order_id` was committed (wakes a sync waiting for it).
    pub fn committed(&self, order_id: &str) {
        if let Some(wake) = self.waiting.get(order_id) {
            wake.notify_one();
        }
    }

    /// Starts waiting for `order_id`: a commit said from now on is not
    /// missed, even one said before [`CommitWait::next`] is awaited.
    pub fn wait_for(&self, order_id: &str) -> CommitWait<'_> {
        let wake = self.waiting.entry(order_id.to_owned()).or_default().clone();
        CommitWait {
            commits: self,
            order_id: order_id.to_owned(),
            wake,
        }
    }
}

/// A registered wait for one order's commit; unregisters when dropped.
pub struct CommitWait<'a> {
    commits: &'a OrderCommits,
    order_id: String,
    wake: Arc<Notify>,
}

impl CommitWait<'_> {
    /// Resolves once the order is said committed (at once if it was since
    /// the last call).
    pub async fn next(&self) {
        self.wake.notified().await;
    }
}

impl Drop for CommitWait<'_> {
    fn drop(&mut self) {
        // References: the map's and this wait's (one waiter per order:
        // the sync handles one event at a time).
        self.commits.waiting.remove_if(&self.order_id, |_, w| {
            Arc::ptr_eq(w, &self.wake) && Arc::strong_count(w) <= 2
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_commit_said_before_the_wait_is_awaited_is_kept() {
        let commits = OrderCommits::default();
        let wait = commits.wait_for("o1");
        commits.committed("o2");
        commits.committed("o1");
        tokio::time::timeout(Duration::from_secs(30), wait.next())
            .await
            .expect("woken");
        drop(wait);
        assert!(commits.waiting.is_empty(), "the wait unregistered");
    }
}
