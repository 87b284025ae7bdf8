//! rgunicorn: Gunicorn's pre-fork WSGI server, rebuilt in Rust as a
//! systemd-native service daemon.
//!
//! Data flows one way: config → sockets → arbiter → worker → http → wsgi → app.
//! `systemd` and `log` sit at the edges; anything may call them. `signals`,
//! `heartbeat` and `balance` are the contracts between the master and its workers: both
//! depend on them, so neither reaches into the other. `launch` is read by
//! start-up and by the arbiter's SIGHUP; `startup` builds the arbiter and
//! nothing calls back into it.
//!
//! ```text
//! main.rs        argv → settings → run → exit code
//! error.rs       start-up errors and the exit-code table
//! config/        settings declared once (defs/), argv and INI parsing,
//!                precedence (resolve), --help and man pages (docs)
//! launch.rs      what was typed + the start-up environment → Config (at start
//!                and on SIGHUP); umask, chdir, sys.path, raw_env
//! startup.rs     signals → interpreter → load → daemonize → bind → arbiter
//! listen.rs      bind addresses, or adopt inherited fds
//! pidfile.rs     the PID file, with the USR2 `.2` hand-over
//! privileges.rs  setuid/setgid/initgroups for workers; chown of their files
//! proctitle.rs   `rgunicorn: master [NAME]` process titles
//! signals.rs     the self-pipe: signal handler → one byte → `Event`, per process
//! heartbeat.rs   shared-memory liveness slots: the master reads, a worker writes
//! tally.rs       request counters and duration buckets inside those slots
//! balance.rs     each worker's open connections in shared memory: a worker
//!                leaves a new connection to a less loaded peer
//! arbiter/       the master: fork, reap, heartbeat timeouts, HUP generations,
//!                USR2 re-exec, READY/WATCHDOG/STATUS, halting on 3 and 4;
//!                the metrics listener (/metrics, /healthz, /readyz) and
//!                max_worker_memory
//! worker/        one worker: boot, epoll event loop driving each connection's
//!                phase (ASGI calls and WebSockets too), max_requests,
//!                --reload, SIGABRT stack dumps
//! proxy.rs       PROXY protocol v1/v2 headers (HAProxy's spec)
//! peers.rs       allow-lists of trusted peers (forwarded_allow_ips, proxy_allow_ips)
//! http/          bytes ↔ request heads, bodies, response heads (no pyo3)
//! asgi/          ASGI 3: the app thread's asyncio loop, scopes, receive/send,
//!                lifespan; messages to and from the worker's event loop
//! websocket.rs   RFC 6455 handshake and framing (tungstenite over buffers)
//! wsgi/          PEP 3333: environ, input, start_response, the response state
//!                machine, resumable responses
//! sockio.rs      every socket call on a client connection: non-blocking for
//!                the event loop, blocking (GIL released) where PEP 3333 waits
//! tls/           rustls: certificate/key/CA loading in the master, cipher
//!                names, one session driven over a non-blocking socket, the
//!                environ's SSL_* facts
//! wire.rs        a connection's byte stream: the socket, or TLS over it
//! python/        interpreter start-up (PyConfig), app import, config files, hooks
//! systemd/       LISTEN_FDS activation, sd_notify (abstract sockets, FDSTORE)
//! log/           error log and access log; journald native protocol;
//!                statsD and syslog
//! ```
#![warn(missing_docs)]

pub mod arbiter;
pub mod asgi;
pub mod balance;
pub mod config;
pub mod error;
pub mod heartbeat;
pub mod http;
pub mod launch;
pub mod listen;
pub mod log;
pub mod peers;
pub mod pidfile;
pub mod privileges;
pub mod proctitle;
pub mod proxy;
pub mod python;
pub mod signals;
pub mod sockio;
pub mod startup;
pub mod systemd;
pub mod tally;
pub mod tls;
pub mod websocket;
pub mod wire;
pub mod worker;
pub mod wsgi;

/// Serve with the settings typed on the command line (and in
/// `RGUNICORN_CMD_ARGS`), reading the config file they name; returns the process
/// exit status.
///
/// `env` is the process environment as it was at start-up; `main` has already
/// removed the socket-activation variables from the real environment.
pub fn run(cli: config::raw::RawSettings, env: launch::Env, invocation: launch::Invocation) -> i32 {
    match startup::prepare(cli, env, invocation) {
        Ok(startup::Prepared::Serve(arbiter)) => arbiter.run(),
        Ok(startup::Prepared::Exit(code)) => code,
        Err(e) => {
            log::critical(&e.to_string());
            e.exit_code()
        }
    }
}
