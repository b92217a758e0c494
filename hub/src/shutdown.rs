//! Graceful shutdown as a value that every long-running task holds.
//!
//! One [`Shutdown`] is created at start-up and cloned into the listener, each
//! connection and each background task. Any clone may [`trigger`] it (usually
//! `main`, after [`signal`] resolves); every task awaiting [`triggered`] then
//! wakes, says goodbye to its peer (docs/PROTOCOL.md: `shutdown` message, close
//! 1001) and returns. The model is tokio-rs/mini-redis's `shutdown.rs`,
//! built on a `watch` channel so that late waiters see the trigger too.
//!
//! [`trigger`]: Shutdown::trigger
//! [`triggered`]: Shutdown::triggered

use std::sync::Arc;

use tokio::sync::watch;

/// A shared, one-way "stop now" flag that can be awaited.
///
/// Guarantees: triggering is idempotent and cannot be undone; every clone
/// sees it; [`Shutdown::triggered`] resolves for waiters that started before
/// the trigger and returns at once for those that start after.
#[derive(Clone, Debug)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
    receiver: watch::Receiver<bool>,
}

impl Shutdown {
    /// A shutdown that has not been triggered.
    pub fn new() -> Self {
        let (sender, receiver) = watch::channel(false);
        Self {
            sender: Arc::new(sender),
            receiver,
        }
    }

    /// Starts the shutdown: wakes every current and future waiter.
    /// Calling it again does nothing.
    pub fn trigger(&self) {
        self.sender
            .send_if_modified(|triggered| !std::mem::replace(triggered, true));
    }

    /// Whether [`Shutdown::trigger`] has been called on any clone.
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves once the shutdown is triggered (immediately if it already
    /// is). Cancel-safe, so it can sit in a `tokio::select!` loop.
    pub async fn triggered(&self) {
        let mut receiver = self.receiver.clone();
        // `wait_for` fails only when the sender is dropped, and `self` holds
        // it; either way there is nothing left to wait for.
        let _ = receiver.wait_for(|triggered| *triggered).await;
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

/// SIGINT (Ctrl-C) and SIGTERM, caught from [`Signals::install`] on. The
/// hub installs them before it starts serving, so a signal that comes
/// while it starts (an orchestrator stopping a task that is still coming
/// up) is kept, and stops the hub in order once it has started, instead
/// of ending the process at once with its last log lines unwritten.
#[cfg(unix)]
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    /// Catches the signals from now on. Errors only if the handlers cannot
    /// be installed.
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves once either signal has come (at once if one came since
    /// [`install`](Self::install)).
    pub async fn received(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("received SIGINT, shutting down"),
            _ = self.terminate.recv() => tracing::info!("received SIGTERM, shutting down"),
        }
    }
}

/// Ctrl-C, on platforms without Unix signals.
#[cfg(not(unix))]
pub struct Signals;

#[cfg(not(unix))]
impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    pub async fn received(self) {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("received Ctrl-C, shutting down");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn trigger_wakes_all_waiters() {
        let shutdown = Shutdown::new();
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let shutdown = shutdown.clone();
                tokio::spawn(async move { shutdown.triggered().await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(!shutdown.is_triggered());

        shutdown.clone().trigger();
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("waiter woke")
                .unwrap();
        }
        assert!(shutdown.is_triggered());
    }

    #[tokio::test]
    async fn waiting_after_trigger_returns_immediately() {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        shutdown.trigger();
        let late = shutdown.clone();
        tokio::time::timeout(Duration::from_millis(100), late.triggered())
            .await
            .expect("already triggered");
        assert!(late.is_triggered());
    }

    #[tokio::test]
    async fn not_triggered_keeps_waiting() {
        let shutdown = Shutdown::new();
        let waited = tokio::time::timeout(Duration::from_millis(50), shutdown.triggered()).await;
        assert!(waited.is_err());
    }
}
