//! Server hooks: callables defined in a Python config file.
//!
//! Each hook is declared here with its arity (checked when the config file is
//! read) and the process it runs in; `python::hooks::Hooks` has one typed method
//! per hook for the call sites. `support` says whether the lifecycle event that
//! fires the hook exists yet; defining a hook whose event does not exist yet is
//! refused rather than silently never called.

use crate::config::{Arity, Kind, Process, Section, Setting, Support};

macro_rules! hook {
    ($name:ident, $key:literal, $arity:literal, $process:expr, $support:expr, $summary:literal, $doc:literal) => {
        #[doc = concat!("`", $key, "` hook: ", $summary, ".")]
        pub static $name: Setting = Setting {
            key: $key,
            flags: &[],
            arity: Arity::Value {
                metavar: "CALLABLE",
            },
            kind: Kind::Hook($arity),
            section: Section::Hooks,
            default: "None",
            summary: $summary,
            doc: $doc,
            env_fallback: None,
            process: $process,
            support: $support,
            apply: |_, _| Ok(()),
        };
    };
}

hook!(
    ON_STARTING,
    "on_starting",
    1,
    Process::Master,
    Support::Full,
    "Called just before the master process is initialized",
    "on_starting(server). Runs in the master, after the sockets are bound and before any worker is forked."
);
hook!(
    ON_RELOAD,
    "on_reload",
    1,
    Process::Master,
    Support::Full,
    "Called to recycle workers during a reload via SIGHUP",
    "on_reload(server). Runs in the master when SIGHUP arrives."
);
hook!(
    WHEN_READY,
    "when_ready",
    1,
    Process::Master,
    Support::Full,
    "Called just after the server is started",
    "when_ready(server). Runs in the master once every worker has loaded the app, right before READY=1 is sent to systemd."
);
hook!(
    PRE_FORK,
    "pre_fork",
    2,
    Process::Master,
    Support::Full,
    "Called just before a worker is forked",
    "pre_fork(server, worker). Runs in the master; worker.pid is not known yet (None)."
);
hook!(
    POST_FORK,
    "post_fork",
    2,
    Process::Worker,
    Support::Full,
    "Called just after a worker has been forked",
    "post_fork(server, worker). Runs in the new worker, before the application is loaded."
);
hook!(
    POST_WORKER_INIT,
    "post_worker_init",
    1,
    Process::Worker,
    Support::Full,
    "Called just after a worker has initialized the application",
    "post_worker_init(worker). Runs in the worker after the application was loaded."
);
hook!(
    WORKER_INT,
    "worker_int",
    1,
    Process::Worker,
    Support::Full,
    "Called just after a worker exited on SIGINT or SIGQUIT",
    "worker_int(worker). Runs in the worker when it receives SIGINT or SIGQUIT, before it exits."
);
hook!(
    WORKER_ABORT,
    "worker_abort",
    1,
    Process::Worker,
    Support::Full,
    "Called when a worker received the SIGABRT signal",
    "worker_abort(worker). Runs in the worker when the master aborts it after a timeout."
);
hook!(
    PRE_EXEC,
    "pre_exec",
    1,
    Process::Master,
    Support::Full,
    "Called just before a new master process is forked",
    "pre_exec(server). Runs in the master on SIGUSR2, before the new binary is executed."
);
hook!(
    PRE_REQUEST,
    "pre_request",
    2,
    Process::Worker,
    Support::Full,
    "Called just before a worker processes the request",
    "pre_request(worker, req). Runs in the worker; req has method, path, query, uri, version and headers (a list of (NAME, value) pairs)."
);
hook!(
    POST_REQUEST,
    "post_request",
    4,
    Process::Worker,
    Support::Full,
    "Called after a worker processes the request",
    "post_request(worker, req, environ, resp). Runs in the worker after the response was produced; resp has status, status_code, headers and sent. Functions taking 2 or 3 arguments are accepted, as in Gunicorn."
);
hook!(
    CHILD_EXIT,
    "child_exit",
    2,
    Process::Master,
    Support::Full,
    "Called just after a worker has been exited, in the master process",
    "child_exit(server, worker). Runs in the master after a worker was reaped."
);
hook!(
    WORKER_EXIT,
    "worker_exit",
    2,
    Process::Worker,
    Support::Full,
    "Called just after a worker has been exited, in the worker process",
    "worker_exit(server, worker). Runs in the worker as it exits after a stop."
);
hook!(
    NWORKERS_CHANGED,
    "nworkers_changed",
    3,
    Process::Master,
    Support::Full,
    "Called just after num_workers has been changed",
    "nworkers_changed(server, new_value, old_value). Runs in the master on SIGTTIN/SIGTTOU."
);
hook!(
    ON_EXIT,
    "on_exit",
    1,
    Process::Master,
    Support::Full,
    "Called just before exiting Gunicorn",
    "on_exit(server). Runs in the master as it exits."
);
hook!(
    SSL_CONTEXT,
    "ssl_context",
    2,
    Process::Worker,
    Support::Refused,
    "Called when SSLContext is needed",
    "ssl_context(config, default_ssl_context_factory). Refused: it hands the app a Python ssl.SSLContext, and rgunicorn serves TLS with rustls, which that object cannot configure. Defining it stops start-up; use certfile, keyfile, ca_certs, cert_reqs and ciphers instead."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_hooks_have_gunicorn_arity() {
        assert_eq!(PRE_REQUEST.kind, Kind::Hook(2));
        assert_eq!(POST_REQUEST.kind, Kind::Hook(4));
        assert_eq!(NWORKERS_CHANGED.kind, Kind::Hook(3));
    }
}
