//! Who owns the broker's long-lived tasks. Every background loop (replica
//! fetching, following metadata, heartbeats, retention, flushing, ISR
//! checks, group sessions) is spawned through one [`Tasks`], and so is the
//! blocking work those loops hand to the blocking pool. At shutdown
//! [`Tasks::stop`] ends the loops and waits until they and their blocking
//! work have finished, so nothing appends to or deletes from a log after
//! the final flush.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The set of tasks a broker (or a dedicated controller) runs; cheap to
/// clone, every clone is the same set.
#[derive(Clone, Debug, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Tasks {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` until it ends or the set is stopped; at a stop it is
    /// dropped at its next await point.
    pub fn spawn<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => tracing::debug!(task = name, "task stopped"),
                () = task => tracing::debug!(task = name, "task ended"),
            }
        });
    }

    /// Runs `work` on the blocking pool; a stop waits for it to finish
    /// (blocking work cannot be interrupted).
    pub fn spawn_blocking<F, T>(&self, work: F) -> tokio::task::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.tracker.spawn_blocking(work)
    }

    /// Whether [`Tasks::stop`] has been called.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Stops every task and waits up to `patience` for all of them, and
    /// their blocking work, to end. False when some were still running.
    pub async fn stop(&self, patience: Duration) -> bool {
        self.stop.cancel();
        self.tracker.close();
        let ended = tokio::time::timeout(patience, self.tracker.wait())
            .await
            .is_ok();
        if !ended {
            tracing::warn!(
                running = self.tracker.len(),
                "tasks still running at shutdown"
            );
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn stop_ends_loops_and_waits_for_blocking_work() {
        let tasks = Tasks::new();
        tasks.spawn("forever", std::future::pending());
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        let _work = tasks.spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(200));
            done.store(true, Ordering::SeqCst);
        });
        assert!(tasks.stop(Duration::from_secs(10)).await);
        assert!(tasks.is_stopping());
        assert!(
            finished.load(Ordering::SeqCst),
            "stop returned before the blocking work ended"
        );
    }

    #[tokio::test]
    async fn stop_reports_work_that_outlives_its_patience() {
        let tasks = Tasks::new();
        let _work = tasks.spawn_blocking(|| std::thread::sleep(Duration::from_millis(500)));
        assert!(!tasks.stop(Duration::from_millis(10)).await);
    }
}
