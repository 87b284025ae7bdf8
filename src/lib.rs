//! rgunicorn: Gunicorn's pre-fork WSGI server, rebuilt in Rust as a
//! systemd-native service daemon.
//!
//! Data flows one way: config → sockets → arbiter → worker → http → wsgi → app.
//! `systemd` and `log` sit at the edges; anything may call them.
//!
//! ```text
//! main.rs        argv → settings → run → exit code
//! error.rs       start-up errors and the exit-code table
//! config/        settings declared once (defs/), argv and INI parsing,
//!                precedence (resolve), --help and man pages (docs)
//! startup.rs     config file → interpreter → resolve → daemonize → bind → arbiter
//! listen.rs      bind addresses, or adopt inherited fds
//! pidfile.rs     the PID file, with the USR2 `.2` hand-over
//! privileges.rs  setuid/setgid/initgroups for workers; chown of their files
//! proctitle.rs   `rgunicorn: master [NAME]` process titles
//! arbiter/       the master: self-pipe signals, fork, reap, heartbeats,
//!                HUP generations, USR2 re-exec, READY/WATCHDOG/STATUS
//! worker/        one worker: app load, epoll event loop owning all socket I/O,
//!                max_requests, --reload, SIGABRT stack dumps
//! http/          bytes ↔ request heads, bodies, response heads (no pyo3)
//! wsgi/          PEP 3333: environ, input, start_response, resumable responses
//! python/        interpreter start-up (PyConfig), app import, config files, hooks
//! systemd/       LISTEN_FDS activation, sd_notify (abstract sockets, FDSTORE)
//! log/           error log and access log; journald native protocol
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
pub mod sockio;
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
