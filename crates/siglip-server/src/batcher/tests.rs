//! Tests of the batching rules.
//!
//! Time-based tests run on a paused clock. The model runs on a real OS thread, which the
//! paused runtime cannot see: were the runtime idle while that thread works, it would jump the
//! clock to the next timer (an entry's deadline). So tests never just `.await` work the model
//! thread does; they spin with `yield_now` (`spin_until`), which keeps the runtime busy and the
//! clock still, and move time only with `tokio::time::advance`.

use super::*;
use std::sync::mpsc as std_mpsc;
use tokio::task::JoinHandle;

/// Longer than any test: a deadline or wait that must not matter.
const LONG: Duration = Duration::from_secs(3600);

fn config(max_batch_size: usize, max_wait: Duration, timeout: Duration) -> BatcherConfig {
    BatcherConfig {
        max_batch_size,
        max_wait,
        queue_capacity: 16,
        timeout,
        observer: None,
    }
}

/// The test's view of a fake model that reports each batch it gets, then waits for one
/// release token before answering `item * 10` for each item.
struct Probe {
    batches: std_mpsc::Receiver<Vec<u32>>,
    release: std_mpsc::Sender<()>,
}

impl Probe {
    /// Lets the model answer `count` more batches.
    fn release(&self, count: usize) {
        for _ in 0..count {
            self.release.send(()).unwrap();
        }
    }

    /// The next batch the model got, sorted.
    async fn next_batch(&self) -> Vec<u32> {
        let mut batch = spin_until(|| self.batches.try_recv().ok()).await;
        batch.sort_unstable();
        batch
    }
}

fn probed(config: BatcherConfig) -> (Batcher<u32, u32>, Probe) {
    let (seen, batches) = std_mpsc::channel();
    let (release, tokens) = std_mpsc::channel::<()>();
    let batcher = Batcher::spawn("probe-model", config, move |items: Vec<u32>| {
        seen.send(items.clone()).unwrap();
        let _ = tokens.recv(); // Err only once the test has ended.
        items.into_iter().map(|item| Ok(item * 10)).collect()
    });
    (batcher, Probe { batches, release })
}

/// Yields until `check` gives a value, keeping the paused clock still; fails after 10 real s.
async fn spin_until<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(std::time::Instant::now() < give_up, "waited 10 s in vain");
        tokio::task::yield_now().await;
    }
}

/// Yields for `real` wall-clock time, long enough for a wrongly formed batch to show up.
async fn spin_for(real: Duration) {
    let end = std::time::Instant::now() + real;
    spin_until(|| (std::time::Instant::now() >= end).then_some(())).await;
}

async fn depth_reaches(batcher: &Batcher<u32, u32>, depth: usize) {
    spin_until(|| (batcher.queue_depth() == depth).then_some(())).await;
}

async fn finish<T>(handle: JoinHandle<T>) -> T {
    spin_until(|| handle.is_finished().then_some(())).await;
    handle.await.unwrap()
}

/// `submit` that must answer without waiting: `None` if it did not (1 ms on the paused clock).
async fn submit_now(batcher: &Batcher<u32, u32>, item: u32) -> Option<Result<u32, BatchError>> {
    tokio::time::timeout(Duration::from_millis(1), batcher.submit(item))
        .await
        .ok()
}

fn submit(batcher: &Batcher<u32, u32>, item: u32) -> JoinHandle<Result<u32, BatchError>> {
    let batcher = batcher.clone();
    tokio::spawn(async move { batcher.submit(item).await })
}

#[tokio::test(start_paused = true)]
async fn full_batch_goes_without_waiting_for_max_wait() {
    let (batcher, probe) = probed(config(4, LONG, 2 * LONG));
    probe.release(1);
    let start = Instant::now();
    let handles: Vec<_> = (0..4).map(|item| submit(&batcher, item)).collect();
    assert_eq!(probe.next_batch().await, [0, 1, 2, 3]);
    for (item, handle) in (0..4).zip(handles) {
        assert_eq!(finish(handle).await, Ok(item * 10));
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn partial_batch_goes_after_max_wait_and_not_before() {
    let (stats_tx, stats) = std_mpsc::channel();
    let observer: BatchObserver = Arc::new(move |batch: &BatchStats| {
        stats_tx.send(*batch).unwrap();
    });
    let max_wait = Duration::from_millis(50);
    let config = BatcherConfig {
        observer: Some(observer),
        ..config(4, max_wait, LONG)
    };
    let (batcher, probe) = probed(config);
    probe.release(1);
    let handles = [submit(&batcher, 0), submit(&batcher, 1)];
    depth_reaches(&batcher, 2).await;

    tokio::time::advance(max_wait - Duration::from_millis(1)).await;
    spin_for(Duration::from_millis(50)).await;
    assert!(
        probe.batches.try_recv().is_err(),
        "batch went before max_wait"
    );

    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(probe.next_batch().await, [0, 1]);
    for (item, handle) in (0..2).zip(handles) {
        assert_eq!(finish(handle).await, Ok(item * 10));
    }
    let batch = spin_until(|| stats.try_recv().ok()).await;
    assert_eq!((batch.size, batch.queue_wait_oldest), (2, max_wait));
}

#[tokio::test(start_paused = true)]
async fn batches_never_exceed_max_batch_size() {
    let max_wait = Duration::from_millis(10);
    let (batcher, probe) = probed(config(3, max_wait, LONG));
    let first = submit(&batcher, 0);
    depth_reaches(&batcher, 1).await;
    tokio::time::advance(max_wait).await;
    assert_eq!(probe.next_batch().await, [0]); // The model is now busy with it.

    let rest: Vec<_> = (1..10).map(|item| submit(&batcher, item)).collect();
    depth_reaches(&batcher, 9).await;
    probe.release(4);
    assert_eq!(probe.next_batch().await, [1, 2, 3]);
    assert_eq!(probe.next_batch().await, [4, 5, 6]);
    assert_eq!(probe.next_batch().await, [7, 8, 9]);
    for (item, handle) in (0..10).zip([first].into_iter().chain(rest)) {
        assert_eq!(finish(handle).await, Ok(item * 10));
    }
}

#[tokio::test(start_paused = true)]
async fn full_queue_rejects_at_once_and_depth_returns_to_zero() {
    let config = BatcherConfig {
        queue_capacity: 2,
        ..config(1, LONG, 2 * LONG)
    };
    let (batcher, probe) = probed(config);
    assert_eq!(batcher.queue_depth(), 0);
    let busy = submit(&batcher, 0);
    assert_eq!(probe.next_batch().await, [0]);
    assert_eq!(batcher.queue_depth(), 0); // Handed to the model: no longer waiting.

    let waiting = [submit(&batcher, 1), submit(&batcher, 2)];
    depth_reaches(&batcher, 2).await;
    assert_eq!(
        submit_now(&batcher, 3).await,
        Some(Err(BatchError::QueueFull))
    );
    assert_eq!(batcher.queue_depth(), 2);

    probe.release(3);
    for (item, handle) in (0..3).zip([busy].into_iter().chain(waiting)) {
        assert_eq!(finish(handle).await, Ok(item * 10));
    }
    assert_eq!(batcher.queue_depth(), 0);
}

#[tokio::test(start_paused = true)]
async fn cancelled_submit_never_reaches_run() {
    let max_wait = Duration::from_millis(10);
    let (batcher, probe) = probed(config(2, max_wait, LONG));
    let busy = submit(&batcher, 0);
    depth_reaches(&batcher, 1).await;
    tokio::time::advance(max_wait).await;
    assert_eq!(probe.next_batch().await, [0]);

    let cancelled = submit(&batcher, 1);
    depth_reaches(&batcher, 1).await;
    cancelled.abort(); // Drops the future of `submit`, as a client disconnect does.
    spin_until(|| cancelled.is_finished().then_some(())).await;
    assert!(cancelled.await.unwrap_err().is_cancelled());
    let kept = submit(&batcher, 2); // Fills the batch that `1` was waiting in.
    probe.release(2);
    assert_eq!(probe.next_batch().await, [2]);
    assert_eq!(finish(kept).await, Ok(20));
    assert_eq!(finish(busy).await, Ok(0));
    assert_eq!(batcher.queue_depth(), 0);
}

#[tokio::test(start_paused = true)]
async fn expired_entry_times_out_and_never_reaches_run() {
    let timeout = Duration::from_millis(100);
    let (batcher, probe) = probed(config(1, LONG, timeout));
    let busy = submit(&batcher, 0);
    assert_eq!(probe.next_batch().await, [0]);
    let expired = submit(&batcher, 1); // Waits in the hand-off slot behind the busy model.
    depth_reaches(&batcher, 1).await;

    tokio::time::advance(timeout).await;
    assert_eq!(finish(expired).await, Err(BatchError::Timeout));
    assert_eq!(finish(busy).await, Err(BatchError::Timeout));
    let fresh = submit(&batcher, 2);
    probe.release(3);
    assert_eq!(probe.next_batch().await, [2]);
    assert_eq!(finish(fresh).await, Ok(20));
}

#[test]
fn expired_entries_still_listened_to_get_timeout() {
    let admission = Arc::new(Semaphore::new(3));
    let now = Instant::now();
    let mut receivers = Vec::new();
    let batch: Vec<Entry<u32, u32>> = [(0, now), (1, now + LONG), (2, now + LONG)]
        .into_iter()
        .map(|(item, deadline)| {
            let (reply, result) = oneshot::channel();
            receivers.push(result);
            let permit = Arc::clone(&admission).try_acquire_owned().unwrap();
            Entry {
                item,
                reply,
                submitted: now,
                deadline,
                _admission: permit,
            }
        })
        .collect();
    drop(receivers.pop()); // Entry 2's client went away.

    let live = keep_live(batch, now);
    assert_eq!(live.iter().map(|entry| entry.item).collect::<Vec<_>>(), [1]);
    assert_eq!(admission.available_permits(), 2);
    assert_eq!(receivers[0].try_recv(), Ok(Err(BatchError::Timeout)));
    assert!(receivers[1].try_recv().is_err()); // Still waiting for the model.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_reach_their_own_submitters() {
    let config = BatcherConfig {
        queue_capacity: 64,
        ..config(8, Duration::from_millis(1), Duration::from_secs(30))
    };
    let batcher = Batcher::spawn("double", config, |items: Vec<u32>| {
        items.into_iter().map(|item| Ok(item * 3 + 1)).collect()
    });
    let handles: Vec<_> = (0..64).map(|item| submit(&batcher, item)).collect();
    for (item, handle) in (0..64).zip(handles) {
        assert_eq!(handle.await.unwrap(), Ok(item * 3 + 1));
    }
}

#[tokio::test(start_paused = true)]
async fn failed_batches_fail_every_entry_and_later_batches_succeed() {
    let batcher = Batcher::spawn("flaky", config(2, LONG, 2 * LONG), |items: Vec<u32>| {
        match items[0] / 2 {
            0 => panic!("secret internal detail"),
            1 => vec![Ok(0)], // One result for two items.
            _ => items.into_iter().map(|item| Ok(item * 10)).collect(),
        }
    });
    let failed = Err(BatchError::Failed(BATCH_FAILED.to_owned()));
    for (pair, expected) in [[0, 1], [2, 3], [4, 5]].into_iter().zip([
        [failed.clone(), failed.clone()],
        [failed.clone(), failed],
        [Ok(40), Ok(50)],
    ]) {
        let handles = pair.map(|item| submit(&batcher, item));
        for (handle, expected) in handles.into_iter().zip(expected) {
            assert_eq!(finish(handle).await, expected);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_finishes_queued_entries_then_refuses() {
    let (batcher, probe) = probed(config(1, LONG, 2 * LONG));
    let busy = submit(&batcher, 0);
    assert_eq!(probe.next_batch().await, [0]);
    let queued = [submit(&batcher, 1), submit(&batcher, 2)];
    depth_reaches(&batcher, 2).await;

    let stopping = {
        let batcher = batcher.clone();
        tokio::spawn(async move { batcher.shutdown().await })
    };
    spin_until(|| batcher.shared.admission.is_closed().then_some(())).await;
    assert_eq!(
        submit_now(&batcher, 3).await,
        Some(Err(BatchError::ShuttingDown))
    );
    assert!(!stopping.is_finished());

    probe.release(3);
    for (item, handle) in (0..3).zip([busy].into_iter().chain(queued)) {
        assert_eq!(finish(handle).await, Ok(item * 10));
    }
    finish(stopping).await;
    let rest: Vec<_> = probe.batches.try_iter().collect();
    assert_eq!(rest, [[1], [2]]);
    // `run` (holding the batch sender) was dropped before shutdown resolved.
    assert_eq!(
        probe.batches.try_recv(),
        Err(std_mpsc::TryRecvError::Disconnected)
    );
    assert_eq!(
        submit_now(&batcher, 4).await,
        Some(Err(BatchError::ShuttingDown))
    );
}

#[tokio::test(start_paused = true)]
async fn entry_sent_just_after_the_close_marker_is_still_served() {
    // The race `shutdown` leaves open: a submit took its permit before admission closed and
    // sent its entry after the close marker. Built by hand, as no ordering of tasks shows it.
    let (batcher, probe) = probed(config(1, LONG, 2 * LONG));
    probe.release(1);
    let permit = Arc::clone(&batcher.shared.admission)
        .try_acquire_owned()
        .unwrap();
    let (reply, mut result) = oneshot::channel();
    let now = Instant::now();
    let late = Entry {
        item: 7,
        reply,
        submitted: now,
        deadline: now + LONG,
        _admission: permit,
    };
    assert!(batcher.shared.queue.send(Message::Close).is_ok());
    assert!(batcher.shared.queue.send(Message::Entry(late)).is_ok());
    assert_eq!(spin_until(|| result.try_recv().ok()).await, Ok(70));
    let stopping = {
        let batcher = batcher.clone();
        tokio::spawn(async move { batcher.shutdown().await })
    };
    finish(stopping).await;
}
