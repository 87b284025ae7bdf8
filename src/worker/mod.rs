//! One worker process: after-fork set-up, app load, the serving loop, exit.
//!
//! Exit statuses are the contract with the arbiter (Gunicorn's): 0 after a normal
//! stop (TERM, `max_requests`, a `--reload` change), 1 after SIGABRT (the
//! master's timeout), 3 when the worker could not boot (including a failed
//! `user`/`group` switch), 4 when the application failed to load. The arbiter
//! halts on 3 and 4 instead of respawning into a crash loop.
//!
//! After fork, in Gunicorn's order: process title, SIGABRT diagnostics (so even
//! a hang while importing the app is dumped), `post_fork`, privilege drop, app
//! import, `post_worker_init`, then the serving loop.

mod abort;
mod conn;
mod event_loop;
mod reload;

use std::os::fd::OwnedFd;

use pyo3::prelude::*;

use crate::config::Config;
use crate::heartbeat::Slot;
use crate::listen::Listener;
use crate::proctitle::Role;
use crate::python::hooks::{Hook, Hooks, ServerView, WorkerView};
use crate::signals::{self, SignalPipe};
use crate::wsgi::Wsgi;
use abort::{AbortSignal, DumpTarget};

/// Exit status after SIGABRT: the `worker_abort` path, Gunicorn's `sys.exit(1)`.
pub const EXIT_ABORTED: i32 = 1;

/// How a worker process ends; the numeric codes are public API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerExit {
    /// Stopped normally.
    Ok = 0,
    /// Could not boot (signals, event loop).
    BootError = 3,
    /// The application could not be imported.
    AppLoadError = 4,
}

impl WorkerExit {
    /// Classify a child's exit status.
    pub fn from_code(code: i32) -> Option<WorkerExit> {
        match code {
            0 => Some(WorkerExit::Ok),
            3 => Some(WorkerExit::BootError),
            4 => Some(WorkerExit::AppLoadError),
            _ => None,
        }
    }
}

/// What a freshly forked worker inherits from the master.
pub struct WorkerInit<'a> {
    /// The resolved configuration.
    pub config: &'a Config,
    /// The listening sockets (this process's copies).
    pub listeners: Vec<Listener>,
    /// Write end of the master's boot pipe: we write our pid once the app loaded.
    pub booted: OwnedFd,
    /// Our liveness slot in the master's shared memory.
    pub heartbeat: Slot,
    /// Server hooks from the config file.
    pub hooks: &'a Hooks,
    /// Gunicorn's `worker.age`: the spawn counter at our fork.
    pub age: u64,
    /// The app, when the master preloaded it (preload_app).
    pub preloaded: Option<&'a Py<PyAny>>,
}

/// Run a worker in the freshly forked child, holding the GIL. Never returns.
pub fn run_worker(py: Python<'_>, init: WorkerInit<'_>) -> ! {
    let status = match serve(py, init) {
        Ended::Exit(code) => code as i32,
        Ended::Aborted => EXIT_ABORTED,
    };
    exit_worker(py, status)
}

/// How [`serve`] ended.
enum Ended {
    /// With one of the documented statuses.
    Exit(WorkerExit),
    /// After SIGABRT; the `worker_abort` hook has run.
    Aborted,
}

fn serve(py: Python<'_>, mut init: WorkerInit<'_>) -> Ended {
    for l in &mut init.listeners {
        l.forget_path();
    }
    signals::reset(signals::MASTER_SIGNALS);
    let pipe = match SignalPipe::install(signals::WORKER_SIGNALS) {
        Ok(p) => p,
        Err(e) => {
            crate::log::error(&format!("worker cannot install signal handlers: {e}"));
            return Ended::Exit(WorkerExit::BootError);
        }
    };
    let config = init.config;
    let hooks = init.hooks;
    crate::proctitle::set(&crate::proctitle::title(Role::Worker, config));
    crate::log::info(&format!("Booting worker with pid: {}", std::process::id()));
    let server = ServerView {
        pid: nix::unistd::getppid().as_raw() as u32,
        num_workers: config.workers,
    };
    let view = WorkerView {
        pid: Some(std::process::id()),
        ppid: server.pid,
        age: init.age,
        alive: true,
    };
    let exiting = Exiting {
        py,
        hooks,
        server,
        view,
    };
    // Kept alive until exit: faulthandler writes to its descriptor.
    let abort = install_abort(py, config);
    let flag = abort.as_ref().map(AbortSignal::flag).unwrap_or_default();

    if hooks.is_set(Hook::PostFork) && hooks.post_fork(py, server, view).is_err() {
        // Gunicorn: an exception in post_fork is a worker boot failure.
        return Ended::Exit(WorkerExit::BootError);
    }
    if flag.is_raised() {
        return exiting.aborted();
    }
    if let Err(e) = crate::privileges::drop_privileges(
        config.user.as_deref(),
        config.group.as_deref(),
        config.initgroups,
    ) {
        crate::log::error(&format!("worker cannot change user or group: {e}"));
        return Ended::Exit(WorkerExit::BootError);
    }
    let mut failure_files = Vec::new();
    let loaded = match init.preloaded {
        Some(app) => Ok(app.clone_ref(py)),
        None => crate::python::app::load(py, &config.app_uri),
    };
    let app = match loaded {
        Ok(app) => app,
        // A timeout while importing: the SystemExit is the abort's, not the app's.
        Err(_) if flag.is_raised() => return exiting.aborted(),
        Err(e) => {
            let text = match &e.traceback {
                Some(tb) => format!("{}\n{}", e.message, tb),
                None => e.message.clone(),
            };
            crate::log::error(&text);
            // With --reload a broken save must not end the server (Gunicorn serves
            // the error too): answer 500 with it and reload on the next change.
            match (config.reload, crate::python::app::fail_app(py, &text)) {
                (true, Ok(fail)) => {
                    failure_files = e.files;
                    fail
                }
                _ => return Ended::Exit(WorkerExit::AppLoadError),
            }
        }
    };
    if hooks.is_set(Hook::PostWorkerInit) && hooks.post_worker_init(py, view).is_err() {
        return Ended::Exit(WorkerExit::BootError);
    }
    if flag.is_raised() {
        return exiting.aborted();
    }
    let access = match config.accesslog.as_deref() {
        None => None,
        Some(dest) => match crate::log::access::AccessLog::open(dest, &config.access_log_format) {
            Ok(a) => Some(a),
            Err(e) => {
                crate::log::error(&format!("cannot open access log {dest:?}: {e}"));
                return Ended::Exit(WorkerExit::BootError);
            }
        },
    };
    let environ_keys = access
        .as_ref()
        .map_or_else(Vec::new, |a| a.environ_keys().to_vec());
    let wsgi = match Wsgi::new(py, app, config, hooks, view, environ_keys) {
        Ok(w) => w,
        Err(e) => {
            crate::log::error(&crate::python::format_traceback(py, &e));
            return Ended::Exit(WorkerExit::BootError);
        }
    };
    let watcher = if config.reload {
        source_watcher(py, config, failure_files)
    } else {
        None
    };
    let mut event_loop = match event_loop::Server::new(
        config,
        std::mem::take(&mut init.listeners),
        &pipe,
        wsgi,
        access,
        event_loop::Lifecycle {
            heartbeat: init.heartbeat,
            reload: watcher,
            abort: flag,
        },
    ) {
        Ok(s) => s,
        Err(e) => {
            crate::log::error(&format!("worker event loop failed to start: {e}"));
            return Ended::Exit(WorkerExit::BootError);
        }
    };
    // Tell the master we can serve: our pid, native endian, one atomic pipe write.
    let pid = std::process::id().to_ne_bytes();
    let _ = nix::unistd::write(&init.booted, &pid);
    drop(init.booted);
    let stop = event_loop.run(py, &pipe);
    drop(event_loop);
    let ended = match stop {
        Ok(event_loop::Stop::Graceful) => Ended::Exit(WorkerExit::Ok),
        Ok(event_loop::Stop::Quick) => {
            if hooks.is_set(Hook::WorkerInt) {
                hooks.worker_int(py, view);
            }
            Ended::Exit(WorkerExit::Ok)
        }
        Ok(event_loop::Stop::Aborted) => return exiting.aborted(),
        Err(e) => {
            crate::log::error(&format!("worker event loop failed: {e}"));
            Ended::Exit(WorkerExit::BootError)
        }
    };
    exiting.exit_hooks();
    drop(abort);
    ended
}

/// What the exit paths need to run the exit hooks.
struct Exiting<'py, 'a> {
    py: Python<'py>,
    hooks: &'a Hooks,
    server: ServerView,
    view: WorkerView,
}

impl Exiting<'_, '_> {
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
    fn aborted(&self) -> Ended {
        crate::log::info(&format!("Worker aborted (pid: {})", std::process::id()));
        if self.hooks.is_set(Hook::WorkerAbort) {
            self.hooks.worker_abort(self.py, self.view);
        }
        self.exit_hooks();
        Ended::Aborted
    }
}

/// SIGABRT diagnostics (see `abort`). A failure costs only the diagnostics: the
/// master's SIGKILL still ends a stuck worker.
fn install_abort(py: Python<'_>, config: &Config) -> Option<AbortSignal> {
    let target = match DumpTarget::open(&config.errorlog) {
        Ok(t) => t,
        Err(e) => {
            crate::log::warning(&format!(
                "cannot open {} for stack dumps ({e}); using stderr",
                config.errorlog
            ));
            DumpTarget::Stderr
        }
    };
    match AbortSignal::install(py, target) {
        Ok(a) => Some(a),
        Err(e) => {
            crate::log::warning(&format!(
                "cannot install the SIGABRT stack dump: {}",
                crate::python::format_traceback(py, &e)
            ));
            None
        }
    }
}

/// `--reload`: watch every loaded module and `reload_extra_files`.
fn source_watcher(
    py: Python<'_>,
    config: &Config,
    extra: Vec<std::path::PathBuf>,
) -> Option<reload::Watcher> {
    let mut files = match reload::module_files(py) {
        Ok(f) => f,
        Err(e) => {
            crate::log::warning(&format!(
                "cannot list loaded modules for --reload: {}",
                crate::python::format_traceback(py, &e)
            ));
            Vec::new()
        }
    };
    files.extend(config.reload_extra_files.iter().cloned());
    files.extend(extra);
    match reload::Watcher::new(files) {
        Ok(w) => {
            crate::log::debug(&format!(
                "watching {} directories for changes",
                w.watched_dirs()
            ));
            Some(w)
        }
        Err(e) => {
            crate::log::error(&format!("--reload cannot watch files: {e}"));
            None
        }
    }
}

/// End the worker process with `status` (a [`WorkerExit`] code or
/// [`EXIT_ABORTED`]): flush Python's stdio, then _exit without running the
/// master's inherited Rust destructors (which would unlink its sockets).
pub fn exit_worker(py: Python<'_>, status: i32) -> ! {
    for name in ["stdout", "stderr"] {
        if let Ok(stream) = py.import("sys").and_then(|s| s.getattr(name)) {
            let _ = stream.call_method0("flush");
        }
    }
    // SAFETY: _exit ends the process immediately; nothing after it runs.
    unsafe { libc::_exit(status) }
}
