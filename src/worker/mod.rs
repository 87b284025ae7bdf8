//! One worker process: after-fork set-up, app load, the serving loop, exit.
//!
//! Exit statuses are the contract with the arbiter (Gunicorn's), taken from
//! the one table, [`ExitStatus`]: 0 after a normal stop (TERM, `max_requests`, a
//! `--reload` change), 1 after SIGABRT (the master's timeout), 3 when the worker
//! could not boot (including a failed `user`/`group` switch), 4 when the
//! application failed to load. The arbiter halts on 3 and 4 instead of
//! respawning into a crash loop.
//!
//! After fork, in Gunicorn's order: process title, SIGABRT diagnostics (so even
//! a hang while importing the app is dumped), `post_fork`, privilege drop, app
//! import, `post_worker_init`, then the serving loop. Everything before the loop
//! is the boot chain in `boot.rs`; a step that fails returns a typed
//! `BootError`, which `serve` reports, once.

mod abort;
mod asgi;
mod boot;
mod conn;
mod dispatch;
mod event_loop;
mod pool;
mod reload;
mod ws;

use std::os::fd::OwnedFd;

use pyo3::prelude::*;

use crate::config::Config;
use crate::error::ExitStatus;
use crate::heartbeat::Slot;
use crate::listen::Listener;
use crate::python::hooks::{Hook, Hooks, ServerView, WorkerView};
use abort::{AbortFlag, AbortSignal};
use boot::{BootError, Booted};

/// Exit status after SIGABRT: the `worker_abort` path, Gunicorn's `sys.exit(1)`.
const ABORTED: ExitStatus = ExitStatus::Runtime;

/// What a freshly forked worker inherits from the master.
pub struct WorkerInit<'a> {
    /// The resolved configuration.
    pub config: &'a Config,
    /// Per listener, in order: what its connections speak TLS with (None:
    /// plain, without `certfile` or for a `plain_bind` socket).
    pub tls: Vec<Option<crate::tls::Acceptor>>,
    /// The listening sockets (this process's copies).
    pub listeners: Vec<Listener>,
    /// Write end of the master's boot pipe: we write our pid once the app loaded.
    pub booted: OwnedFd,
    /// Our liveness slot in the master's shared memory.
    pub heartbeat: Slot,
    /// Our entry on the master's accept-balance board.
    pub seat: crate::balance::Seat,
    /// Server hooks from the config file.
    pub hooks: &'a Hooks,
    /// Gunicorn's `worker.age`: the spawn counter at our fork.
    pub age: u64,
    /// The app, when the master preloaded it (preload_app).
    pub preloaded: Option<&'a Py<PyAny>>,
}

/// Run a worker in the freshly forked child, holding the GIL. Never returns.
pub fn run_worker(py: Python<'_>, init: WorkerInit<'_>) -> ! {
    let status = serve(py, init);
    exit_worker(py, status)
}

/// Boot, serve until stopped, run the exit hooks: the worker's whole life.
/// A boot failure is reported here and nowhere else.
fn serve(py: Python<'_>, init: WorkerInit<'_>) -> ExitStatus {
    let mut worker = Worker::new(py, &init);
    match worker.boot(init) {
        Ok(booted) => worker.serve(booted),
        Err(e) => worker.failed_to_boot(e),
    }
}

/// This worker as its hooks and exit paths see it; lives until the process
/// exits.
struct Worker<'py, 'a> {
    py: Python<'py>,
    /// The configuration of this worker's generation.
    config: &'a Config,
    /// Server hooks from the config file.
    hooks: &'a Hooks,
    /// The master, as hooks see it.
    server: ServerView,
    /// This worker, as hooks see it.
    view: WorkerView,
    /// SIGABRT diagnostics, once installed. Kept until exit: faulthandler
    /// writes to its descriptor.
    abort: Option<AbortSignal>,
    /// Raised by the SIGABRT handler; never raised when it could not be installed.
    aborting: AbortFlag,
}

impl<'py, 'a> Worker<'py, 'a> {
    fn new(py: Python<'py>, init: &WorkerInit<'a>) -> Worker<'py, 'a> {
        let server = ServerView {
            pid: nix::unistd::getppid().as_raw() as u32,
            num_workers: init.config.workers,
        };
        let view = WorkerView {
            pid: Some(std::process::id()),
            ppid: server.pid,
            age: init.age,
            alive: true,
        };
        Worker {
            py,
            config: init.config,
            hooks: init.hooks,
            server,
            view,
            abort: None,
            aborting: AbortFlag::default(),
        }
    }

    /// Run the event loop until it stops, then the exit hooks.
    fn serve(&self, booted: Booted<'a>) -> ExitStatus {
        let Booted {
            mut event_loop,
            pipe,
        } = booted;
        let stop = match event_loop.asgi.is_some() {
            // The app thread needs the GIL; this thread takes it only for
            // signal handlers.
            true => self.py.detach(|| {
                let stop = event_loop.run(&pipe);
                if let (Ok(event_loop::Stop::Graceful), Some(asgi)) =
                    (&stop, event_loop.asgi.take())
                {
                    asgi.shutdown();
                }
                stop
            }),
            false => event_loop.run(&pipe),
        };
        drop(event_loop);
        let status = match stop {
            Ok(event_loop::Stop::Graceful) => ExitStatus::Ok,
            Ok(event_loop::Stop::Quick) => {
                if self.hooks.is_set(Hook::WorkerInt) {
                    self.hooks.worker_int(self.py, self.view);
                }
                ExitStatus::Ok
            }
            Ok(event_loop::Stop::Aborted) => return self.aborted(),
            Err(e) => {
                crate::log::error(&format!("worker event loop failed: {e}"));
                ExitStatus::WorkerBoot
            }
        };
        self.exit_hooks();
        status
    }

    /// The one place a boot failure is reported: logged (unless it was logged
    /// where it happened), and turned into the exit status.
    fn failed_to_boot(&self, e: BootError) -> ExitStatus {
        match &e {
            BootError::Aborted => return self.aborted(),
            // Hooks::call logged the traceback where the hook raised.
            BootError::Hook(_) => {}
            _ => crate::log::error(&e.to_string()),
        }
        e.status()
    }

    /// Log the exit and run `worker_exit`.
    fn exit_hooks(&self) {
        crate::log::info(&format!("Worker exiting (pid: {})", std::process::id()));
        if self.hooks.is_set(Hook::WorkerExit) {
            let view = WorkerView {
                alive: false,
                ..self.view
            };
            self.hooks.worker_exit(self.py, self.server, view);
        }
    }

    /// The SIGABRT path: `worker_abort`, then the exit hooks (Gunicorn runs
    /// `worker_exit` for aborted workers too).
    fn aborted(&self) -> ExitStatus {
        crate::log::info(&format!("Worker aborted (pid: {})", std::process::id()));
        if self.hooks.is_set(Hook::WorkerAbort) {
            self.hooks.worker_abort(self.py, self.view);
        }
        self.exit_hooks();
        ABORTED
    }
}

/// End the worker process with `status`: flush Python's stdio, then _exit
/// without running the master's inherited Rust destructors (which would unlink
/// its sockets).
pub fn exit_worker(py: Python<'_>, status: ExitStatus) -> ! {
    for name in ["stdout", "stderr"] {
        if let Ok(stream) = py.import("sys").and_then(|s| s.getattr(name)) {
            let _ = stream.call_method0("flush");
        }
    }
    // SAFETY: _exit ends the process immediately; nothing after it runs.
    unsafe { libc::_exit(status.code()) }
}
