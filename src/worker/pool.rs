//! `--threads N` (Gunicorn's gthread): N Python threads that run complete
//! requests, while the event loop keeps every socket.
//!
//! The loop hands a thread a [`Job`] (a parsed request with the connection's
//! buffers, or a parked response to continue) through one queue, in arrival
//! order; the thread runs it through the app holding the GIL, sends the
//! result back, and wakes the loop through a `mio::Waker`. A connection has at
//! most one job at a time, so pipelined requests are answered in order. The
//! loop itself only takes the GIL between waits, so a thread stuck in C
//! holding the GIL stops the loop, and with it the heartbeat: the master's
//! timeout catches it as it catches a stuck single-threaded worker.
//!
//! Threads are detached: at a quick stop the process exits without waiting
//! for them; at a graceful stop the loop has already waited for every job.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use pyo3::Python;

use crate::http::head::RequestHead;
use crate::wsgi::{ConnInfo, ConnIo, Continuation, Handled, Parked, Wsgi};

use super::dispatch::Started;

/// Work for a request thread.
pub(super) enum Job {
    /// Run a request through the app.
    Request {
        slot: usize,
        head: RequestHead,
        info: ConnInfo,
        io: ConnIo,
        keep_alive_allowed: bool,
        started: Started,
    },
    /// Continue a parked response whose buffered output is written.
    Resume {
        slot: usize,
        parked: Parked,
        body: Continuation,
        head: RequestHead,
        started: Started,
    },
}

/// A job's result, for the loop.
pub(super) struct Finished {
    pub(super) slot: usize,
    pub(super) handled: Handled,
    pub(super) head: RequestHead,
    pub(super) started: Started,
}

/// The request threads and the two queues between them and the loop.
pub(super) struct Pool {
    jobs: Sender<Job>,
    done: Receiver<Finished>,
}

impl Pool {
    /// Start `threads` request threads running `wsgi`; `waker` wakes the loop
    /// when a result is ready.
    ///
    /// # Errors
    /// A thread could not be started.
    pub(super) fn start(
        threads: usize,
        wsgi: Arc<Wsgi>,
        waker: Arc<mio::Waker>,
    ) -> std::io::Result<Pool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (results, done) = mpsc::channel::<Finished>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            let results = results.clone();
            let wsgi = wsgi.clone();
            let waker = waker.clone();
            thread::Builder::new()
                .name(format!("request-{n}"))
                .spawn(move || serve_jobs(&queue, &results, &wsgi, &waker))?;
        }
        Ok(Pool { jobs, done })
    }

    /// Queue a job for the next free thread.
    pub(super) fn submit(&self, job: Job) {
        // The threads only stop when `jobs` is dropped, so this cannot fail
        // while the pool exists; a lost job would show as a hung connection.
        if self.jobs.send(job).is_err() {
            crate::log::error("request threads are gone; a request was dropped");
        }
    }

    /// Results ready now.
    pub(super) fn finished(&self) -> impl Iterator<Item = Finished> + '_ {
        self.done.try_iter()
    }
}

/// One request thread: take jobs until the pool is dropped.
fn serve_jobs(
    queue: &Mutex<Receiver<Job>>,
    results: &Sender<Finished>,
    wsgi: &Wsgi,
    waker: &mio::Waker,
) {
    loop {
        let job = {
            let queue = queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            queue.recv()
        };
        let Ok(job) = job else {
            return;
        };
        let finished = Python::attach(|py| run(py, wsgi, job));
        if results.send(finished).is_err() {
            return;
        }
        if let Err(e) = waker.wake() {
            crate::log::error(&format!("cannot wake the event loop: {e}"));
        }
    }
}

fn run(py: Python<'_>, wsgi: &Wsgi, job: Job) -> Finished {
    match job {
        Job::Request {
            slot,
            head,
            info,
            io,
            keep_alive_allowed,
            started,
        } => {
            let handled = wsgi.handle(py, &head, &info, io, keep_alive_allowed);
            Finished {
                slot,
                handled,
                head,
                started,
            }
        }
        Job::Resume {
            slot,
            parked,
            body,
            head,
            started,
        } => Finished {
            slot,
            handled: wsgi.resume(py, parked, body),
            head,
            started,
        },
    }
}
