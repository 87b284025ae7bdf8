//! The setting declarations, one file per [`Section`](super::Section).
//!
//! Each `static` is the single declaration of one setting; [`ALL`] is the registry
//! in display order.

mod logging;
mod security;
mod server;
mod socket;
mod worker;

use super::Setting;

/// Every setting, in section order.
pub static ALL: &[&Setting] = &[
    &socket::BIND,
    &socket::BACKLOG,
    &socket::REUSE_PORT,
    &worker::WORKERS,
    &worker::TIMEOUT,
    &worker::GRACEFUL_TIMEOUT,
    &worker::KEEPALIVE,
    &server::CHDIR,
    &server::PYTHONPATH,
    &server::VIRTUALENV,
    &security::LIMIT_REQUEST_LINE,
    &security::LIMIT_REQUEST_FIELDS,
    &security::LIMIT_REQUEST_FIELD_SIZE,
    &logging::ACCESSLOG,
    &logging::ACCESS_LOG_FORMAT,
    &logging::ERRORLOG,
    &logging::LOGLEVEL,
];
