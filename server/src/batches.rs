//! Work that arrives together is done together.
//!
//! Each caller queues its job, which carries the sender of its answer. Whoever
//! finds a runner free takes what is waiting (as much as [`Batches::new`]'s
//! `take` allows) and does it in a task of its own, so every job in the
//! batch is answered even if the caller that took it goes away. Under light
//! load a job runs at once and alone; under heavy load the jobs that queue
//! while the runners are busy go to the database together, in one statement
//! or one transaction instead of one each.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Semaphore};

use crate::error::{Error, Result};

/// Takes the jobs for one batch from the front of the queue (at least one
/// when any wait).
pub type Take<J> = fn(&mut VecDeque<J>) -> Vec<J>;

/// A queue of jobs and the runners that take them.
pub struct Batches<J> {
    queue: Mutex<VecDeque<J>>,
    runners: Arc<Semaphore>,
    take: Take<J>,
}

impl<J: Send + 'static> Batches<J> {
    /// At most `runners` batches run at once.
    pub fn new(runners: usize, take: Take<J>) -> Batches<J> {
        Batches {
            queue: Mutex::default(),
            runners: Arc::new(Semaphore::new(runners.max(1))),
            take,
        }
    }

    /// Queues `job` and waits for `answer`, the receiver of the sender it
    /// carries. When a runner is free first, takes a batch and has `run` do
    /// it in a task of its own; `run` must answer every job it is given.
    pub async fn submit<T, F, Fut>(
        &self,
        job: J,
        mut answer: oneshot::Receiver<Result<T>>,
        run: F,
    ) -> Result<T>
    where
        F: Fn(Vec<J>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stopped = || Err(Error::Internal("the batch doing this work stopped".into()));
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(job);
        loop {
            tokio::select! {
                biased;
                got = &mut answer => return got.unwrap_or_else(|_| stopped()),
                permit = self.runners.clone().acquire_owned() => {
                    let permit = permit.map_err(|_| Error::Internal("batches closed".into()))?;
                    let jobs = (self.take)(&mut self.queue.lock().unwrap_or_else(|p| p.into_inner()));
                    if jobs.is_empty() {
                        // Another runner took this job: its answer is coming.
                        drop(permit);
                        return answer.await.unwrap_or_else(|_| stopped());
                    }
                    let batch = run(jobs);
                    tokio::spawn(async move {
                        batch.await;
                        drop(permit);
                    });
                }
            }
        }
    }
}

/// Takes up to `most` jobs, oldest first.
pub fn take_up_to<J>(queue: &mut VecDeque<J>, most: usize) -> Vec<J> {
    let n = queue.len().min(most.max(1));
    queue.drain(..n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn take_four(
        queue: &mut VecDeque<(u32, oneshot::Sender<Result<u32>>)>,
    ) -> Vec<(u32, oneshot::Sender<Result<u32>>)> {
        take_up_to(queue, 4)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_job_is_answered_and_busy_runners_make_batches() {
        let batches = Arc::new(Batches::new(1, take_four));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut callers = tokio::task::JoinSet::new();
        for n in 0..40u32 {
            let (batches, runs) = (batches.clone(), runs.clone());
            callers.spawn(async move {
                let (reply, answer) = oneshot::channel();
                batches
                    .submit((n, reply), answer, |jobs| {
                        let runs = runs.clone();
                        async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            assert!(jobs.len() <= 4, "a batch of {}", jobs.len());
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                            for (n, reply) in jobs {
                                let _ = reply.send(Ok(n * 2));
                            }
                        }
                    })
                    .await
                    .map(|doubled| (n, doubled))
            });
        }
        let mut answered = 0;
        while let Some(joined) = callers.join_next().await {
            let (n, doubled) = joined.unwrap().unwrap();
            assert_eq!(doubled, n * 2);
            answered += 1;
        }
        assert_eq!(answered, 40);
        let runs = runs.load(Ordering::SeqCst);
        assert!((10..40).contains(&runs), "40 jobs in {runs} batches");
    }
}
