//! The dynamic batching queue: many concurrent requests in, one model call per batch out.
//!
//! A [`Batcher`] sits between the async request handlers and a model that is faster per item
//! when it sees several items at once. Each [`Batcher::submit`] queues one entry and waits for
//! that entry's own result; a collector task groups waiting entries into batches of at most
//! [`BatcherConfig::max_batch_size`], and a dedicated OS thread runs the model on each batch.
//! The batching rules are generic: nothing here knows what the items or the model are.
//!
//! ```text
//! submit ──admission──▶ queue ──▶ collector task ──slot (1 batch)──▶ model thread ──▶ oneshot replies
//! ```
//!
//! # Lifecycles
//!
//! - **Admission semaphore** (`queue_capacity` permits). `submit` takes a permit with
//!   `try_acquire` (none left: [`BatchError::QueueFull`] at once, never waiting). The permit
//!   travels inside the entry and is released when the entry is handed to the model, or
//!   earlier if the entry is dropped (client gone, deadline passed); so it bounds every entry
//!   not yet handed to the model, and [`Batcher::queue_depth`] is the number of permits out.
//!   [`Batcher::shutdown`] closes it: later submits get [`BatchError::ShuttingDown`].
//! - **Queue** (unbounded mpsc, bounded by the semaphore). Every handle holds a sender; the
//!   collector owns the receiver. `shutdown` sends a close marker, on which the collector closes
//!   the receiver and drains what is already queued; the queue also ends when every handle has
//!   been dropped.
//! - **Reply channel** (one `oneshot` per entry). `submit` keeps the receiver and waits on it
//!   until the entry's deadline (`timeout` after the submit). Dropping the future of `submit`
//!   drops the receiver, which cancels the entry: whoever holds the entry next sees
//!   `is_closed()` and drops it before it reaches the model.
//! - **Collector task** (tokio, spawned by [`Batcher::spawn`]). Loops: reserve the hand-off slot,
//!   wait for a first entry, take what is already waiting, then more until the batch is full
//!   or `max_wait` has passed since that first entry was submitted; drop dead entries; hand the
//!   batch over. It ends when the queue is closed and drained, dropping the slot's sender.
//! - **Hand-off slot** (mpsc of capacity 1). The collector reserves it *before* forming a batch,
//!   so at most one formed batch waits while the model computes the previous one, and entries
//!   that arrive meanwhile go into the batch after it.
//! - **Model thread** (std thread named `name`, owns `run`). Takes batches from the
//!   slot until the collector has gone, drops dead entries, calls `run` (panics caught), sends
//!   each result on its entry's reply channel, then reports [`BatchStats`] to the observer.
//!   When the slot closes it drops `run`, then its exit signal.
//! - **Exit signal** (watch channel, no value ever sent). The model thread holds the sender and
//!   drops it last; [`Batcher::shutdown`] waits on a receiver until the sender is gone.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::{timeout_at, Instant};

#[cfg(test)]
mod tests;

/// What one batch looked like, reported to the [`BatcherConfig::observer`] after every batch.
///
/// Times are read from the tokio clock of the runtime that spawned the batcher (the real
/// clock, unless a test paused it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    /// Entries in the batch that reached the model.
    pub size: usize,
    /// How long the oldest entry of the batch waited between its submit and the model call.
    pub queue_wait_oldest: Duration,
    /// How long the model call took.
    pub compute: Duration,
}

/// A metrics callback, called on the model thread after every batch. It should be quick: the
/// next batch waits for it.
pub type BatchObserver = Arc<dyn Fn(&BatchStats) + Send + Sync>;

/// How a [`Batcher`] forms batches and bounds its queue.
#[derive(Clone)]
pub struct BatcherConfig {
    /// Most entries in one model call (at least 1).
    pub max_batch_size: usize,
    /// How long the first entry of a batch waits for company before the batch goes anyway
    /// (Triton's `max_queue_delay`). A full batch never waits.
    pub max_wait: Duration,
    /// Most entries waiting (submitted, not yet handed to the model); beyond it, `submit`
    /// answers [`BatchError::QueueFull`] at once. At least 1.
    pub queue_capacity: usize,
    /// Deadline of each entry, from its submit to its reply: [`BatchError::Timeout`] after it.
    pub timeout: Duration,
    /// Optional metrics callback, see [`BatchObserver`].
    pub observer: Option<BatchObserver>,
}

impl fmt::Debug for BatcherConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatcherConfig")
            .field("max_batch_size", &self.max_batch_size)
            .field("max_wait", &self.max_wait)
            .field("queue_capacity", &self.queue_capacity)
            .field("timeout", &self.timeout)
            .field(
                "observer",
                &self.observer.as_ref().map(|_| "Fn(&BatchStats)"),
            )
            .finish()
    }
}

/// Why an entry got no result. Each variant maps to one HTTP status (429, 504, 503, 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The queue already holds `queue_capacity` entries.
    #[error("the server is busy, try again later")]
    QueueFull,
    /// The entry was not answered before its deadline.
    #[error("the request timed out while waiting for the model")]
    Timeout,
    /// The batcher is shutting down and accepts no more entries.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The model failed on this entry: the message `run` gave for it, or a generic one when the
    /// whole batch failed (details are logged, not returned).
    #[error("inference failed: {0}")]
    Failed(String),
}

/// Message returned to every entry of a batch whose `run` panicked or miscounted.
const BATCH_FAILED: &str = "the model failed on this batch";

/// A cheap, cloneable handle to a running batcher: see the module docs for what it starts.
pub struct Batcher<I, O> {
    shared: Arc<Shared<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// State every handle shares.
struct Shared<I, O> {
    /// Sender half of the queue; the collector owns the receiver.
    queue: mpsc::UnboundedSender<Message<I, O>>,
    /// One permit per entry not yet handed to the model; closed by `shutdown`.
    admission: Arc<Semaphore>,
    queue_capacity: usize,
    timeout: Duration,
    /// Ends (its sender is dropped) when the model thread exits.
    model_exited: watch::Receiver<()>,
}

/// What travels through the queue.
enum Message<I, O> {
    Entry(Entry<I, O>),
    /// Sent by `shutdown`: the collector closes the queue and drains it.
    Close,
}

/// One submitted item, with where its result goes.
struct Entry<I, O> {
    item: I,
    reply: oneshot::Sender<Result<O, BatchError>>,
    submitted: Instant,
    deadline: Instant,
    /// Queue slot, released when the entry reaches the model or is dropped.
    _admission: OwnedSemaphorePermit,
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the collector task (on the current tokio runtime) and a dedicated OS thread named
    /// `name` that owns `run`.
    ///
    /// `run` gets the items of one batch in submit order and must return one result per item,
    /// in the same order; `Err(message)` becomes [`BatchError::Failed`] with that message for
    /// that entry alone. A panic or a wrong number of results fails the whole batch with a
    /// generic message (details go to the log) and the thread goes on with the next batch.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, when `max_batch_size` or `queue_capacity` is 0 (or the latter
    /// exceeds [`Semaphore::MAX_PERMITS`]), or when the OS refuses a new thread.
    pub fn spawn<F>(name: &str, config: BatcherConfig, run: F) -> Self
    where
        F: FnMut(Vec<I>) -> Vec<Result<O, String>> + Send + 'static,
    {
        assert!(config.max_batch_size >= 1, "max_batch_size must be >= 1");
        assert!(config.queue_capacity >= 1, "queue_capacity must be >= 1");
        let runtime = tokio::runtime::Handle::current();
        let (queue, queued) = mpsc::unbounded_channel();
        let (slot, batches) = mpsc::channel(1);
        let (exit_signal, model_exited) = watch::channel(());
        let observer = config.observer.clone();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // Entered so that `Instant::now()` here reads the runtime's clock.
                let _clock = runtime.enter();
                serve(batches, run, observer);
                drop(exit_signal);
            })
            .expect("failed to start the model thread");
        tokio::spawn(collect(
            queued,
            slot,
            config.max_batch_size,
            config.max_wait,
        ));
        Self {
            shared: Arc::new(Shared {
                queue,
                admission: Arc::new(Semaphore::new(config.queue_capacity)),
                queue_capacity: config.queue_capacity,
                timeout: config.timeout,
                model_exited,
            }),
        }
    }

    /// Queues one entry and waits for its result. Never blocks the async runtime; a full queue
    /// is [`BatchError::QueueFull`] at once. Dropping the returned future cancels the entry.
    pub async fn submit(&self, item: I) -> Result<O, BatchError> {
        let permit = match Arc::clone(&self.shared.admission).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => return Err(BatchError::QueueFull),
            Err(TryAcquireError::Closed) => return Err(BatchError::ShuttingDown),
        };
        let submitted = Instant::now();
        let deadline = submitted + self.shared.timeout;
        let (reply, result) = oneshot::channel();
        let entry = Entry {
            item,
            reply,
            submitted,
            deadline,
            _admission: permit,
        };
        if self.shared.queue.send(Message::Entry(entry)).is_err() {
            return Err(BatchError::ShuttingDown);
        }
        match timeout_at(deadline, result).await {
            Ok(Ok(result)) => result,
            // The entry was dropped unanswered: only when the runtime itself is going away.
            Ok(Err(_)) => Err(BatchError::ShuttingDown),
            Err(_) => Err(BatchError::Timeout),
        }
    }

    /// Entries currently waiting: submitted, not yet handed to the model (a queue-depth gauge).
    pub fn queue_depth(&self) -> usize {
        self.shared.queue_capacity - self.shared.admission.available_permits()
    }

    /// Stops accepting (later submits get [`BatchError::ShuttingDown`]), lets queued entries
    /// finish, and resolves when the model thread has exited. Safe to call from several handles.
    pub async fn shutdown(&self) {
        self.shared.admission.close();
        // Fails only if the collector has already gone, which is what we wait for anyway.
        let _ = self.shared.queue.send(Message::Close);
        let mut model_exited = self.shared.model_exited.clone();
        // No value is ever sent: this returns once the model thread has dropped the sender.
        while model_exited.changed().await.is_ok() {}
    }
}

/// The collector task: forms batches and hands them to the model thread, one slot at a time.
async fn collect<I, O>(
    mut queued: mpsc::UnboundedReceiver<Message<I, O>>,
    slot: mpsc::Sender<Vec<Entry<I, O>>>,
    max_batch_size: usize,
    max_wait: Duration,
) {
    loop {
        let Ok(free_slot) = slot.reserve().await else {
            break; // The model thread has gone.
        };
        let Some(batch) = next_batch(&mut queued, max_batch_size, max_wait).await else {
            break; // Queue closed and drained.
        };
        free_slot.send(batch);
    }
    tracing::debug!("batch collector stopped");
}

/// Waits for the next non-empty batch of live entries; `None` once the queue is closed and
/// drained.
async fn next_batch<I, O>(
    queued: &mut mpsc::UnboundedReceiver<Message<I, O>>,
    max_batch_size: usize,
    max_wait: Duration,
) -> Option<Vec<Entry<I, O>>> {
    loop {
        let first = loop {
            match queued.recv().await? {
                Message::Entry(entry) => break entry,
                Message::Close => queued.close(),
            }
        };
        let window_end = first.submitted + max_wait;
        let mut batch = vec![first];
        while batch.len() < max_batch_size {
            // Entries already waiting join at once, whatever the time.
            let message = match queued.try_recv() {
                Ok(message) => message,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => match timeout_at(window_end, queued.recv()).await {
                    Ok(Some(message)) => message,
                    Ok(None) | Err(_) => break,
                },
            };
            match message {
                Message::Entry(entry) => batch.push(entry),
                Message::Close => queued.close(),
            }
        }
        let batch = keep_live(batch, Instant::now());
        if !batch.is_empty() {
            return Some(batch);
        }
    }
}

/// Drops the entries whose client went away and answers [`BatchError::Timeout`] to those past
/// their deadline; their queue slots are released.
fn keep_live<I, O>(batch: Vec<Entry<I, O>>, now: Instant) -> Vec<Entry<I, O>> {
    batch
        .into_iter()
        .filter(|entry| !entry.reply.is_closed())
        .filter_map(|entry| {
            if entry.deadline <= now {
                let _ = entry.reply.send(Err(BatchError::Timeout));
                None
            } else {
                Some(entry)
            }
        })
        .collect()
}

/// The model thread's loop: one `run` call per batch until the collector has gone.
fn serve<I, O, F>(
    mut batches: mpsc::Receiver<Vec<Entry<I, O>>>,
    mut run: F,
    observer: Option<BatchObserver>,
) where
    F: FnMut(Vec<I>) -> Vec<Result<O, String>>,
{
    while let Some(batch) = batches.blocking_recv() {
        let started = Instant::now();
        let batch = keep_live(batch, started);
        let Some(oldest) = batch.iter().map(|entry| entry.submitted).min() else {
            continue;
        };
        let size = batch.len();
        // Unzipping drops the admission permits: these entries have left the queue.
        let (items, replies): (Vec<I>, Vec<_>) = batch
            .into_iter()
            .map(|entry| (entry.item, entry.reply))
            .unzip();
        let outcome = catch_unwind(AssertUnwindSafe(|| run(items)));
        let compute = started.elapsed();
        match outcome {
            Ok(results) if results.len() == size => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result.map_err(BatchError::Failed));
                }
            }
            Ok(results) => {
                tracing::error!(
                    size,
                    returned = results.len(),
                    "model returned a wrong number of results"
                );
                fail_all(replies);
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("non-string panic payload");
                tracing::error!(size, panic = message, "model panicked on a batch");
                fail_all(replies);
            }
        }
        if let Some(observe) = &observer {
            let stats = BatchStats {
                size,
                queue_wait_oldest: started.saturating_duration_since(oldest),
                compute,
            };
            if catch_unwind(AssertUnwindSafe(|| observe(&stats))).is_err() {
                tracing::error!("batch observer panicked");
            }
        }
    }
    tracing::debug!("model thread stopped");
}

/// Answers the generic [`BATCH_FAILED`] to every entry of a failed batch.
fn fail_all<O>(replies: Vec<oneshot::Sender<Result<O, BatchError>>>) {
    for reply in replies {
        let _ = reply.send(Err(BatchError::Failed(BATCH_FAILED.to_owned())));
    }
}
