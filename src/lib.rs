//! rgunicorn: Gunicorn's pre-fork WSGI server, rebuilt in Rust as a
//! systemd-native service daemon.
//!
//! Data flows one way: config → sockets → arbiter → worker → http → wsgi → app.
//! `systemd` and `log` sit at the edges; anything may call them.
//!
//! ```text
//! main.rs        argv → Config → run → exit code
//! error.rs       start-up errors and the exit-code table
//! config/        settings declared once; argv parser; --help
//! listen.rs      bind addresses, or adopt inherited fds
//! arbiter/       the master: self-pipe signals, fork, reap, READY=1
//! worker/        one worker: app load, epoll event loop owning all socket I/O
//! http/          bytes ↔ request heads, bodies, response heads (no pyo3)
//! wsgi/          PEP 3333: environ, input, start_response, result iteration
//! python/        interpreter start-up (PyConfig), app import
//! systemd/       LISTEN_FDS activation, sd_notify
//! log/           error log and access log
//! ```
#![warn(missing_docs)]

pub mod arbiter;
pub mod config;
pub mod error;
pub mod http;
pub mod listen;
pub mod log;
pub mod python;
pub mod systemd;
pub mod worker;
pub mod wsgi;

use std::os::fd::{FromRawFd, OwnedFd};

use config::Config;
use error::StartupError;
use listen::{Address, Listener};

/// Serve `config` until stopped; returns the process exit status.
///
/// `env` is the process environment as it was at start-up; `main` has already
/// removed the socket-activation variables from the real environment.
pub fn run(config: Config, env: &dyn Fn(&str) -> Option<String>) -> i32 {
    match start(config, env) {
        Ok(arbiter) => arbiter.run(),
        Err(e) => {
            log::critical(&e.to_string());
            e.exit_code()
        }
    }
}

fn start(
    config: Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<arbiter::Arbiter, StartupError> {
    log::init(&config.errorlog, config.loglevel).map_err(|source| StartupError::Os {
        context: "cannot open the error log",
        source,
    })?;
    signal_setup()?;
    let listeners = listeners(&config, env)?;
    // Rust owns every signal before Python starts (PyConfig.install_signal_handlers=0).
    let signals =
        arbiter::signals::SignalPipe::install(arbiter::signals::MASTER_SIGNALS).map_err(|e| {
            StartupError::Os {
                context: "cannot install signal handlers",
                source: e.into(),
            }
        })?;
    if let Some(dir) = &config.chdir {
        std::env::set_current_dir(dir).map_err(|source| StartupError::Os {
            context: "cannot change directory",
            source,
        })?;
    }
    let mut sys_path = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        sys_path.push(cwd);
    }
    sys_path.extend(config.pythonpath.iter().cloned());
    python::interp::start(&python::interp::Setup {
        virtualenv: config.virtualenv.as_deref(),
        sys_path,
        argv: std::env::args().collect(),
    })?;
    log::info(&format!("Starting rgunicorn {}", env!("CARGO_PKG_VERSION")));
    for l in &listeners {
        log::info(&format!(
            "Listening at: {} ({})",
            l.describe(),
            std::process::id()
        ));
    }
    log::info("Using worker: sync");
    let notifier = systemd::notify::Notifier::new(env("NOTIFY_SOCKET").is_some());
    arbiter::Arbiter::new(config, listeners, signals, notifier).map_err(|e| StartupError::Os {
        context: "cannot create the boot pipe",
        source: e.into(),
    })
}

fn signal_setup() -> Result<(), StartupError> {
    arbiter::signals::ignore_sigpipe();
    Ok(())
}

/// Inherited sockets first, then `--bind` addresses; the default bind only when
/// neither gave any.
fn listeners(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Listener>, StartupError> {
    let mut out = Vec::new();
    for passed in systemd::activation::passed_fds(env, std::process::id())? {
        // SAFETY: the service manager passed this fd to our pid (LISTEN_PID
        // matched); nothing else in the process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(passed.fd) };
        out.push(Listener::adopt(fd)?);
    }
    let mut binds = config.bind.clone();
    if binds.is_empty() && out.is_empty() {
        binds.push(Address::Tcp {
            host: "127.0.0.1".into(),
            port: 8000,
        });
    }
    for addr in &binds {
        out.extend(Listener::bind(addr, config.backlog, config.reuse_port)?);
    }
    Ok(out)
}
