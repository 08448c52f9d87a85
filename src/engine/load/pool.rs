//! The threads that carry the load generator's connections: one single-threaded tokio runtime per
//! core, each owning its share of the connection slots (like `wrk`'s threads). A slot's
//! connection, timer and request never leave their thread, so nothing is stolen or woken across
//! threads per request, and the load does not compete with the caller's runtime (the dashboard's
//! event loop) for its scheduler.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Pool {
    threads: Vec<mpsc::UnboundedSender<Job>>,
}

impl Pool {
    /// `wanted` threads at most, and no more than the cores. A thread ends when the pool is
    /// dropped and `tracker` (closed by the owner) has no task left: tasks that jobs spawn on
    /// their thread must be tracked by it, or they would be dropped with the thread's runtime.
    pub fn new(wanted: usize, tracker: TaskTracker) -> Result<Self, String> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = wanted.clamp(1, cores.clamp(1, 16));
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a load thread: {e}"))?;
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let tracker = tracker.clone();
            std::thread::Builder::new()
                .name(format!("scaletui-load-{i}"))
                .spawn(move || {
                    rt.block_on(async move {
                        let mut jobs = tokio::task::JoinSet::new();
                        loop {
                            tokio::select! {
                                job = rx.recv() => match job {
                                    Some(j) => { jobs.spawn(j); }
                                    None => break,
                                },
                                Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
                            }
                        }
                        while jobs.join_next().await.is_some() {}
                        tracker.wait().await;
                    });
                })
                .map_err(|e| format!("cannot start a load thread: {e}"))?;
            threads.push(tx);
        }
        Ok(Self { threads })
    }

    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Run `job` on thread `i` (modulo the count).
    pub fn spawn_on(&self, i: usize, job: impl Future<Output = ()> + Send + 'static) {
        let _ = self.threads[i % self.threads.len()].send(Box::pin(job));
    }
}
