//! Work that must finish although nobody waits for it any more, and that a graceful shutdown
//! waits for.
//!
//! Two kinds of work outlive the request that started it: a WeChat or Weibo push whose intake
//! ran past the reply budget (the platform was answered `success`, so it will not resend: the
//! intake must still be stored), and the record of an emergency redirect (the person was
//! answered first, the record follows). Both used to be spawned on the runtime of the HTTP
//! worker that took the request. actix runs one runtime per worker and stops it at a SIGTERM
//! as soon as that worker's own requests are answered, so such a task was dropped half-way:
//! on PostgreSQL its transaction rolled back, and a push answered `success` was never stored.
//!
//! Here the work runs on a runtime of the process's own, and [`Background::finish`] lets the
//! shutdown wait for it before the store and the relay stop.

use std::future::Future;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

/// Tasks that must run to their end, and the runtime they run on.
#[derive(Clone, Default)]
pub struct Background {
    tracker: TaskTracker,
}

impl Background {
    /// An empty set, on the process's background runtime.
    pub fn new() -> Background {
        Background::default()
    }

    /// Runs `work` on the background runtime, tracked until it ends. Where that runtime could
    /// not be started it runs on the caller's, still tracked: no worse than before.
    pub fn spawn<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match runtime() {
            Some(rt) => self.tracker.spawn_on(work, &rt),
            None => self.tracker.spawn(work),
        }
    }

    /// How many tracked tasks are still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Takes no new work into account for the wait and waits up to `limit` for what runs;
    /// answers how many tasks were still running when it gave up (0: all finished).
    /// Work spawned after this call still runs, and is counted if it has not ended.
    pub async fn finish(&self, limit: Duration) -> usize {
        self.tracker.close();
        let _ = tokio::time::timeout(limit, self.tracker.wait()).await;
        self.tracker.len()
    }
}

/// The process's background runtime: as many threads as cores (the work is a submission's
/// rules and its store calls, the same as an HTTP worker's), started on first use and kept for
/// the life of the process. `None` only if the threads could not be started.
fn runtime() -> Option<Handle> {
    static RT: std::sync::OnceLock<Option<Handle>> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("background")
            .enable_all()
            .build()
        {
            Ok(rt) => {
                let handle = rt.handle().clone();
                // Kept, never dropped: a runtime dropped would cancel what runs on it.
                std::mem::forget(rt);
                Some(handle)
            }
            Err(e) => {
                tracing::error!(error = %e, "Background runtime not started; its work runs on the HTTP workers.");
                None
            }
        }
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bug this module exists for, in small: work spawned while serving on a runtime that
    /// then stops (an HTTP worker at a SIGTERM) must still finish, and `finish` waits for it.
    #[test]
    fn work_outlives_the_runtime_that_started_it_and_finish_waits_for_it() {
        let bg = Background::new();
        let (go, wait_go) = tokio::sync::oneshot::channel::<()>();
        let (done, mut is_done) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        worker.block_on(async {
            bg.spawn(async move {
                let _ = wait_go.await;
                let _ = done.send(());
            });
        });
        drop(worker);
        assert_eq!(bg.running(), 1, "the work is still running");
        let main = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        go.send(()).unwrap();
        assert_eq!(main.block_on(bg.finish(Duration::from_secs(30))), 0);
        assert!(is_done.try_recv().is_ok(), "the work ran to its end");
    }

    #[test]
    fn finish_gives_up_after_its_limit_and_counts_what_still_runs() {
        let bg = Background::new();
        let main = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (_hold, held) = tokio::sync::oneshot::channel::<()>();
        main.block_on(async {
            bg.spawn(async move {
                let _ = held.await;
            });
            assert_eq!(bg.finish(Duration::from_millis(1)).await, 1);
        });
    }
}
