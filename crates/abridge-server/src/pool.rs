//! The compression pool: a bounded number of workers on tokio's blocking threads and a bounded
//! queue in front of them.
//!
//! Compression is CPU-bound (a model pass), so it must not run on the async runtime's threads,
//! and running more at once than there are cores only makes every request slower. Requests
//! beyond the queue are refused at once (`503` + `Retry-After`) rather than held in memory.
//!
//! Each job gets a [`Cancel`] that is set when its caller stops waiting (deadline, disconnect)
//! or the pool is stopped; a compression checks it between slices of model work ([`crate::cancel`]),
//! so an abandoned job gives its worker back promptly.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::cancel::{Cancel, CancelOnDrop};

/// Why a job did not produce a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// Every worker is busy and the queue is full.
    Full,
    /// The deadline passed while the job waited or ran. A running job is cancelled: it keeps its
    /// worker until it next checks its [`Cancel`].
    Timeout,
    /// The job panicked (a bug; the worker survives it).
    Panicked,
}

pub struct Pool {
    workers: Arc<Semaphore>,
    size: usize,
    max_queue: usize,
    waiting: AtomicUsize,
    busy: Arc<AtomicUsize>,
    /// Set by [`Pool::stop`]: every job, running or to come, is cancelled.
    stopped: Arc<AtomicBool>,
}

/// Undoes a counter increment however the holder ends: completion, error or cancellation (a
/// client that disconnects drops the request's future mid-await).
struct Count<'a>(&'a AtomicUsize);

impl<'a> Count<'a> {
    fn up(counter: &'a AtomicUsize) -> (Self, usize) {
        let before = counter.fetch_add(1, Ordering::SeqCst);
        (Self(counter), before)
    }
}

impl Drop for Count<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pool {
    pub fn new(size: usize, max_queue: usize) -> Self {
        let size = size.max(1);
        Self {
            workers: Arc::new(Semaphore::new(size)),
            size,
            max_queue,
            waiting: AtomicUsize::new(0),
            busy: Arc::new(AtomicUsize::new(0)),
            stopped: Arc::default(),
        }
    }

    /// Cancels every running and future job (at shutdown, once the grace period is over).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Workers (compressions that can run at once).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Jobs running.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// Runs `job` on a blocking thread once a worker is free, if that happens before `deadline`.
    /// The job's [`Cancel`] is set once this future ends or is dropped, whatever the reason.
    pub async fn run<T, F>(&self, deadline: Instant, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&Cancel) -> T + Send + 'static,
    {
        let cancel = Cancel::new(Arc::clone(&self.stopped));
        let _cancel_when_done = CancelOnDrop(cancel.clone());
        let permit = match self.workers.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let (_waiting, ahead) = Count::up(&self.waiting);
                if ahead >= self.max_queue {
                    return Err(PoolError::Full);
                }
                match tokio::time::timeout_at(deadline, self.workers.clone().acquire_owned()).await
                {
                    Ok(Ok(permit)) => permit,
                    // The semaphore is never closed; a timeout is the only way here.
                    Ok(Err(_)) | Err(_) => return Err(PoolError::Timeout),
                }
            }
        };
        let busy = Arc::clone(&self.busy);
        let handle = tokio::task::spawn_blocking(move || {
            // The worker stays taken until the job really ends, even if its caller gave up.
            let _permit = permit;
            let _busy = Count::up(&busy).0;
            job(&cancel)
        });
        match tokio::time::timeout_at(deadline, handle).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(PoolError::Panicked),
            Err(_) => Err(PoolError::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    fn later(seconds: u64) -> Instant {
        Instant::now() + Duration::from_secs(seconds)
    }

    #[tokio::test]
    async fn jobs_run_and_their_panics_are_caught() {
        let pool = Pool::new(2, 4);
        assert_eq!(pool.run(later(5), |_| 6 * 7).await, Ok(42));
        let panicked = pool.run(later(5), |_| -> u8 { panic!("a bug") }).await;
        assert_eq!(panicked, Err(PoolError::Panicked));
        assert_eq!((pool.busy(), pool.queued()), (0, 0));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_deadline_gives_up() {
        let pool = Arc::new(Pool::new(1, 1));
        let (release, wait) = mpsc::channel::<()>();
        let running = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.run(later(30), move |_| wait.recv().is_ok()).await }
        });
        while pool.busy() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let queued = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.run(later(30), |_| 1).await }
        });
        while pool.queued() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.run(later(30), |_| 2).await, Err(PoolError::Full));
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(true));
        assert_eq!(queued.await.unwrap(), Ok(1));

        let (_release, wait) = mpsc::channel::<()>();
        let slow = pool.run(Instant::now() + Duration::from_millis(50), move |_| {
            wait.recv_timeout(Duration::from_millis(300)).is_ok()
        });
        assert_eq!(slow.await, Err(PoolError::Timeout));
        assert_eq!(pool.queued(), 0);
    }

    /// A job that polls its cancel flag, as a compression does between scoring slices, ends
    /// soon after its deadline, and its worker is free again (issue #21: abandoned compressions
    /// held every worker).
    async fn cancellable_job(pool: &Pool, deadline: Instant) -> Result<bool, PoolError> {
        pool.run(deadline, |cancel: &Cancel| {
            let started = std::time::Instant::now();
            while !cancel.is_cancelled() {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "never cancelled"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            true
        })
        .await
    }

    #[tokio::test]
    async fn a_timed_out_job_is_cancelled_and_frees_its_worker() {
        let pool = Pool::new(1, 4);
        let deadline = Instant::now() + Duration::from_millis(100);
        assert_eq!(
            cancellable_job(&pool, deadline).await,
            Err(PoolError::Timeout)
        );
        let freed = Instant::now() + Duration::from_secs(2);
        while pool.busy() > 0 {
            assert!(Instant::now() < freed, "the worker stayed busy");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.run(later(5), |_| 7).await, Ok(7));
    }

    #[tokio::test]
    async fn an_abandoned_job_and_a_stopped_pool_cancel() {
        let pool = Arc::new(Pool::new(1, 4));
        let abandoned = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { cancellable_job(&pool, later(30)).await }
        });
        while pool.busy() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A client that disconnects drops its request's future.
        abandoned.abort();
        while pool.busy() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        pool.stop();
        assert_eq!(cancellable_job(&pool, later(30)).await, Ok(true));
    }
}
