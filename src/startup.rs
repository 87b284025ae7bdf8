//! Start-up: from typed settings to a running arbiter.
//!
//! Order matters and follows Gunicorn where it can: read an INI config file →
//! start the interpreter (as the virtualenv's python, so the venv must be known
//! by now) → run a Python config file → resolve every setting → daemonize →
//! umask, chdir, sys.path, raw_env → bind → preload → on_starting → arbiter.
//! Reading the configuration is [`Launch::load`], which the arbiter runs again
//! on SIGHUP; this module builds the arbiter and nothing downstream calls it.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use pyo3::Python;

use crate::config::Config;
use crate::config::raw::RawSettings;
use crate::error::{ExitStatus, StartupError};
use crate::launch::{self, Env, Invocation, Launch, Loaded};
use crate::listen::{Address, Listener};
use crate::python::app::AppLoadError;
use crate::python::hooks::{Hook, Hooks, ServerView};
use crate::signals::{self, SignalPipe};
use crate::{arbiter, log, python, systemd};

/// What start-up decided.
pub enum Prepared {
    /// Serve until stopped.
    Serve(Box<arbiter::Arbiter>),
    /// `--print-config` / `--check-config` are done: exit with this status.
    Exit(i32),
}

/// Run start-up; see the module doc for the order.
///
/// # Errors
/// [`StartupError`], whose exit code the caller returns.
pub fn prepare(
    cli: RawSettings,
    env: Env,
    invocation: Invocation,
) -> Result<Prepared, StartupError> {
    let launch = Launch::new(cli, env, invocation)?;
    let signals = start_interpreter(&launch)?;
    let Loaded {
        config,
        origins,
        hooks,
    } = launch.load()?;
    Python::attach(|py| python::app::prepare_loader(py).map(drop))
        .map_err(|e| StartupError::Python(python::interp::InterpError::Setup(e.to_string())))?;
    if config.print_config {
        print!("{}", origins.render());
        return Ok(Prepared::Exit(ExitStatus::Ok.code()));
    }
    set_up_master(&config, &hooks)?;
    let tls = launch.load_tls(&config)?;
    if config.check_config {
        return Ok(check_app(&config));
    }
    if config.daemon {
        daemonize(config.stdio_inherited)?;
    }

    let notifier = systemd::notify::Notifier::from_env(&|k| launch.var(k), std::process::id());
    let (mut listeners, metrics) = listeners(&config, &|k| launch.var(k), Some(&notifier))?;
    let metrics = metrics_listener(&config, metrics)?;
    // Only a service systemd started (INVOCATION_ID) has an fd store to use.
    if notifier.enabled() && launch.var("INVOCATION_ID").is_some() {
        store_bound_sockets(&notifier, &mut listeners);
    }
    check_plain_binds(&config, &listeners)?;
    hand_over_files(&config, &listeners)?;
    announce(&listeners, metrics.as_ref(), &config, tls.is_some());
    if hooks.is_set(Hook::OnStarting) {
        let view = ServerView {
            pid: std::process::id(),
            num_workers: config.workers,
        };
        // Gunicorn does not start when on_starting raises.
        Python::attach(|py| hooks.on_starting(py, view))?;
    }
    let preload = config.preload_app;
    let mut arbiter = arbiter::Arbiter::new(
        config,
        (listeners, metrics),
        tls,
        signals,
        notifier,
        hooks,
        launch,
    )
    .map_err(|source| StartupError::Os {
        context: "cannot start the master",
        source,
    })?;
    if preload && let Err(e) = arbiter.preload() {
        return Ok(app_load_failed(e));
    }
    Ok(Prepared::Serve(Box::new(arbiter)))
}

/// Take every signal, then start the interpreter (as the virtualenv's python).
/// Rust owns the signals before Python starts (PyConfig.install_signal_handlers=0).
fn start_interpreter(launch: &Launch) -> Result<SignalPipe, StartupError> {
    signals::ignore_sigpipe();
    let signals = SignalPipe::install(signals::MASTER_SIGNALS).map_err(|e| StartupError::Os {
        context: "cannot install signal handlers",
        source: e.into(),
    })?;
    python::interp::start(&python::interp::Setup {
        virtualenv: launch.venv.as_deref().map(Path::new),
        argv: std::env::args().collect(),
    })?;
    Ok(signals)
}

/// The master's own set-up once the configuration is known: error log, process
/// title, a warning for each hook that never fires, then umask, chdir, sys.path
/// and raw_env.
fn set_up_master(config: &Config, hooks: &Hooks) -> Result<(), StartupError> {
    log::init_target(&config.error_log, config.loglevel).map_err(|source| StartupError::Path {
        what: "cannot open the error log",
        path: PathBuf::from(config.error_log.to_string()),
        source,
    })?;
    crate::proctitle::set(&crate::proctitle::title(
        crate::proctitle::Role::Master,
        config,
    ));
    launch::warn_unfired_hooks(hooks);
    start_syslog(config);
    if config.capture_output {
        match log::capture_output() {
            Ok(true) => {}
            Ok(false) => log::warning(
                "capture_output has nothing to do: errorlog is not a file (stdout and stderr are already collected)",
            ),
            Err(e) => log::warning(&format!("capture_output failed: {e}")),
        }
    }
    if let Some(target) = &config.statsd_host
        && let Err(e) = log::statsd::init(target, &config.statsd_prefix, &config.dogstatsd_tags)
    {
        // Gunicorn carries on without metrics too; say so, at least.
        log::warning(&format!(
            "cannot reach statsd_host {target:?}: {e}; no statsD metrics"
        ));
    }
    Python::attach(|py| python::logging::install(py, config.loglevel)).map_err(|e| {
        StartupError::Os {
            context: "cannot set up Python's gunicorn.error logger",
            source: std::io::Error::other(e.to_string()),
        }
    })?;
    launch::apply_process_settings(config)
}

/// `syslog`: connect to `syslog_addr` (a failure is a warning; the error log
/// still has every record).
fn start_syslog(config: &Config) {
    if !config.syslog_enabled {
        return;
    }
    let name = config
        .proc_name
        .as_deref()
        .unwrap_or(&config.default_proc_name)
        .replace(':', ".");
    let setup = log::syslog::Setup {
        target: &config.syslog_addr,
        facility: config.syslog_facility,
        prefix: config.syslog_prefix.as_deref().unwrap_or(&name),
        access: config.access_to_syslog,
    };
    if let Err(e) = log::syslog::init(&setup) {
        log::warning(&format!(
            "cannot reach syslog_addr {:?}: {e}; not logging to syslog",
            config.syslog_addr
        ));
    }
}

/// `--check-config`: import the app once; exit 0, or 4 with the reason.
fn check_app(config: &Config) -> Prepared {
    match Python::attach(|py| python::app::load(py, &config.app_uri).map(drop)) {
        Ok(()) => Prepared::Exit(ExitStatus::Ok.code()),
        Err(e) => app_load_failed(e),
    }
}

/// Keep sockets we bound ourselves in systemd's fd store, so `systemctl
/// restart` hands them to the next start with their queued connections.
fn store_bound_sockets(notifier: &systemd::notify::Notifier, listeners: &mut [Listener]) {
    for l in listeners.iter_mut().filter(|l| !l.inherited) {
        notifier.store_fd(std::os::fd::AsFd::as_fd(&l.fd), STORED_FD_NAME);
        l.keep_path();
    }
}

/// Every `plain_bind` must name a socket being served: a typo there would
/// otherwise serve that socket with TLS, silently.
fn check_plain_binds(config: &Config, listeners: &[Listener]) -> Result<(), StartupError> {
    for addr in &config.plain_bind {
        if !listeners.iter().any(|l| l.matches(addr)) {
            return Err(StartupError::Setting(
                crate::config::SettingError::Invalid {
                    key: "plain_bind",
                    value: addr.to_string(),
                    reason: "names no socket being served".to_owned(),
                },
            ));
        }
    }
    Ok(())
}

/// Gunicorn's start-up lines: version, each socket, worker class.
fn announce(listeners: &[Listener], metrics: Option<&Listener>, config: &Config, tls: bool) {
    log::info(&format!("Starting rgunicorn {}", env!("CARGO_PKG_VERSION")));
    for l in listeners {
        let shown = match tls && !config.plain_bind.iter().any(|a| l.matches(a)) {
            true => l.describe().replacen("http://", "https://", 1),
            false => l.describe(),
        };
        log::info(&format!("Listening at: {shown} ({})", std::process::id()));
    }
    if let Some(l) = metrics {
        log::info(&format!(
            "Serving metrics at: {}/metrics",
            l.describe().replace("unix:", "http+unix:")
        ));
    }
    match (&config.worker_class_alias, config.asgi, config.threads > 1) {
        (Some(alias), _, _) => log::info(&format!(
            "Using worker: asgi (worker class {alias} is served by rgunicorn's asgi worker)"
        )),
        (None, true, _) => log::info("Using worker: asgi"),
        (None, false, true) => log::info("Using worker: gthread"),
        (None, false, false) => log::info("Using worker: sync"),
    }
}

/// `--check-config` or `preload_app` could not import the app: log why, exit 4.
fn app_load_failed(e: AppLoadError) -> Prepared {
    log::error(&format!(
        "{}\n{}",
        e.message,
        e.traceback.unwrap_or_default()
    ));
    Prepared::Exit(ExitStatus::AppLoad.code())
}

/// With `user`/`group`: the unix sockets we bound and the log files become the
/// workers' (Gunicorn chowns them too), so workers can still write and reopen them.
fn hand_over_files(config: &Config, listeners: &[Listener]) -> Result<(), StartupError> {
    if config.user.is_none() && config.group.is_none() {
        return Ok(());
    }
    let mut paths: Vec<PathBuf> = listeners
        .iter()
        .filter(|l| !l.inherited)
        .filter_map(|l| match &l.kind {
            crate::listen::Endpoint::Unix(p) if !p.as_os_str().is_empty() => Some(p.clone()),
            _ => None,
        })
        .collect();
    for log_file in config.log_files() {
        // Create it now, so the workers can open it after dropping privileges.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_file)
            .map_err(|source| StartupError::Os {
                context: "cannot create a log file",
                source,
            })?;
        paths.push(log_file.to_path_buf());
    }
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    crate::privileges::hand_over(config.user.as_deref(), config.group.as_deref(), &refs)
        .map_err(StartupError::HandOver)
}

/// Detach: fork, setsid, fork again, stdio to /dev/null (Gunicorn's
/// daemonize); with `stdio_inherited` only stdin goes to /dev/null.
fn daemonize(stdio_inherited: bool) -> Result<(), StartupError> {
    let os = |context: &'static str| {
        move |e: nix::Error| StartupError::Os {
            context,
            source: e.into(),
        }
    };
    for round in 0..2 {
        let forked = Python::attach(|_py| {
            // SAFETY: the master is single-threaded and holds the GIL, bracketed as
            // CPython's fork protocol requires.
            unsafe {
                pyo3::ffi::PyOS_BeforeFork();
                let r = nix::unistd::fork();
                match r {
                    Ok(nix::unistd::ForkResult::Child) => pyo3::ffi::PyOS_AfterFork_Child(),
                    _ => pyo3::ffi::PyOS_AfterFork_Parent(),
                }
                r
            }
        })
        .map_err(os("cannot fork to daemonize"))?;
        if let nix::unistd::ForkResult::Parent { .. } = forked {
            // SAFETY: the parent has nothing left to do; _exit skips destructors that
            // would unlink files the daemon now owns.
            unsafe { libc::_exit(ExitStatus::Ok.code()) };
        }
        if round == 0 {
            nix::unistd::setsid().map_err(os("setsid failed"))?;
        }
    }
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|source| StartupError::Os {
            context: "cannot open /dev/null",
            source,
        })?;
    let last = if stdio_inherited { 1 } else { 3 };
    for fd in 0..last {
        // SAFETY: dup2 onto the standard descriptors; `null` stays open until then.
        unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) };
    }
    Ok(())
}

/// FDNAME of the sockets rgunicorn puts in systemd's fd store.
pub const STORED_FD_NAME: &str = "rgunicorn-bind";

/// FileDescriptorName= of a passed socket that serves metrics, not HTTP.
pub const METRICS_FD_NAME: &str = "metrics";

/// The metrics listener: the socket passed as `metrics`, else `metrics_bind`
/// bound now, else none.
fn metrics_listener(
    config: &Config,
    passed: Option<Listener>,
) -> Result<Option<Listener>, StartupError> {
    if passed.is_some() {
        return Ok(passed);
    }
    let Some(addr) = &config.metrics_bind else {
        return Ok(None);
    };
    // A small backlog: scrapers are few, and they retry.
    Ok(Listener::bind(addr, 64, false)?.into_iter().next())
}

/// Inherited sockets first, then `--bind` addresses; the default bind only when
/// neither gave any. A socket from our own fd store that no bind names any more is
/// closed and removed from the store. A passed socket named
/// [`METRICS_FD_NAME`] is returned apart: it serves metrics, never HTTP.
///
/// # Errors
/// A socket could not be bound or an inherited fd is not a listening socket.
pub fn listeners(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    notifier: Option<&systemd::notify::Notifier>,
) -> Result<(Vec<Listener>, Option<Listener>), StartupError> {
    let mut out = Vec::new();
    let mut metrics = None;
    let mut stale_store = false;
    let mut kept_from_store = Vec::new();
    // `--bind fd://NAME` selects passed sockets by name; without any, all are served.
    let selected: Vec<&str> = config
        .bind
        .iter()
        .filter_map(|a| match a {
            Address::FdName(n) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    for passed in systemd::activation::passed_fds(env, std::process::id())? {
        // SAFETY: the service manager (or our previous master) passed this fd to
        // our pid (LISTEN_PID matched); nothing else in the process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(passed.fd) };
        let mut listener = Listener::adopt(fd)?;
        listener.name = Some(passed.name.clone());
        if passed.name == METRICS_FD_NAME {
            metrics = Some(listener);
            continue;
        }
        if !selected.is_empty()
            && passed.name != STORED_FD_NAME
            && !selected.contains(&passed.name.as_str())
        {
            log::info(&format!(
                "Not serving passed socket {:?}: not named by --bind",
                passed.name
            ));
            continue;
        }
        if passed.name == STORED_FD_NAME {
            let wanted = config.bind.iter().any(|a| listener.serves(a));
            listener.keep_path();
            if !wanted {
                stale_store = true;
                continue;
            }
            kept_from_store.push(out.len());
        }
        out.push(listener);
    }
    if stale_store && let Some(n) = notifier {
        n.remove_stored_fds(STORED_FD_NAME);
        for i in kept_from_store {
            n.store_fd(std::os::fd::AsFd::as_fd(&out[i].fd), STORED_FD_NAME);
        }
    }
    let mut binds = config.bind.clone();
    if binds.is_empty() && out.is_empty() {
        binds.push(Address::Tcp {
            host: "127.0.0.1".into(),
            port: 8000,
        });
    }
    for addr in &binds {
        // An address already passed in (re-exec, systemd) is not bound twice.
        if out.iter_mut().any(|l| l.serves(addr)) {
            continue;
        }
        out.extend(Listener::bind(addr, config.backlog, config.reuse_port)?);
    }
    Ok((out, metrics))
}
