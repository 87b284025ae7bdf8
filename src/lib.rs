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
//! startup.rs     config file → interpreter → resolve → bind → arbiter
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
pub mod pidfile;
pub mod privileges;
pub mod proctitle;
pub mod python;
pub mod startup;
pub mod systemd;
pub mod worker;
pub mod wsgi;

/// Serve with the settings typed on the command line (and in
/// `RGUNICORN_CMD_ARGS`), reading the config file they name; returns the process
/// exit status.
///
/// `env` is the process environment as it was at start-up; `main` has already
/// removed the socket-activation variables from the real environment.
pub fn run(
    cli: config::raw::RawSettings,
    env: startup::Env,
    invocation: startup::Invocation,
) -> i32 {
    match startup::prepare(cli, env, invocation) {
        Ok(startup::Prepared::Serve(arbiter)) => arbiter.run(),
        Ok(startup::Prepared::Exit(code)) => code,
        Err(e) => {
            log::critical(&e.to_string());
            e.exit_code()
        }
    }
}
