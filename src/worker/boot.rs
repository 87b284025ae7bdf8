//! A worker's boot: from fork to an event loop ready to serve.
//!
//! The steps run in Gunicorn's order (see the parent module). Each one that
//! can fail returns a [`BootError`] carrying its typed cause, so the chain is
//! a sequence of `?` and the failure is reported once, by the caller, which
//! exits with [`BootError::status`]. The master's timeout (SIGABRT) can arrive
//! at any point; it is checked between the steps that run Python.

use std::path::PathBuf;

use pyo3::prelude::*;

use super::abort::{AbortSignal, DumpTarget};
use super::event_loop::{self, Lifecycle};
use super::{ABORTED, Worker, WorkerInit, reload};
use crate::config::Config;
use crate::error::ExitStatus;
use crate::log::access::AccessLog;
use crate::privileges::PrivilegeError;
use crate::proctitle::Role;
use crate::python::app::AppLoadError;
use crate::python::hooks::{Hook, HookFailed};
use crate::signals::{self, SignalPipe};
use crate::wsgi::Wsgi;

/// Why a worker did not reach its serving loop.
#[derive(Debug, thiserror::Error)]
pub(super) enum BootError {
    /// The worker's self-pipe for TERM/INT/QUIT/USR1 could not be set up.
    #[error("worker cannot install signal handlers: {0}")]
    Signals(#[source] nix::Error),
    /// post_fork or post_worker_init raised; its traceback is already logged.
    #[error(transparent)]
    Hook(#[from] HookFailed),
    /// The switch to `user`/`group` failed.
    #[error("worker cannot change user or group: {0}")]
    Privileges(#[source] PrivilegeError),
    /// The application could not be imported (exit 4).
    #[error("{}", load_failure_text(.0))]
    AppLoad(#[source] AppLoadError),
    /// The access log could not be opened.
    #[error("cannot open access log {dest:?}: {source}")]
    AccessLog {
        /// The `accesslog` setting.
        dest: String,
        /// Why it could not be opened.
        source: std::io::Error,
    },
    /// The WSGI bridge could not be built; carries the Python traceback.
    #[error("{traceback}")]
    Wsgi {
        /// The formatted exception (a `PyErr` goes no further than this).
        traceback: String,
    },
    /// epoll, or registering a socket with it, failed.
    #[error("worker event loop failed to start: {0}")]
    EventLoop(#[source] std::io::Error),
    /// The ASGI app thread did not start: lifespan startup failed (the
    /// app's message), or its event loop could not be set up.
    #[error(transparent)]
    Asgi(#[from] crate::asgi::BootFailure),
    /// The master's timeout aborted the boot. Not a fault of the worker's: it
    /// ends through the `worker_abort` path, with that path's status.
    #[error("worker aborted while booting")]
    Aborted,
}

impl BootError {
    /// The worker's exit status for this failure.
    pub(super) fn status(&self) -> ExitStatus {
        match self {
            BootError::AppLoad(_) => ExitStatus::AppLoad,
            BootError::Aborted => ABORTED,
            BootError::Signals(_)
            | BootError::Hook(_)
            | BootError::Privileges(_)
            | BootError::AccessLog { .. }
            | BootError::Wsgi { .. }
            | BootError::Asgi(_)
            | BootError::EventLoop(_) => ExitStatus::WorkerBoot,
        }
    }
}

/// A booted worker: what the serving loop runs with.
pub(super) struct Booted<'a> {
    /// The event loop, owning the listeners and the app.
    pub(super) event_loop: event_loop::Server<'a>,
    /// The worker's own self-pipe.
    pub(super) pipe: SignalPipe,
}

impl<'a> Worker<'_, 'a> {
    /// Run the boot chain and tell the master we can serve.
    pub(super) fn boot(&mut self, init: WorkerInit<'a>) -> Result<Booted<'a>, BootError> {
        let WorkerInit {
            config,
            tls,
            mut listeners,
            booted,
            heartbeat,
            seat,
            hooks,
            preloaded,
            ..
        } = init;
        let py = self.py;
        // The master owns the socket files; only it may remove them.
        for l in &mut listeners {
            l.forget_path();
        }
        signals::reset(signals::MASTER_SIGNALS);
        let pipe = SignalPipe::install(signals::WORKER_SIGNALS).map_err(BootError::Signals)?;
        crate::proctitle::set(&crate::proctitle::title(Role::Worker, config));
        crate::log::info(&format!("Booting worker with pid: {}", std::process::id()));
        self.install_abort();

        if hooks.is_set(Hook::PostFork) {
            // Gunicorn: an exception in post_fork is a worker boot failure.
            hooks.post_fork(py, self.server, self.view)?;
        }
        self.check_abort()?;
        crate::privileges::drop_privileges(
            config.user.as_deref(),
            config.group.as_deref(),
            config.initgroups,
        )
        .map_err(BootError::Privileges)?;
        let (app, failure_files) = self.load_app(preloaded)?;
        if hooks.is_set(Hook::PostWorkerInit) {
            hooks.post_worker_init(py, self.view)?;
        }
        self.check_abort()?;

        let access = open_access_log(config)?;
        let environ_keys = access
            .as_ref()
            .map_or_else(Vec::new, |a| a.environ_keys().to_vec());
        let asgi_app = config.asgi.then(|| app.clone_ref(py));
        let wsgi = Wsgi::new(py, app, config, hooks, self.view, environ_keys).map_err(|e| {
            BootError::Wsgi {
                traceback: crate::python::format_traceback(py, &e),
            }
        })?;
        let watcher = if config.reload {
            source_watcher(py, config, failure_files)
        } else {
            None
        };
        let lifecycle = Lifecycle {
            tls,
            heartbeat,
            seat,
            reload: watcher,
            abort: self.aborting.clone(),
        };
        let mut event_loop =
            event_loop::Server::new(config, listeners, &pipe, wsgi, access, lifecycle)
                .map_err(BootError::EventLoop)?;
        if let Some(app) = asgi_app {
            // Lifespan startup runs here: the worker boots once the app says so.
            let request_hooks = hooks
                .has_request_hooks()
                .then(|| crate::asgi::RequestHooks {
                    hooks: hooks.clone_ref(py),
                    worker: self.view,
                });
            let started =
                crate::asgi::start(py, app, config, event_loop.waker.clone(), request_hooks)?;
            crate::log::debug!("ASGI app thread serving on the {} loop", started.loop_name);
            event_loop.asgi = Some(started.handle);
        }
        // Tell the master we can serve: our pid, native endian, one atomic pipe write.
        let pid = std::process::id().to_ne_bytes();
        let _ = nix::unistd::write(&booted, &pid);
        drop(booted);
        Ok(Booted { event_loop, pipe })
    }

    /// SIGABRT diagnostics (see `abort`). A failure costs only the diagnostics:
    /// the master's SIGKILL still ends a stuck worker.
    fn install_abort(&mut self) {
        let target = match DumpTarget::open(&self.config.error_log) {
            Ok(t) => t,
            Err(e) => {
                crate::log::warning(&format!(
                    "cannot open {} for stack dumps ({e}); using stderr",
                    self.config.error_log
                ));
                DumpTarget::Stderr
            }
        };
        match AbortSignal::install(self.py, target) {
            Ok(a) => {
                self.aborting = a.flag();
                self.abort = Some(a);
            }
            Err(e) => {
                crate::log::warning(&format!(
                    "cannot install the SIGABRT stack dump: {}",
                    crate::python::format_traceback(self.py, &e)
                ));
            }
        }
    }

    /// Stop booting once the master's timeout has aborted us.
    fn check_abort(&self) -> Result<(), BootError> {
        if self.aborting.is_raised() {
            Err(BootError::Aborted)
        } else {
            Ok(())
        }
    }

    /// The app: the master's (preload_app), or imported now; with the files a
    /// failed import points at (for `--reload` to watch).
    ///
    /// With `--reload` a broken save must not end the server (Gunicorn serves
    /// the error too): the failure is logged, answered with a 500 page, and the
    /// next change reloads.
    fn load_app(
        &self,
        preloaded: Option<&Py<PyAny>>,
    ) -> Result<(Py<PyAny>, Vec<PathBuf>), BootError> {
        let py = self.py;
        let e = match preloaded {
            Some(app) => return Ok((app.clone_ref(py), Vec::new())),
            None => match crate::python::app::load(py, &self.config.app_uri) {
                Ok(app) => return Ok((app, Vec::new())),
                Err(e) => e,
            },
        };
        // A timeout while importing: the SystemExit is the abort's, not the app's.
        self.check_abort()?;
        if !self.config.reload {
            return Err(BootError::AppLoad(e));
        }
        let text = load_failure_text(&e);
        match crate::python::app::fail_app(py, &text) {
            Ok(fail) => {
                crate::log::error(&text);
                Ok((fail, e.files))
            }
            Err(_) => Err(BootError::AppLoad(e)),
        }
    }
}

/// How a worker logs an app that failed to import: the reason, then the
/// traceback when an exception caused it.
fn load_failure_text(e: &AppLoadError) -> String {
    match &e.traceback {
        Some(tb) => format!("{}\n{}", e.message, tb),
        None => e.message.clone(),
    }
}

/// The access log, when `accesslog` is set.
fn open_access_log(config: &Config) -> Result<Option<AccessLog>, BootError> {
    let Some(target) = &config.access_log else {
        if crate::log::syslog::wants_access() {
            return AccessLog::syslog_only(&config.access_log_format)
                .map(Some)
                .map_err(|source| BootError::AccessLog {
                    dest: "syslog".into(),
                    source,
                });
        }
        return Ok(None);
    };
    AccessLog::open_target(target, &config.access_log_format)
        .map(Some)
        .map_err(|source| BootError::AccessLog {
            dest: target.to_string(),
            source,
        })
}

/// `--reload`: watch every loaded module and `reload_extra_files`.
fn source_watcher(py: Python<'_>, config: &Config, extra: Vec<PathBuf>) -> Option<reload::Watcher> {
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
            crate::log::debug!("watching {} directories for changes", w.watched_dirs());
            Some(w)
        }
        Err(e) => {
            crate::log::error(&format!("--reload cannot watch files: {e}"));
            None
        }
    }
}
