//! Settings, declared once.
//!
//! Every setting rgunicorn understands is one [`Setting`] value in a file under
//! `defs/`, grouped by [`Section`]. The command-line parser, `--help` and the
//! documentation are all driven by the [`SETTINGS`] registry, so a setting cannot
//! exist in one place and be missing from another. Names, flag spellings and
//! defaults follow Gunicorn's settings reference.
//!
//! Two stages: [`raw::RawSettings`] is what was typed, source by source (command
//! line, `RGUNICORN_CMD_ARGS`, a config file), as strings. [`resolve()`] applies
//! them in Gunicorn's precedence order through each setting's `apply`, which
//! validates and never does I/O, then the documented env fallbacks, and yields
//! the read-only [`Config`] plus where each value came from.
//!
//! `Config` holds each setting's meaning, not its spelling: log destinations are
//! [`LogTarget`]s, `header_map` answers [`HeaderMap::verdict`] per header name,
//! and the timeouts are [`Duration`]s ([`Config::timeout`], [`Config::io_timeout`],
//! [`Config::keepalive`], ...), so no caller re-decides what `0` or `-` means.

pub mod cli;
mod defs;
pub mod docs;
pub mod ini;
pub mod raw;
pub mod resolve;
mod suggestion;

pub use defs::asgi::{AsgiLoop, Lifespan};
pub use resolve::{Origins, resolve};
pub use suggestion::{suggest_flag, suggest_key};

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http::head::Limits;
use crate::listen::Address;
use crate::log::LogTarget;

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
        /// The flag (or argument) it probably meant, by spelling or by meaning.
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
    /// A key in a config file that no setting declares.
    #[error("{origin}: unknown setting {key:?}{}", suggestion_text(.suggestion))]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The setting it probably meant, by spelling or by meaning.
        suggestion: Option<&'static str>,
        /// Where it was written (file and line).
        origin: String,
    },
    /// A value refused, with where it came from.
    #[error("{origin}: {error}")]
    At {
        /// The underlying error.
        error: Box<SettingError>,
        /// Where the value was written.
        origin: String,
    },
    /// A setting rgunicorn knows but does not implement yet, set to a non-default value.
    #[error(
        "setting {key} is not supported yet by rgunicorn (value {value:?}); remove it or leave it at its default {default:?}"
    )]
    NotSupported {
        /// Setting key.
        key: &'static str,
        /// The value given.
        value: String,
        /// The default it may be left at.
        default: &'static str,
    },
    /// A setting or hook rgunicorn refuses by design ([`Support::Refused`]).
    #[error("{key} is not supported by rgunicorn: {reason}")]
    Refused {
        /// Setting or hook key.
        key: &'static str,
        /// Why, and what to use instead (the declaration's doc).
        reason: &'static str,
    },
    /// The config file could not be read or parsed.
    #[error("{0}")]
    File(String),
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
    /// Metrics, health and readiness, memory recycling.
    Operations,
    /// Config file and debugging.
    Config,
    /// Process naming.
    ProcessNaming,
    /// TLS.
    Ssl,
    /// Server hooks (Python config files only).
    Hooks,
}

impl Section {
    /// All sections in display order.
    pub const ALL: [Section; 10] = [
        Section::Config,
        Section::Socket,
        Section::Worker,
        Section::Server,
        Section::Security,
        Section::Logging,
        Section::Operations,
        Section::ProcessNaming,
        Section::Ssl,
        Section::Hooks,
    ];

    /// Heading used in `--help` and the man pages.
    pub fn title(self) -> &'static str {
        match self {
            Section::Socket => "Socket",
            Section::Worker => "Worker Processes",
            Section::Server => "Server Mechanics",
            Section::Security => "Security",
            Section::Logging => "Logging",
            Section::Operations => "Operations",
            Section::Config => "Config File",
            Section::ProcessNaming => "Process Naming",
            Section::Ssl => "SSL",
            Section::Hooks => "Server Hooks",
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

/// The type of a setting's value: drives config-file conversion and
/// `--print-config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// true/false.
    Bool,
    /// A non-negative integer.
    Int,
    /// A string.
    Str,
    /// A list of strings; repeated flags or config entries append.
    List,
    /// A Python dict (config file only).
    Dict,
    /// A server hook: a callable taking this many positional arguments.
    Hook(u8),
}

/// Whether a flag takes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// `--flag` applies `value` (`"true"` for store-true flags).
    Switch {
        /// What the flag sets.
        value: &'static str,
    },
    /// `--flag VALUE`.
    Value {
        /// Placeholder shown in help, e.g. `ADDRESS`.
        metavar: &'static str,
    },
    /// `--flag` alone applies `bare`; `--flag=VALUE`, or `--flag VALUE` when
    /// VALUE is one of `choices`, applies VALUE (argparse's `nargs='?'`,
    /// without swallowing the APP_MODULE that may follow).
    Optional {
        /// Placeholder shown in help, e.g. `MODE`.
        metavar: &'static str,
        /// What the bare flag means.
        bare: &'static str,
        /// Values taken from the next argument.
        choices: &'static [&'static str],
    },
}

/// Whether rgunicorn implements a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Implemented.
    Full,
    /// Known (Gunicorn has it) but not implemented yet: only the default is accepted.
    NotYet,
    /// Gunicorn has it and rgunicorn cannot have it; defining it stops
    /// start-up with a message saying what to use instead (its doc).
    Refused,
}

/// One setting's declaration: everything the parser and the docs need.
pub struct Setting {
    /// Gunicorn's setting key, e.g. `graceful_timeout`.
    pub key: &'static str,
    /// Long and short flags, e.g. `["-b", "--bind"]`.
    pub flags: &'static [&'static str],
    /// Switch or value-taking.
    pub arity: Arity,
    /// Value type.
    pub kind: Kind,
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
    /// Implemented, or known but refused unless left at its default.
    pub support: Support,
    /// Validate `value` and store it into `config`. Never does I/O.
    pub apply: fn(&mut Config, &str) -> Result<(), String>,
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Setting({})", self.key)
    }
}

/// The registry: every setting, in section order.
pub static SETTINGS: &[&Setting] = defs::ALL;

/// Look a setting up by its key.
pub fn setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().copied().find(|s| s.key == key)
}

/// Which request headers with `_` in their name reach the app (`header_map`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderMap {
    /// Drop them (Gunicorn 22+ default: they could spoof proxy headers).
    Drop,
    /// Refuse the request with 400.
    Refuse,
    /// Pass them, mapped like any other header.
    Dangerous,
}

/// What becomes of one request header, by its name: [`HeaderMap::verdict`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderVerdict {
    /// Map it into the environ like any header.
    Pass,
    /// Leave it out of the environ; the request goes on.
    Drop,
    /// Answer the whole request with 400 Bad Request.
    Refuse,
}

impl HeaderMap {
    /// The verdict on a header called `name`. Only names containing `_` are
    /// judged: `X_Forwarded_For` and `X-Forwarded-For` both become
    /// `HTTP_X_FORWARDED_FOR`, so an underscore name could pose as a header a
    /// proxy set. Every other name passes.
    pub fn verdict(self, name: &str) -> HeaderVerdict {
        if !name.contains('_') {
            return HeaderVerdict::Pass;
        }
        match self {
            HeaderMap::Drop => HeaderVerdict::Drop,
            HeaderMap::Refuse => HeaderVerdict::Refuse,
            HeaderMap::Dangerous => HeaderVerdict::Pass,
        }
    }
}

/// The resolved configuration: read-only once [`resolve()`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `wsgi_app` / APP_MODULE: `module[:expression]`.
    pub app_uri: String,
    /// The config file that was read, if any.
    pub config_file: Option<String>,
    /// `--check-config`: validate, load the app, exit.
    pub check_config: bool,
    /// `--print-config`: print every effective value, exit.
    pub print_config: bool,
    /// Addresses to bind (the default is chosen at start-up, when no socket was passed).
    pub bind: Vec<Address>,
    /// listen(2) backlog for sockets we bind.
    pub backlog: i32,
    /// Set SO_REUSEPORT on sockets we bind.
    pub reuse_port: bool,
    /// Number of worker processes.
    pub workers: usize,
    /// `threads`: Python threads per worker that run requests.
    pub threads: usize,
    /// `worker_class` named gthread (only logging differs from sync).
    pub threaded_class: bool,
    /// `worker_class` asgi (or one of its aliases): serve an ASGI 3 app.
    pub asgi: bool,
    /// The Uvicorn worker class named for `asgi`, for the log line saying so.
    pub worker_class_alias: Option<String>,
    /// `asgi_loop`: which asyncio event loop an ASGI worker runs.
    pub asgi_loop: AsgiLoop,
    /// `asgi_lifespan`: whether the lifespan protocol runs.
    pub asgi_lifespan: Lifespan,
    /// `websocket_max_message_size`: largest WebSocket message, in bytes.
    pub websocket_max_message_size: usize,
    /// Most simultaneous connections per worker.
    pub worker_connections: usize,
    /// Seconds a worker may be silent before it is killed (0 disables); read
    /// it as [`Config::timeout`] or [`Config::io_timeout`].
    pub(in crate::config) timeout: u64,
    /// Seconds a graceful stop waits for in-flight requests; read it as
    /// [`Config::graceful_timeout`].
    pub(in crate::config) graceful_timeout: u64,
    /// Seconds an idle keep-alive connection is kept open (0 disables
    /// keep-alive); read it as [`Config::keepalive`] or [`Config::idle_timeout`].
    pub(in crate::config) keepalive: u64,
    /// The SSL settings (files named, not read: the master reads them).
    pub tls: crate::tls::Settings,
    /// `plain_bind`: binds served without TLS although `certfile` is set.
    pub plain_bind: Vec<Address>,
    /// Request head limits and the parser's relaxations.
    pub limits: Limits,
    /// `limit_request_body`: largest request body in bytes; 0 = no limit.
    pub limit_request_body: u64,
    /// `header_timeout` seconds (0: the worker timeout); read it as
    /// [`Config::header_timeout`].
    pub(in crate::config) header_timeout: u64,
    /// `body_timeout` seconds (0: the worker timeout); read it as
    /// [`Config::body_timeout`].
    pub(in crate::config) body_timeout: u64,
    /// `forwarded_allow_ips`: peers whose scheme and forwarder headers count.
    pub forwarded_allow: crate::peers::AllowList,
    /// `secure_scheme_headers`: upper-case header name → the value meaning https.
    pub secure_scheme_headers: Vec<(String, String)>,
    /// `forwarder_headers`: upper-case names a trusted proxy may set.
    pub forwarder_headers: Vec<String>,
    /// `proxy_protocol`: which PROXY headers to expect; None when off.
    pub proxy_protocol: Option<crate::proxy::Accept>,
    /// `proxy_allow_ips`: peers allowed to send a PROXY header.
    pub proxy_allow: crate::peers::AllowList,
    /// What to do with header names containing `_`; ask [`HeaderMap::verdict`]
    /// (or [`Config::header_verdict`]) rather than looking at the name yourself.
    pub header_map: HeaderMap,
    /// Use sendfile(2) for `wsgi.file_wrapper` responses.
    pub sendfile_enabled: bool,
    /// Directory to change to before loading the app.
    pub chdir: Option<PathBuf>,
    /// Extra directories prepended to sys.path.
    pub pythonpath: Vec<PathBuf>,
    /// Virtualenv whose packages the app may import.
    pub virtualenv: Option<PathBuf>,
    /// `KEY=VALUE` pairs set in the environment before the app loads.
    pub raw_env: Vec<(String, String)>,
    /// Where the access log goes; `None` (no `accesslog`) writes none.
    pub access_log: Option<LogTarget>,
    /// Access log format in Gunicorn's `%(x)s` atoms.
    pub access_log_format: String,
    /// Where the error log goes.
    pub error_log: LogTarget,
    /// Minimum level written to the error log.
    pub loglevel: crate::log::Level,
    /// Restart a worker after this many requests (0: never).
    pub max_requests: u64,
    /// Random extra requests added to `max_requests` per worker.
    pub max_requests_jitter: u64,
    /// Workers exit when a watched source file changes.
    pub reload: bool,
    /// Extra files watched with `reload`.
    pub reload_extra_files: Vec<PathBuf>,
    /// Import the app in the master before forking.
    pub preload_app: bool,
    /// Detach into the background at start.
    pub daemon: bool,
    /// PID file of the master.
    pub pidfile: Option<PathBuf>,
    /// User the workers run as.
    pub user: Option<String>,
    /// Group the workers run as.
    pub group: Option<String>,
    /// umask set in the master.
    pub umask: u32,
    /// Give workers the user's supplementary groups.
    pub initgroups: bool,
    /// Process title base name (`proc_name`, else `default_proc_name`).
    pub proc_name: Option<String>,
    /// Fallback process title base name.
    pub default_proc_name: String,
    /// Value of the `Server` response header.
    pub server_header: String,
    /// SCRIPT_NAME from the environment: the URL prefix the app is mounted at.
    pub script_name: String,
    /// `metrics_bind`: where the master serves /metrics, /healthz and /readyz.
    pub metrics_bind: Option<Address>,
    /// `ready_min_workers`: serving workers /readyz needs; 0 means all.
    pub ready_min_workers: usize,
    /// `shutdown_delay` seconds; read it as [`Config::shutdown_delay`].
    pub(in crate::config) shutdown_delay: u64,
    /// `max_worker_memory` MiB (0: off); read it as
    /// [`Config::max_worker_memory_bytes`].
    pub(in crate::config) max_worker_memory: u64,
    /// `statsd_host`: where statsD metrics go; None sends none.
    pub statsd_host: Option<crate::log::statsd::StatsdTarget>,
    /// `statsd_prefix`, as typed (the client adds the dot).
    pub statsd_prefix: String,
    /// `dogstatsd_tags`, comma-separated.
    pub dogstatsd_tags: String,
    /// `syslog`: send the error log to syslog too.
    pub syslog_enabled: bool,
    /// `syslog_addr`.
    pub syslog_addr: crate::log::syslog::SyslogTarget,
    /// `syslog_prefix`; None uses the process name.
    pub syslog_prefix: Option<String>,
    /// `syslog_facility`, as its number.
    pub syslog_facility: u8,
    /// Access lines go to syslog too (not `disable_redirect_access_to_syslog`).
    pub access_to_syslog: bool,
    /// `capture_output`: stdout and stderr follow the error log file.
    pub capture_output: bool,
    /// `enable_stdio_inheritance`: --daemon keeps stdout and stderr.
    pub stdio_inherited: bool,
    /// `logconfig`: a fileConfig INI file.
    pub logconfig: Option<PathBuf>,
    /// `logconfig_json`: a dictConfig JSON file.
    pub logconfig_json: Option<PathBuf>,
    /// `logconfig_dict`: a dictConfig dictionary, as Python's repr.
    pub logconfig_dict: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            app_uri: String::new(),
            config_file: None,
            check_config: false,
            print_config: false,
            bind: Vec::new(),
            backlog: 2048,
            reuse_port: false,
            workers: 1,
            threads: 1,
            threaded_class: false,
            asgi: false,
            worker_class_alias: None,
            asgi_loop: AsgiLoop::Auto,
            asgi_lifespan: Lifespan::Auto,
            websocket_max_message_size: 16 * 1024 * 1024,
            worker_connections: 1000,
            timeout: 30,
            graceful_timeout: 30,
            keepalive: 2,
            tls: crate::tls::Settings::default(),
            plain_bind: Vec::new(),
            limits: Limits::default(),
            limit_request_body: 0,
            header_timeout: 30,
            body_timeout: 30,
            forwarded_allow: crate::peers::AllowList::parse("127.0.0.1,::1")
                .unwrap_or(crate::peers::AllowList::Networks(Vec::new())),
            secure_scheme_headers: vec![
                ("X-FORWARDED-PROTOCOL".into(), "ssl".into()),
                ("X-FORWARDED-PROTO".into(), "https".into()),
                ("X-FORWARDED-SSL".into(), "on".into()),
            ],
            forwarder_headers: vec!["SCRIPT_NAME".into(), "PATH_INFO".into()],
            proxy_protocol: None,
            proxy_allow: crate::peers::AllowList::parse("127.0.0.1,::1")
                .unwrap_or(crate::peers::AllowList::Networks(Vec::new())),
            header_map: HeaderMap::Drop,
            sendfile_enabled: true,
            chdir: None,
            pythonpath: Vec::new(),
            virtualenv: None,
            raw_env: Vec::new(),
            access_log: None,
            access_log_format: crate::log::access::DEFAULT_FORMAT.to_owned(),
            error_log: LogTarget::Stdio,
            loglevel: crate::log::Level::Info,
            max_requests: 0,
            max_requests_jitter: 0,
            reload: false,
            reload_extra_files: Vec::new(),
            preload_app: false,
            daemon: false,
            pidfile: None,
            user: None,
            group: None,
            umask: 0,
            initgroups: false,
            proc_name: None,
            default_proc_name: "rgunicorn".to_owned(),
            server_header: "rgunicorn".to_owned(),
            script_name: String::new(),
            metrics_bind: None,
            ready_min_workers: 0,
            shutdown_delay: 0,
            max_worker_memory: 0,
            statsd_host: None,
            statsd_prefix: String::new(),
            dogstatsd_tags: String::new(),
            syslog_enabled: false,
            syslog_addr: crate::log::syslog::SyslogTarget::Udp(
                "localhost".into(),
                crate::log::syslog::DEFAULT_PORT,
            ),
            syslog_prefix: None,
            syslog_facility: 1,
            access_to_syslog: true,
            capture_output: false,
            stdio_inherited: false,
            logconfig: None,
            logconfig_json: None,
            logconfig_dict: None,
        }
    }
}

/// How long a client socket may stall when `timeout` is 0: the worker timeout
/// is off, but a client that went silent must not hold a connection forever.
const IO_TIMEOUT_WITHOUT_TIMEOUT: Duration = Duration::from_secs(3600);

impl Config {
    /// `timeout`: how long a worker may go without a heartbeat before the master
    /// aborts it; `None` when `timeout` is 0, which turns the check off.
    pub fn timeout(&self) -> Option<Duration> {
        (self.timeout > 0).then(|| Duration::from_secs(self.timeout))
    }

    /// How long a worker waits on a client that neither sends nor reads before
    /// giving it up: `timeout`, or an hour when `timeout` is 0.
    pub fn io_timeout(&self) -> Duration {
        self.timeout().unwrap_or(IO_TIMEOUT_WITHOUT_TIMEOUT)
    }

    /// `graceful_timeout`: how long a graceful stop waits for requests in flight.
    pub fn graceful_timeout(&self) -> Duration {
        Duration::from_secs(self.graceful_timeout)
    }

    /// `keepalive`: how long an idle connection waits for its next request;
    /// `None` when `keepalive` is 0, which turns keep-alive off (every response
    /// closes its connection).
    pub fn keepalive(&self) -> Option<Duration> {
        (self.keepalive > 0).then(|| Duration::from_secs(self.keepalive))
    }

    /// How long a connection waiting for a request (its first, or the next one
    /// on a kept-alive connection) stays open: `keepalive`, but at least a
    /// second, so that with keep-alive off a new connection still gets time to
    /// send its one request.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.keepalive.max(1))
    }

    /// How long a request head may take to arrive, from its first byte.
    pub fn header_timeout(&self) -> Duration {
        match self.header_timeout {
            0 => self.io_timeout(),
            n => Duration::from_secs(n),
        }
    }

    /// How long a request body may stall between two reads.
    pub fn body_timeout(&self) -> Duration {
        match self.body_timeout {
            0 => self.io_timeout(),
            n => Duration::from_secs(n),
        }
    }

    /// `shutdown_delay`: how long to serve on after TERM with /readyz not
    /// ready; None when 0.
    pub fn shutdown_delay(&self) -> Option<Duration> {
        (self.shutdown_delay > 0).then(|| Duration::from_secs(self.shutdown_delay))
    }

    /// `max_worker_memory` in bytes; None when 0 (no limit).
    pub fn max_worker_memory_bytes(&self) -> Option<u64> {
        (self.max_worker_memory > 0).then(|| self.max_worker_memory.saturating_mul(1 << 20))
    }

    /// Serving workers /readyz needs: `ready_min_workers`, or all `wanted`
    /// when it is 0 (never more than are wanted).
    pub fn ready_workers(&self, wanted: usize) -> usize {
        match self.ready_min_workers {
            0 => wanted,
            n => n.min(wanted),
        }
    }

    /// The `header_map` verdict on a request header called `name`.
    pub fn header_verdict(&self, name: &str) -> HeaderVerdict {
        self.header_map.verdict(name)
    }

    /// The files the error and access logs append to: the master creates them
    /// before the workers drop privileges, so the workers can still open them.
    pub fn log_files(&self) -> impl Iterator<Item = &Path> {
        [Some(&self.error_log), self.access_log.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(LogTarget::path)
    }
}

/// The value check of a setting rgunicorn does not implement yet: its default
/// (in any spelling of the same value) is accepted, anything else refused.
pub(crate) fn not_yet(s: &'static Setting, value: &str) -> Result<(), SettingError> {
    let same = match s.kind {
        Kind::Bool => parse_bool(value).ok() == parse_bool(s.default).ok(),
        Kind::Int => parse_uint::<u64>(value).ok() == parse_uint::<u64>(s.default).ok(),
        Kind::List | Kind::Dict => value.trim().is_empty() || value.trim() == "{}",
        Kind::Str | Kind::Hook(_) => {
            value == s.default || (value.is_empty() && s.default == "None")
        }
    };
    if same {
        Ok(())
    } else {
        Err(SettingError::NotSupported {
            key: s.key,
            value: value.to_owned(),
            default: s.default,
        })
    }
}

/// Parse a non-negative integer setting value.
pub(crate) fn parse_uint<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| "expected a non-negative integer".to_owned())
}

/// Parse a count that must be at least 1.
pub(crate) fn parse_positive(value: &str) -> Result<usize, String> {
    match parse_uint::<usize>(value)? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
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
    fn value_flags_have_a_metavar_and_hooks_have_no_flag() {
        for s in SETTINGS {
            if let Arity::Value { metavar } | Arity::Optional { metavar, .. } = s.arity {
                assert!(!metavar.is_empty(), "{}", s.key);
            }
            if let Kind::Hook(arity) = s.kind {
                assert!(s.flags.is_empty(), "{}", s.key);
                assert!(arity >= 1, "{}", s.key);
                assert_eq!(s.section, Section::Hooks);
            }
        }
    }

    #[test]
    fn declared_defaults_match_config_default() {
        let base = Config::default();
        for s in SETTINGS {
            // `config` defaults to ./gunicorn.conf.py only when that file exists.
            if s.default.is_empty()
                || s.default == "None"
                || s.key == "config"
                || matches!(s.kind, Kind::Hook(_))
            {
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
    fn not_yet_settings_accept_only_their_default() {
        let not_yet = SETTINGS
            .iter()
            .filter(|s| s.support == Support::NotYet && !matches!(s.kind, Kind::Hook(_)));
        for s in not_yet {
            let mut c = Config::default();
            let default = if s.default == "None" { "" } else { s.default };
            assert!(
                resolve::apply_value(&mut c, s, default).is_ok(),
                "{}",
                s.key
            );
            let refused = resolve::apply_value(&mut c, s, "surely-not-the-default-42");
            assert!(
                matches!(refused, Err(SettingError::NotSupported { .. })),
                "{}",
                s.key
            );
        }
    }

    #[test]
    fn zero_timeouts_mean_off() {
        let mut c = Config::default();
        assert_eq!(c.timeout(), Some(Duration::from_secs(30)));
        assert_eq!(c.io_timeout(), Duration::from_secs(30));
        assert_eq!(c.keepalive(), Some(Duration::from_secs(2)));
        assert_eq!(c.idle_timeout(), Duration::from_secs(2));
        assert_eq!(c.graceful_timeout(), Duration::from_secs(30));
        c.timeout = 0;
        c.keepalive = 0;
        assert_eq!(c.timeout(), None);
        assert_eq!(c.io_timeout(), Duration::from_secs(3600));
        assert_eq!(c.keepalive(), None);
        assert_eq!(c.idle_timeout(), Duration::from_secs(1));
    }

    #[test]
    fn header_map_judges_only_underscore_names() {
        use HeaderVerdict::{Drop, Pass, Refuse};
        let cases = [
            (HeaderMap::Drop, [Pass, Drop]),
            (HeaderMap::Refuse, [Pass, Refuse]),
            (HeaderMap::Dangerous, [Pass, Pass]),
        ];
        for (map, [dashed, underscored]) in cases {
            assert_eq!(map.verdict("X-Forwarded-For"), dashed, "{map:?}");
            assert_eq!(map.verdict("X_Forwarded_For"), underscored, "{map:?}");
        }
        let c = Config {
            header_map: HeaderMap::Refuse,
            ..Config::default()
        };
        assert_eq!(c.header_verdict("a_b"), Refuse);
    }

    #[test]
    fn log_files_are_the_file_targets() {
        let mut c = Config::default();
        assert_eq!(c.log_files().count(), 0);
        c.error_log = LogTarget::File("/var/log/e.log".into());
        c.access_log = Some(LogTarget::Journal);
        assert_eq!(
            c.log_files().collect::<Vec<_>>(),
            [Path::new("/var/log/e.log")]
        );
        c.access_log = Some(LogTarget::File("a.log".into()));
        assert_eq!(c.log_files().count(), 2);
    }

    #[test]
    fn every_gunicorn_23_setting_is_known() {
        let names = "bind backlog workers worker_class threads worker_connections \
            max_requests max_requests_jitter timeout graceful_timeout keepalive \
            limit_request_line limit_request_fields limit_request_field_size reload \
            reload_engine reload_extra_files spew check_config print_config preload_app \
            sendfile reuse_port chdir daemon raw_env pidfile worker_tmp_dir user group \
            umask initgroups tmp_upload_dir secure_scheme_headers forwarded_allow_ips \
            accesslog disable_redirect_access_to_syslog access_log_format errorlog \
            loglevel capture_output logger_class logconfig logconfig_dict logconfig_json \
            syslog_addr syslog syslog_prefix syslog_facility enable_stdio_inheritance \
            statsd_host dogstatsd_tags statsd_prefix proc_name default_proc_name \
            pythonpath paste proxy_protocol proxy_allow_ips keyfile certfile ssl_version \
            cert_reqs ca_certs suppress_ragged_eofs do_handshake_on_connect ciphers \
            raw_paste_global_conf strip_header_spaces permit_unconventional_http_method \
            permit_unconventional_http_version casefold_http_method forwarder_headers \
            header_map on_starting on_reload when_ready pre_fork post_fork \
            post_worker_init worker_int worker_abort pre_exec pre_request post_request \
            child_exit worker_exit nworkers_changed on_exit ssl_context wsgi_app config \
            virtualenv";
        for name in names.split_whitespace() {
            assert!(setting(name).is_some(), "{name} is not in the registry");
        }
    }
}
