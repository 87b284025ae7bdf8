//! Settings, declared once.
//!
//! Every setting rgunicorn understands is one [`Setting`] value in a file under
//! `defs/`, grouped by [`Section`]. The command-line parser, `--help` and the
//! documentation are all driven by the [`SETTINGS`] registry, so a setting cannot
//! exist in one place and be missing from another. Names, flag spellings and
//! defaults follow Gunicorn's settings reference.
//!
//! The flow is: argv (and later config files) → [`Config::apply`] per setting →
//! [`Config::finish`] resolves env fallbacks → read-only [`Config`] for the run.
//! `apply` validates and never does I/O.

pub mod cli;
mod defs;
pub mod docs;

use std::path::PathBuf;

use crate::http::head::Limits;
use crate::listen::Address;

/// Error from a bad value or an unknown key; always a usage error (exit status 2).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingError {
    /// The value does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        /// Setting key, e.g. `workers`.
        key: &'static str,
        /// The value as typed.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A flag that no setting declares.
    #[error("unrecognized option {flag:?}{}", suggestion_text(.suggestion))]
    UnknownFlag {
        /// The flag as typed.
        flag: String,
        /// The closest declared flag, if any is close.
        suggestion: Option<&'static str>,
    },
    /// A value flag at the end of argv.
    #[error("option {flag} needs a value")]
    MissingValue {
        /// The flag as typed.
        flag: String,
    },
    /// A boolean flag given `=value`.
    #[error("option {flag} takes no value")]
    UnexpectedValue {
        /// The flag as typed.
        flag: String,
    },
    /// No application was named.
    #[error("no application module specified")]
    MissingApp,
    /// More than one positional argument.
    #[error("unexpected argument {0:?}")]
    ExtraArgument(String),
}

fn suggestion_text(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(flag) => format!(" (did you mean {flag}?)"),
        None => String::new(),
    }
}

/// Groups of settings, in the order `--help` and the man pages list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Where to listen.
    Socket,
    /// Worker processes.
    Worker,
    /// Python and application loading.
    Server,
    /// Request parsing limits.
    Security,
    /// Error and access logs.
    Logging,
}

impl Section {
    /// All sections in display order.
    pub const ALL: [Section; 5] = [
        Section::Socket,
        Section::Worker,
        Section::Server,
        Section::Security,
        Section::Logging,
    ];

    /// Heading used in `--help` and the man pages.
    pub fn title(self) -> &'static str {
        match self {
            Section::Socket => "Socket",
            Section::Worker => "Worker Processes",
            Section::Server => "Server Mechanics",
            Section::Security => "Security",
            Section::Logging => "Logging",
        }
    }
}

/// Which process a setting takes effect in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    /// The master (arbiter).
    Master,
    /// Every worker.
    Worker,
}

/// Whether a flag takes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// `--flag` sets the setting to true.
    Switch,
    /// `--flag VALUE`.
    Value {
        /// Placeholder shown in help, e.g. `ADDRESS`.
        metavar: &'static str,
    },
}

/// One setting's declaration: everything the parser and the docs need.
pub struct Setting {
    /// Gunicorn's setting key, e.g. `graceful_timeout`.
    pub key: &'static str,
    /// Long and short flags, e.g. `["-b", "--bind"]`.
    pub flags: &'static [&'static str],
    /// Switch or value-taking.
    pub arity: Arity,
    /// Group for help and docs.
    pub section: Section,
    /// Default as shown to users.
    pub default: &'static str,
    /// One line, at most 70 columns.
    pub summary: &'static str,
    /// Longer description for the man page.
    pub doc: &'static str,
    /// Environment variable consulted when nothing else sets the value.
    pub env_fallback: Option<&'static str>,
    /// Where the setting acts.
    pub process: Process,
    /// Validate `value` and store it into `config`. Never does I/O.
    pub apply: fn(&mut Config, &str) -> Result<(), String>,
}

/// The registry: every setting, in section order.
pub static SETTINGS: &[&Setting] = defs::ALL;

/// Look a setting up by its key.
pub fn setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().copied().find(|s| s.key == key)
}

/// The resolved configuration, read-only once [`Config::finish`] has run.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `APP_MODULE`: `module[:expression]`.
    pub app_uri: String,
    /// Addresses to bind (empty until [`Config::finish`] picks the default).
    pub bind: Vec<Address>,
    /// listen(2) backlog for sockets we bind.
    pub backlog: i32,
    /// Set SO_REUSEPORT on sockets we bind.
    pub reuse_port: bool,
    /// Number of worker processes.
    pub workers: usize,
    /// Seconds a worker may be silent before it is killed (0 disables).
    pub timeout: u64,
    /// Seconds a graceful stop waits for in-flight requests.
    pub graceful_timeout: u64,
    /// Seconds an idle keep-alive connection is kept open (0 disables keep-alive).
    pub keepalive: u64,
    /// Request head limits.
    pub limits: Limits,
    /// Directory to change to before loading the app.
    pub chdir: Option<PathBuf>,
    /// Extra directories prepended to sys.path.
    pub pythonpath: Vec<PathBuf>,
    /// Virtualenv whose packages the app may import.
    pub virtualenv: Option<PathBuf>,
    /// Access log destination (`-` is stdout); none disables the access log.
    pub accesslog: Option<String>,
    /// Access log format in Gunicorn's `%(x)s` atoms.
    pub access_log_format: String,
    /// Error log destination (`-` is stderr).
    pub errorlog: String,
    /// Minimum level written to the error log.
    pub loglevel: crate::log::Level,
    /// Value of the `Server` response header.
    pub server_header: String,
    /// SCRIPT_NAME from the environment: the URL prefix the app is mounted at.
    pub script_name: String,
    /// Settings explicitly given, so env fallbacks don't override them.
    given: Vec<&'static str>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            app_uri: String::new(),
            bind: Vec::new(),
            backlog: 2048,
            reuse_port: false,
            workers: 1,
            timeout: 30,
            graceful_timeout: 30,
            keepalive: 2,
            limits: Limits::default(),
            chdir: None,
            pythonpath: Vec::new(),
            virtualenv: None,
            accesslog: None,
            access_log_format: crate::log::access::DEFAULT_FORMAT.to_owned(),
            errorlog: "-".to_owned(),
            loglevel: crate::log::Level::Info,
            server_header: "rgunicorn".to_owned(),
            script_name: String::new(),
            given: Vec::new(),
        }
    }
}

impl Config {
    /// Apply one typed value to the setting named `key`.
    ///
    /// # Errors
    /// [`SettingError::Invalid`] naming the key and the value.
    pub fn apply(&mut self, setting: &'static Setting, value: &str) -> Result<(), SettingError> {
        (setting.apply)(self, value).map_err(|reason| SettingError::Invalid {
            key: setting.key,
            value: value.to_owned(),
            reason,
        })?;
        self.given.push(setting.key);
        Ok(())
    }

    /// True when `key` was set explicitly (not left at its default).
    pub fn is_given(&self, key: &str) -> bool {
        self.given.contains(&key)
    }

    /// Resolve env fallbacks and derived values. `env` is the process environment
    /// as a lookup function, so tests don't touch `std::env`.
    ///
    /// # Errors
    /// A fallback variable holding a bad value.
    pub fn finish(mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, SettingError> {
        for setting in SETTINGS {
            let Some(var) = setting.env_fallback else {
                continue;
            };
            if self.is_given(setting.key) {
                continue;
            }
            if let Some(value) = env(var) {
                (setting.apply)(&mut self, &value).map_err(|reason| SettingError::Invalid {
                    key: setting.key,
                    value: format!("{value} (from ${var})"),
                    reason,
                })?;
            }
        }
        // Gunicorn's documented PORT fallback: bind 0.0.0.0:$PORT when no bind is given.
        if self.bind.is_empty()
            && !self.is_given("bind")
            && let Some(port) = env("PORT").filter(|p| !p.is_empty())
        {
            let addr = Address::parse(&format!("0.0.0.0:{port}")).map_err(|reason| {
                SettingError::Invalid {
                    key: "bind",
                    value: format!("{port} (from $PORT)"),
                    reason,
                }
            })?;
            self.bind.push(addr);
        }
        self.script_name = env("SCRIPT_NAME").unwrap_or_default();
        if self.app_uri.is_empty() {
            return Err(SettingError::MissingApp);
        }
        Ok(self)
    }
}

/// Parse a non-negative integer setting value.
pub(crate) fn parse_uint<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| "expected a non-negative integer".to_owned())
}

/// Parse a boolean setting value the way Gunicorn's `validate_bool` does.
pub(crate) fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "on" => Ok(true),
        "false" | "0" | "no" | "n" | "off" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_flags_are_unique() {
        let mut keys: Vec<_> = SETTINGS.iter().map(|s| s.key).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(before, keys.len());
        let mut flags: Vec<_> = SETTINGS.iter().flat_map(|s| s.flags.iter()).collect();
        flags.sort_unstable();
        let before = flags.len();
        flags.dedup();
        assert_eq!(before, flags.len());
    }

    #[test]
    fn summaries_fit_in_70_columns() {
        for s in SETTINGS {
            assert!(s.summary.len() <= 70, "{}", s.key);
            assert!(!s.summary.ends_with('.'), "{}", s.key);
        }
    }

    #[test]
    fn declared_defaults_match_config_default() {
        let base = Config::default();
        for s in SETTINGS {
            if s.default.is_empty() {
                continue;
            }
            let mut c = Config::default();
            (s.apply)(&mut c, s.default).unwrap_or_else(|e| panic!("{}: {e}", s.key));
            assert_eq!(
                c, base,
                "default text of {} disagrees with Config::default",
                s.key
            );
        }
    }

    #[test]
    fn web_concurrency_is_a_fallback_not_an_override() {
        let env = |k: &str| (k == "WEB_CONCURRENCY").then(|| "3".to_owned());
        let mut c = Config {
            app_uri: "a:b".into(),
            ..Config::default()
        };
        let c1 = c.clone().finish(&env).unwrap();
        assert_eq!(c1.workers, 3);
        c.apply(setting("workers").unwrap(), "5").unwrap();
        assert_eq!(c.finish(&env).unwrap().workers, 5);
    }

    #[test]
    fn port_env_sets_default_bind() {
        let env = |k: &str| (k == "PORT").then(|| "9000".to_owned());
        let c = Config {
            app_uri: "a:b".into(),
            ..Config::default()
        };
        let c = c.finish(&env).unwrap();
        assert_eq!(c.bind, vec![Address::parse("0.0.0.0:9000").unwrap()]);
    }
}
