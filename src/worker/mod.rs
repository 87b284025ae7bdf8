//! One worker process: after-fork set-up, app load, the serving loop, exit.
//!
//! Exit statuses are the contract with the arbiter (Gunicorn's): 0 after a normal
//! stop, 3 when the worker could not boot, 4 when the application failed to load.
//! The arbiter halts on 3 and 4 instead of respawning into a crash loop.

mod event_loop;

use std::os::fd::OwnedFd;

use pyo3::prelude::*;

use crate::arbiter::heartbeat::Slot;
use crate::arbiter::signals::{self, SignalPipe};
use crate::config::Config;
use crate::listen::Listener;
use crate::python::hooks::{Hook, Hooks, ServerView, WorkerView};
use crate::wsgi::Wsgi;

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
}

/// Run a worker in the freshly forked child, holding the GIL. Never returns.
pub fn run_worker(py: Python<'_>, init: WorkerInit<'_>) -> ! {
    let code = serve(py, init);
    exit_worker(py, code)
}

fn serve(py: Python<'_>, mut init: WorkerInit<'_>) -> WorkerExit {
    for l in &mut init.listeners {
        l.forget_path();
    }
    signals::reset(signals::MASTER_SIGNALS);
    let pipe = match SignalPipe::install(signals::WORKER_SIGNALS) {
        Ok(p) => p,
        Err(e) => {
            crate::log::error(&format!("worker cannot install signal handlers: {e}"));
            return WorkerExit::BootError;
        }
    };
    crate::log::info(&format!("Booting worker with pid: {}", std::process::id()));
    let config = init.config;
    let hooks = init.hooks;
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
    if hooks.is_set(Hook::PostFork) {
        hooks.post_fork(py, server, view);
    }
    let app = match crate::python::app::load(py, &config.app_uri) {
        Ok(app) => app,
        Err(e) => {
            match &e.traceback {
                Some(tb) => crate::log::error(&format!("{}\n{}", e.message, tb)),
                None => crate::log::error(&e.message),
            }
            return WorkerExit::AppLoadError;
        }
    };
    if hooks.is_set(Hook::PostWorkerInit) {
        hooks.post_worker_init(py, view);
    }
    let wsgi = match Wsgi::new(py, app, config, hooks, view) {
        Ok(w) => w,
        Err(e) => {
            crate::log::error(&crate::python::format_traceback(py, &e));
            return WorkerExit::BootError;
        }
    };
    let access = match config.accesslog.as_deref() {
        None => None,
        Some(dest) => match crate::log::access::AccessLog::open(dest, &config.access_log_format) {
            Ok(a) => Some(a),
            Err(e) => {
                crate::log::error(&format!("cannot open access log {dest:?}: {e}"));
                return WorkerExit::BootError;
            }
        },
    };
    let mut event_loop = match event_loop::Server::new(
        config,
        std::mem::take(&mut init.listeners),
        &pipe,
        wsgi,
        access,
        init.heartbeat,
    ) {
        Ok(s) => s,
        Err(e) => {
            crate::log::error(&format!("worker event loop failed to start: {e}"));
            return WorkerExit::BootError;
        }
    };
    // Tell the master we can serve: our pid, native endian, one atomic pipe write.
    let pid = std::process::id().to_ne_bytes();
    let _ = nix::unistd::write(&init.booted, &pid);
    drop(init.booted);
    let code = match event_loop.run(py, &pipe) {
        Ok(event_loop::Stop::Graceful) => WorkerExit::Ok,
        Ok(event_loop::Stop::Quick) => {
            if hooks.is_set(Hook::WorkerInt) {
                hooks.worker_int(py, view);
            }
            WorkerExit::Ok
        }
        Err(e) => {
            crate::log::error(&format!("worker event loop failed: {e}"));
            WorkerExit::BootError
        }
    };
    crate::log::info(&format!("Worker exiting (pid: {})", std::process::id()));
    if hooks.is_set(Hook::WorkerExit) {
        let view = WorkerView {
            alive: false,
            ..view
        };
        hooks.worker_exit(py, server, view);
    }
    code
}

/// End the worker process: flush Python's stdio, then _exit without running the
/// master's inherited Rust destructors (which would unlink its sockets).
pub fn exit_worker(py: Python<'_>, code: WorkerExit) -> ! {
    for name in ["stdout", "stderr"] {
        if let Ok(stream) = py.import("sys").and_then(|s| s.getattr(name)) {
            let _ = stream.call_method0("flush");
        }
    }
    // SAFETY: _exit ends the process immediately; nothing after it runs.
    unsafe { libc::_exit(code as i32) }
}
