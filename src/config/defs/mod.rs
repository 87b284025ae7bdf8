//! The setting declarations, one file per [`Section`](super::Section).
//!
//! Each `static` is the single declaration of one setting; [`ALL`] is the registry
//! in display order. Settings Gunicorn has and rgunicorn does not implement yet
//! are declared with [`not_yet!`]: known (so a typo still gets "did you mean"),
//! and refused with an error naming them unless left at their default.

/// Declare a setting that only accepts its default for now.
macro_rules! not_yet {
    ($name:ident, $key:literal, [$($flag:literal),*], $arity:expr, $kind:expr, $section:expr,
     $default:literal, $summary:literal, $process:expr) => {
        #[doc = concat!("`", $key, "`: ", $summary, " (not supported yet).")]
        pub static $name: crate::config::Setting = crate::config::Setting {
            key: $key,
            flags: &[$($flag),*],
            arity: $arity,
            kind: $kind,
            section: $section,
            default: $default,
            summary: $summary,
            doc: "Not supported yet: only the default value is accepted.",
            env_fallback: None,
            process: $process,
            support: crate::config::Support::NotYet,
            apply: |_, _| Ok(()),
        };
    };
}

pub mod asgi;
mod config_file;
mod hooks;
mod logging;
mod naming;
mod operations;
mod proxy;
mod security;
mod server;
mod socket;
mod ssl;
mod worker;

use super::Setting;

/// Every setting, in section order.
pub static ALL: &[&Setting] = &[
    &config_file::CONFIG,
    &config_file::WSGI_APP,
    &config_file::CHECK_CONFIG,
    &config_file::PRINT_CONFIG,
    &config_file::RELOAD,
    &config_file::RELOAD_ENGINE,
    &config_file::RELOAD_EXTRA_FILES,
    &config_file::SPEW,
    &socket::BIND,
    &socket::BACKLOG,
    &socket::REUSE_PORT,
    &worker::WORKERS,
    &worker::WORKER_CLASS,
    &worker::THREADS,
    &asgi::ASGI_LOOP,
    &asgi::ASGI_LIFESPAN,
    &asgi::WEBSOCKET_MAX_MESSAGE_SIZE,
    &worker::WORKER_CONNECTIONS,
    &worker::MAX_REQUESTS,
    &worker::MAX_REQUESTS_JITTER,
    &worker::TIMEOUT,
    &worker::GRACEFUL_TIMEOUT,
    &worker::KEEPALIVE,
    &server::CHDIR,
    &server::PYTHONPATH,
    &server::VIRTUALENV,
    &server::RAW_ENV,
    &server::SENDFILE,
    &server::HEADER_MAP,
    &server::PRELOAD_APP,
    &server::DAEMON,
    &server::PIDFILE,
    &server::WORKER_TMP_DIR,
    &server::USER,
    &server::GROUP,
    &server::UMASK,
    &server::INITGROUPS,
    &server::TMP_UPLOAD_DIR,
    &proxy::SECURE_SCHEME_HEADERS,
    &proxy::FORWARDED_ALLOW_IPS,
    &server::PASTE,
    &server::RAW_PASTE_GLOBAL_CONF,
    &proxy::PROXY_PROTOCOL,
    &proxy::PROXY_ALLOW_IPS,
    &proxy::STRIP_HEADER_SPACES,
    &proxy::PERMIT_OBSOLETE_FOLDING,
    &proxy::PERMIT_UNCONVENTIONAL_HTTP_METHOD,
    &proxy::PERMIT_UNCONVENTIONAL_HTTP_VERSION,
    &proxy::CASEFOLD_HTTP_METHOD,
    &proxy::FORWARDER_HEADERS,
    &security::LIMIT_REQUEST_LINE,
    &security::LIMIT_REQUEST_FIELDS,
    &security::LIMIT_REQUEST_FIELD_SIZE,
    &security::LIMIT_REQUEST_BODY,
    &security::HEADER_TIMEOUT,
    &security::BODY_TIMEOUT,
    &logging::ACCESSLOG,
    &logging::ACCESS_LOG_FORMAT,
    &logging::ERRORLOG,
    &logging::LOGLEVEL,
    &logging::DISABLE_REDIRECT_ACCESS_TO_SYSLOG,
    &logging::CAPTURE_OUTPUT,
    &logging::LOGGER_CLASS,
    &logging::LOGCONFIG,
    &logging::LOGCONFIG_DICT,
    &logging::LOGCONFIG_JSON,
    &logging::SYSLOG_ADDR,
    &logging::SYSLOG,
    &logging::SYSLOG_PREFIX,
    &logging::SYSLOG_FACILITY,
    &logging::ENABLE_STDIO_INHERITANCE,
    &logging::STATSD_HOST,
    &logging::DOGSTATSD_TAGS,
    &logging::STATSD_PREFIX,
    &operations::METRICS_BIND,
    &operations::READY_MIN_WORKERS,
    &operations::SHUTDOWN_DELAY,
    &operations::MAX_WORKER_MEMORY,
    &naming::PROC_NAME,
    &naming::DEFAULT_PROC_NAME,
    &ssl::KEYFILE,
    &ssl::CERTFILE,
    &ssl::SSL_VERSION,
    &ssl::CERT_REQS,
    &ssl::CA_CERTS,
    &ssl::SUPPRESS_RAGGED_EOFS,
    &ssl::DO_HANDSHAKE_ON_CONNECT,
    &ssl::CIPHERS,
    &ssl::PLAIN_BIND,
    &hooks::ON_STARTING,
    &hooks::ON_RELOAD,
    &hooks::WHEN_READY,
    &hooks::PRE_FORK,
    &hooks::POST_FORK,
    &hooks::POST_WORKER_INIT,
    &hooks::WORKER_INT,
    &hooks::WORKER_ABORT,
    &hooks::PRE_EXEC,
    &hooks::PRE_REQUEST,
    &hooks::POST_REQUEST,
    &hooks::CHILD_EXIT,
    &hooks::WORKER_EXIT,
    &hooks::NWORKERS_CHANGED,
    &hooks::ON_EXIT,
    &hooks::SSL_CONTEXT,
];
