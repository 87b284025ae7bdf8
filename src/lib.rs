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
use std::path::Path;

use pyo3::Python;

use config::raw::RawSettings;
use config::{Config, Support};
use error::StartupError;
use listen::{Address, Listener};
use python::hooks::{Hook, Hooks, ServerView};

/// Serve with the settings typed on the command line (and in
/// `RGUNICORN_CMD_ARGS`), reading the config file they name; returns the process
/// exit status.
///
/// `env` is the process environment as it was at start-up; `main` has already
/// removed the socket-activation variables from the real environment.
pub fn run(raw: RawSettings, env: &dyn Fn(&str) -> Option<String>) -> i32 {
    match prepare(raw, env) {
        Ok(Prepared::Serve(arbiter)) => arbiter.run(),
        Ok(Prepared::Exit(code)) => code,
        Err(e) => {
            log::critical(&e.to_string());
            e.exit_code()
        }
    }
}

/// What start-up decided.
enum Prepared {
    /// Serve until stopped.
    Serve(Box<arbiter::Arbiter>),
    /// `--print-config` / `--check-config` are done: exit with this status.
    Exit(i32),
}

/// The config file to read: `-c`, else `./gunicorn.conf.py` when present.
fn config_file(raw: &RawSettings) -> Option<String> {
    match raw.last("config") {
        Some(e) if e.value.is_empty() => None,
        Some(e) => Some(e.value.clone()),
        None => Path::new("gunicorn.conf.py")
            .is_file()
            .then(|| "./gunicorn.conf.py".to_owned()),
    }
}

fn is_ini(spec: &str) -> bool {
    !spec.starts_with("python:") && (spec.ends_with(".ini") || spec.ends_with(".conf"))
}

fn prepare(
    mut raw: RawSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Prepared, StartupError> {
    let spec = config_file(&raw);
    if let Some(spec) = spec.as_deref().filter(|s| !s.starts_with("python:"))
        && !Path::new(spec).is_file()
    {
        return Err(StartupError::Setting(config::SettingError::File(format!(
            "config file {spec:?} does not exist"
        ))));
    }
    if let Some(spec) = spec.as_deref().filter(|s| is_ini(s)) {
        let text = std::fs::read_to_string(spec).map_err(|e| {
            StartupError::Setting(config::SettingError::File(format!(
                "cannot read {spec}: {e}"
            )))
        })?;
        raw.extend(config::ini::parse(&text, spec)?);
    }
    // The interpreter starts as the virtualenv's python, so the venv must be known
    // before a Python config file can run.
    let venv = raw
        .last("virtualenv")
        .map(|e| e.value.clone())
        .or_else(|| env("VIRTUAL_ENV").filter(|v| !v.is_empty()));

    arbiter::signals::ignore_sigpipe();
    // Rust owns every signal before Python starts (PyConfig.install_signal_handlers=0).
    let signals =
        arbiter::signals::SignalPipe::install(arbiter::signals::MASTER_SIGNALS).map_err(|e| {
            StartupError::Os {
                context: "cannot install signal handlers",
                source: e.into(),
            }
        })?;
    python::interp::start(&python::interp::Setup {
        virtualenv: venv.as_deref().map(Path::new),
        argv: std::env::args().collect(),
    })?;

    let mut hooks = Hooks::default();
    if let Some(spec) = spec.as_deref().filter(|s| !is_ini(s)) {
        let (file_raw, file_hooks) = Python::attach(|py| python::conf::load(py, spec))?;
        if let Some(e) = file_raw.last("virtualenv")
            && venv.as_deref() != Some(e.value.as_str())
        {
            return Err(StartupError::Setting(config::SettingError::File(format!(
                "{}: virtualenv cannot be set in a Python config file (the interpreter is \
                     already running); pass --virtualenv or set it in an INI file",
                e.source
            ))));
        }
        raw.extend(file_raw);
        hooks = file_hooks;
    }
    let (config, origins) = config::resolve(&raw, env)?;
    if config.print_config {
        print!("{}", origins.render());
        return Ok(Prepared::Exit(error::EXIT_OK));
    }
    log::init(&config.errorlog, config.loglevel).map_err(|source| StartupError::Os {
        context: "cannot open the error log",
        source,
    })?;
    for hook in hooks.defined() {
        let declared = config::setting(hook.key()).map(|s| s.support);
        if declared == Some(Support::NotYet) {
            log::warning(&format!(
                "the {} hook is defined, but rgunicorn does not fire it yet",
                hook.key()
            ));
        }
    }
    Python::attach(|py| hooks.set_config(py, &origins));
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
    Python::attach(|py| {
        python::interp::prepend_sys_path(py, &sys_path)?;
        python::interp::set_environ(py, &config.raw_env)
    })
    .map_err(|e| StartupError::Python(python::interp::InterpError::Setup(e.to_string())))?;

    if config.check_config {
        let loaded = Python::attach(|py| python::app::load(py, &config.app_uri).map(drop));
        return Ok(Prepared::Exit(match loaded {
            Ok(()) => error::EXIT_OK,
            Err(e) => {
                log::error(&format!(
                    "{}\n{}",
                    e.message,
                    e.traceback.unwrap_or_default()
                ));
                worker::WorkerExit::AppLoadError as i32
            }
        }));
    }

    let listeners = listeners(&config, env)?;
    log::info(&format!("Starting rgunicorn {}", env!("CARGO_PKG_VERSION")));
    for l in &listeners {
        log::info(&format!(
            "Listening at: {} ({})",
            l.describe(),
            std::process::id()
        ));
    }
    log::info("Using worker: sync");
    if hooks.is_set(Hook::OnStarting) {
        let view = ServerView {
            pid: std::process::id(),
            num_workers: config.workers,
        };
        Python::attach(|py| hooks.on_starting(py, view));
    }
    let notifier = systemd::notify::Notifier::new(env("NOTIFY_SOCKET").is_some());
    let arbiter =
        arbiter::Arbiter::new(config, listeners, signals, notifier, hooks).map_err(|e| {
            StartupError::Os {
                context: "cannot create the boot pipe",
                source: e.into(),
            }
        })?;
    Ok(Prepared::Serve(Box::new(arbiter)))
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
