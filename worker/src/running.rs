//! [`Running`]: the consumers of one process (`nax-worker`, or `nax-hub`
//! with `[worker] in_process`), each an `api::queue::run` loop on its
//! queue, stopped together; and [`source`], the queue a consumer reads
//! (SQS when events go to SQS, else the embedded event log).

use api::events::sqs::{Queue, SqsConfig};
use api::queue::log::{LogOptions, LogSource};
use api::queue::sqs::SqsSource;
use api::queue::{Consumer, RunOptions, Source};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a stop waits for a consumer to finish its batch.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// The queue `queue` as the configuration has it: SQS when
/// `api.events_to_sqs`, else the embedded event log in `data_dir`.
pub async fn source(
    api: &api::ApiConfig,
    data_dir: &Path,
    queue: Queue,
) -> anyhow::Result<Arc<dyn Source>> {
    Ok(if api.events_to_sqs {
        Arc::new(SqsSource::connect(&SqsConfig::from_api(api), queue).await?)
    } else {
        Arc::new(LogSource::open(data_dir, queue, LogOptions::default())?)
    })
}

/// Consumers running in this process.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    ready: Vec<(&'static str, Arc<AtomicBool>)>,
}

impl Default for Running {
    fn default() -> Self {
        Running {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
            ready: Vec::new(),
        }
    }
}

impl Running {
    /// Starts `consumer` on `source`.
    pub fn spawn(&mut self, source: Arc<dyn Source>, consumer: Arc<dyn Consumer>) {
        let name = consumer.name();
        let ready = Arc::new(AtomicBool::new(false));
        let options = RunOptions {
            stop: self.stop.subscribe(),
            ready: ready.clone(),
        };
        tracing::info!(
            consumer = name,
            queue = source.queue().name(),
            "consumer started"
        );
        self.tasks.push((
            name,
            tokio::spawn(api::queue::run(source, consumer, options)),
        ));
        self.ready.push((name, ready));
    }

    /// Starts a periodic job (reconciliation) that is ready from the start.
    pub fn spawn_task(
        &mut self,
        name: &'static str,
        job: impl FnOnce(watch::Receiver<bool>) -> JoinHandle<()>,
    ) {
        self.tasks.push((name, job(self.stop.subscribe())));
        self.ready.push((name, Arc::new(AtomicBool::new(true))));
    }

    /// Each consumer and whether it is ready (recovered, and its queue
    /// answers).
    pub fn readiness(&self) -> Vec<(&'static str, bool)> {
        self.ready
            .iter()
            .map(|(name, ready)| (*name, ready.load(Ordering::Relaxed)))
            .collect()
    }

    /// A handle `/ready` reads.
    pub fn ready_flags(&self) -> Vec<(&'static str, Arc<AtomicBool>)> {
        self.ready.clone()
    }

    /// Whether any consumer runs.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Stops every consumer: each finishes the batch in hand (deleting
    /// what it handled) and releases what it received but did not start;
    /// a consumer still busy after [`STOP_GRACE`] is dropped (its messages
    /// come back after their visibility timeout).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (name, task) in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(STOP_GRACE, task).await.is_err() {
                tracing::warn!(consumer = name, "still busy after the stop grace; dropped");
                abort.abort();
            }
        }
    }
}
