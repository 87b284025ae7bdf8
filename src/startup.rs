//! Start-up: from typed settings to a running arbiter.
//!
//! Order matters and follows Gunicorn where it can: read an INI config file →
//! start the interpreter (as the virtualenv's python, so the venv must be known
//! by now) → run a Python config file → resolve every setting → daemonize →
//! umask, chdir, sys.path, raw_env → bind → preload → on_starting → arbiter.
//! [`Settings::load`] is also what SIGHUP runs to re-read the configuration.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use pyo3::Python;

use crate::config::raw::RawSettings;
use crate::config::{self, Config, Origins, Support};
use crate::error::StartupError;
use crate::listen::{Address, Listener};
use crate::python::hooks::{Hook, Hooks, ServerView};
use crate::{arbiter, log, python, systemd};

/// The process environment at start-up, before anything changed it.
pub type Env = HashMap<String, String>;

/// What the process was started as, to re-execute it (USR2, HUP with preload).
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The binary.
    pub exe: PathBuf,
    /// argv, including argv\[0\].
    pub args: Vec<OsString>,
    /// The working directory at start (before `chdir`).
    pub cwd: PathBuf,
}

impl Invocation {
    /// Record how this process was started. Call first thing in `main`.
    pub fn capture() -> Invocation {
        let exe = std::env::current_exe()
            .map(|p| {
                // A binary replaced on disk (an upgrade) shows as "PATH (deleted)";
                // re-executing means running the new file at PATH.
                let s = p.to_string_lossy();
                match s.strip_suffix(" (deleted)") {
                    Some(orig) => PathBuf::from(orig),
                    None => p,
                }
            })
            .unwrap_or_else(|_| PathBuf::from("rgunicorn"));
        Invocation {
            exe,
            args: std::env::args_os().collect(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }
}

/// Everything typed before the config file, and how to read the config file:
/// kept by the arbiter so SIGHUP can load the configuration again.
pub struct Settings {
    /// Command line and `RGUNICORN_CMD_ARGS`.
    pub cli: RawSettings,
    /// The start-up environment.
    pub env: Env,
    /// The virtualenv the interpreter was started with.
    pub venv: Option<String>,
    /// How we were started.
    pub invocation: Invocation,
}

/// A resolved configuration with its hooks.
pub struct Loaded {
    /// The settings.
    pub config: Config,
    /// Where each came from.
    pub origins: Origins,
    /// Hooks from a Python config file.
    pub hooks: Hooks,
}

impl Settings {
    /// Look up a start-up environment variable.
    pub fn var(&self, key: &str) -> Option<String> {
        self.env.get(key).cloned()
    }

    /// The config file to read: `-c`, else `./gunicorn.conf.py` when present.
    fn config_file(&self) -> Option<String> {
        match self.cli.last("config") {
            Some(e) if e.value.is_empty() => None,
            Some(e) => Some(e.value.clone()),
            None => {
                let default = self.invocation.cwd.join("gunicorn.conf.py");
                default
                    .is_file()
                    .then(|| default.to_string_lossy().into_owned())
            }
        }
    }

    /// Entries from an INI config file, if that is what is named.
    fn ini_entries(&self) -> Result<RawSettings, StartupError> {
        let Some(spec) = self.config_file().filter(|s| is_ini(s)) else {
            return Ok(RawSettings::default());
        };
        let text = std::fs::read_to_string(&spec).map_err(|e| {
            StartupError::Setting(config::SettingError::File(format!(
                "cannot read {spec}: {e}"
            )))
        })?;
        Ok(config::ini::parse(&text, &spec)?)
    }

    /// Read the config file and resolve everything. Needs the interpreter for a
    /// Python config file.
    ///
    /// # Errors
    /// A missing or broken config file, or a refused value.
    pub fn load(&self) -> Result<Loaded, StartupError> {
        let spec = self.config_file();
        if let Some(spec) = spec.as_deref().filter(|s| !s.starts_with("python:"))
            && !Path::new(spec).is_file()
        {
            return Err(StartupError::Setting(config::SettingError::File(format!(
                "config file {spec:?} does not exist"
            ))));
        }
        let mut raw = self.cli.clone();
        raw.extend(self.ini_entries()?);
        let mut hooks = Hooks::default();
        if let Some(spec) = spec.as_deref().filter(|s| !is_ini(s)) {
            let (file_raw, file_hooks) = Python::attach(|py| python::conf::load(py, spec))?;
            if let Some(e) = file_raw.last("virtualenv")
                && self.venv.as_deref() != Some(e.value.as_str())
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
        let (config, origins) = config::resolve(&raw, &|k| self.var(k))?;
        Python::attach(|py| hooks.set_config(py, &origins));
        Ok(Loaded {
            config,
            origins,
            hooks,
        })
    }
}

fn is_ini(spec: &str) -> bool {
    !spec.starts_with("python:") && (spec.ends_with(".ini") || spec.ends_with(".conf"))
}

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
    let mut settings = Settings {
        cli,
        env,
        venv: None,
        invocation,
    };
    // The interpreter starts as the virtualenv's python, so the venv must be known
    // before a Python config file can run.
    let ini = settings.ini_entries()?;
    settings.venv = settings
        .cli
        .last("virtualenv")
        .or_else(|| ini.last("virtualenv"))
        .map(|e| e.value.clone())
        .or_else(|| settings.var("VIRTUAL_ENV").filter(|v| !v.is_empty()));

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
        virtualenv: settings.venv.as_deref().map(Path::new),
        argv: std::env::args().collect(),
    })?;

    let Loaded {
        config,
        origins,
        hooks,
    } = settings.load()?;
    Python::attach(|py| python::app::prepare_loader(py).map(drop))
        .map_err(|e| StartupError::Python(python::interp::InterpError::Setup(e.to_string())))?;
    if config.print_config {
        print!("{}", origins.render());
        return Ok(Prepared::Exit(crate::error::EXIT_OK));
    }
    log::init(&config.errorlog, config.loglevel).map_err(|source| StartupError::Path {
        what: "cannot open the error log",
        path: PathBuf::from(&config.errorlog),
        source,
    })?;
    crate::proctitle::set(&crate::proctitle::title(
        crate::proctitle::Role::Master,
        &config,
    ));
    warn_unfired_hooks(&hooks);
    apply_process_settings(&config)?;

    if config.check_config {
        let loaded = Python::attach(|py| python::app::load(py, &config.app_uri).map(drop));
        return Ok(Prepared::Exit(match loaded {
            Ok(()) => crate::error::EXIT_OK,
            Err(e) => {
                log::error(&format!(
                    "{}\n{}",
                    e.message,
                    e.traceback.unwrap_or_default()
                ));
                crate::worker::WorkerExit::AppLoadError as i32
            }
        }));
    }
    if config.daemon {
        daemonize()?;
    }

    let notifier = systemd::notify::Notifier::from_env(&|k| settings.var(k), std::process::id());
    let mut listeners = listeners(&config, &|k| settings.var(k), Some(&notifier))?;
    // Only a service systemd started (INVOCATION_ID) has an fd store to use.
    if notifier.enabled() && settings.var("INVOCATION_ID").is_some() {
        // Keep sockets we bound ourselves in systemd's fd store, so `systemctl
        // restart` hands them to the next start with their queued connections.
        for l in listeners.iter_mut().filter(|l| !l.inherited) {
            notifier.store_fd(std::os::fd::AsFd::as_fd(&l.fd), STORED_FD_NAME);
            l.keep_path();
        }
    }
    hand_over_files(&config, &listeners)?;
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
        // Gunicorn does not start when on_starting raises.
        Python::attach(|py| hooks.on_starting(py, view))?;
    }
    let preload = config.preload_app;
    let mut arbiter = arbiter::Arbiter::new(config, listeners, signals, notifier, hooks, settings)
        .map_err(|source| StartupError::Os {
            context: "cannot start the master",
            source,
        })?;
    if preload && let Err(e) = arbiter.preload() {
        log::error(&format!(
            "{}\n{}",
            e.message,
            e.traceback.unwrap_or_default()
        ));
        return Ok(Prepared::Exit(
            crate::worker::WorkerExit::AppLoadError as i32,
        ));
    }
    Ok(Prepared::Serve(Box::new(arbiter)))
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
            crate::listen::Kind::Unix(p) if !p.as_os_str().is_empty() => Some(p.clone()),
            _ => None,
        })
        .collect();
    for log_file in [Some(config.errorlog.as_str()), config.accesslog.as_deref()]
        .into_iter()
        .flatten()
    {
        if log_file == "-" || log::names_journal(log_file) {
            continue;
        }
        // Create it now, so the workers can open it after dropping privileges.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_file)
            .map_err(|source| StartupError::Os {
                context: "cannot create a log file",
                source,
            })?;
        paths.push(PathBuf::from(log_file));
    }
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    crate::privileges::hand_over(config.user.as_deref(), config.group.as_deref(), &refs).map_err(
        |e| StartupError::Os {
            context: "cannot hand files to the worker user",
            source: std::io::Error::other(e.to_string()),
        },
    )
}

/// Hooks whose event does not exist yet: say so instead of never calling them.
pub fn warn_unfired_hooks(hooks: &Hooks) {
    for hook in hooks.defined() {
        let declared = config::setting(hook.key()).map(|s| s.support);
        if declared == Some(Support::NotYet) {
            log::warning(&format!(
                "the {} hook is defined, but rgunicorn does not fire it yet",
                hook.key()
            ));
        }
    }
}

/// umask, chdir, sys.path and raw_env: the process-wide effects of the settings.
/// Also run again on SIGHUP.
///
/// # Errors
/// chdir failed, or Python refused sys.path/os.environ changes.
pub fn apply_process_settings(config: &Config) -> Result<(), StartupError> {
    // SAFETY: umask(2) cannot fail and touches only this process's mask.
    unsafe { libc::umask(config.umask as libc::mode_t) };
    if let Some(dir) = &config.chdir {
        std::env::set_current_dir(dir).map_err(|source| StartupError::Path {
            what: "cannot change directory to",
            path: dir.clone(),
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
    .map_err(|e| StartupError::Python(python::interp::InterpError::Setup(e.to_string())))
}

/// Detach: fork, setsid, fork again, stdio to /dev/null (Gunicorn's daemonize).
fn daemonize() -> Result<(), StartupError> {
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
            unsafe { libc::_exit(0) };
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
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors; `null` stays open until then.
        unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) };
    }
    Ok(())
}

/// FDNAME of the sockets rgunicorn puts in systemd's fd store.
pub const STORED_FD_NAME: &str = "rgunicorn-bind";

/// Inherited sockets first, then `--bind` addresses; the default bind only when
/// neither gave any. A socket from our own fd store that no bind names any more is
/// closed and removed from the store.
///
/// # Errors
/// A socket could not be bound or an inherited fd is not a listening socket.
pub fn listeners(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    notifier: Option<&systemd::notify::Notifier>,
) -> Result<Vec<Listener>, StartupError> {
    let mut out = Vec::new();
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
    Ok(out)
}
