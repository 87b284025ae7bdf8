//! What the server was launched with, and the configuration read from it.
//!
//! [`Launch`] keeps what was typed before any config file (the command line,
//! `RGUNICORN_CMD_ARGS`), the start-up environment, the virtualenv the
//! interpreter runs and how to re-execute the binary. [`Launch::load`] turns
//! that into a [`Config`] by reading the config file (INI, or Python in the
//! running interpreter) and resolving every setting; start-up runs it once and
//! the arbiter runs it again on every SIGHUP, each followed by
//! [`apply_process_settings`]. This module sits upstream of both `startup` and
//! `arbiter`, so the arbiter never reaches back into start-up.
//!
//! It reads files and runs the Python config file, but it binds nothing and
//! forks nothing.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use pyo3::Python;

use crate::config::raw::RawSettings;
use crate::config::{self, Config, Origins, Support};
use crate::error::StartupError;
use crate::python::hooks::Hooks;
use crate::{log, python};

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
pub struct Launch {
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

impl Launch {
    /// Record the launch and find the virtualenv: `--virtualenv`, else an INI
    /// config file's `virtualenv`, else `$VIRTUAL_ENV`. The interpreter starts
    /// as the virtualenv's python, so the venv must be known before a Python
    /// config file can run.
    ///
    /// # Errors
    /// The INI config file cannot be read or parsed.
    pub fn new(cli: RawSettings, env: Env, invocation: Invocation) -> Result<Launch, StartupError> {
        let mut launch = Launch {
            cli,
            env,
            venv: None,
            invocation,
        };
        let ini = launch.ini_entries()?;
        launch.venv = launch
            .cli
            .last("virtualenv")
            .or_else(|| ini.last("virtualenv"))
            .map(|e| e.value.clone())
            .or_else(|| launch.var("VIRTUAL_ENV").filter(|v| !v.is_empty()));
        Ok(launch)
    }

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
        refuse_hooks(&hooks)?;
        let (mut config, origins) = config::resolve(&raw, &|k| self.var(k))?;
        let warnings = Python::attach(|py| python::logconfig::apply(py, &mut config))
            .map_err(|e| StartupError::Setting(config::SettingError::File(e)))?;
        for w in warnings {
            log::warning(&w);
        }
        Python::attach(|py| hooks.set_config(py, &origins));
        Ok(Loaded {
            config,
            origins,
            hooks,
        })
    }
    /// Read the TLS files `config` names (see `tls::load`; relative names in
    /// `$CREDENTIALS_DIRECTORY`), warning about the settings that are accepted
    /// but change nothing. Start-up runs it, and the arbiter on every SIGHUP.
    ///
    /// # Errors
    /// The files cannot be used, or TLS is combined with `proxy_protocol`.
    pub fn load_tls(&self, config: &Config) -> Result<Option<crate::tls::Acceptor>, StartupError> {
        let settings = &config.tls;
        if let Some(v) = &settings.ssl_version {
            crate::log::warning(&format!(
                "ssl_version {v:?} is ignored: TLS 1.2 and 1.3 are offered (narrow with ciphers)"
            ));
        }
        if let Some(list) = settings
            .ciphers
            .as_ref()
            .filter(|l| !l.unsupported.is_empty())
        {
            crate::log::warning(&format!(
                "ciphers: {} not offered (rustls does not implement them)",
                list.unsupported.join(", ")
            ));
        }
        if settings.enabled() && config.proxy_protocol.is_some() {
            // TODO(#13): read the PROXY header before the ClientHello.
            return Err(StartupError::Setting(
                crate::config::SettingError::Refused {
                    key: "proxy_protocol",
                    reason: "it cannot be combined with certfile yet",
                },
            ));
        }
        Ok(crate::tls::load(settings, &|k| self.var(k))?)
    }
}

fn is_ini(spec: &str) -> bool {
    !spec.starts_with("python:") && (spec.ends_with(".ini") || spec.ends_with(".conf"))
}

/// A hook rgunicorn cannot honour (`ssl_context`) stops start-up, saying what
/// to use instead.
fn refuse_hooks(hooks: &Hooks) -> Result<(), StartupError> {
    for hook in hooks.defined() {
        if let Some(s) = config::setting(hook.key()).filter(|s| s.support == Support::Refused) {
            return Err(StartupError::Setting(config::SettingError::Refused {
                key: s.key,
                reason: s.doc,
            }));
        }
    }
    Ok(())
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
