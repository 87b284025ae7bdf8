//! Worker process settings.

use crate::config::{Arity, Kind, Process, Section, Setting, Support, parse_positive, parse_uint};

/// `workers`: number of worker processes.
pub static WORKERS: Setting = Setting {
    key: "workers",
    flags: &["-w", "--workers"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Worker,
    default: "1",
    summary: "The number of worker processes for handling requests",
    doc: "A positive integer, generally 2-4 per core. WEB_CONCURRENCY is used when \
          the setting is not given.",
    env_fallback: Some("WEB_CONCURRENCY"),
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        let n: usize = parse_uint(v)?;
        if n < 1 {
            return Err("must be at least 1".into());
        }
        c.workers = n;
        Ok(())
    },
};

/// `timeout`: silent worker timeout.
pub static TIMEOUT: Setting = Setting {
    key: "timeout",
    flags: &["-t", "--timeout"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Worker,
    default: "30",
    summary: "Workers silent for more than this many seconds are killed",
    doc: "A worker busy in one request for longer than this is killed and replaced. \
          0 disables the timeout.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.timeout = parse_uint(v)?;
        Ok(())
    },
};

/// `graceful_timeout`: drain time on TERM.
pub static GRACEFUL_TIMEOUT: Setting = Setting {
    key: "graceful_timeout",
    flags: &["--graceful-timeout"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Worker,
    default: "30",
    summary: "Timeout for graceful workers restart",
    doc: "After a TERM, workers stop accepting and finish the requests in flight; \
          workers still busy after this many seconds are killed.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.graceful_timeout = parse_uint(v)?;
        Ok(())
    },
};

/// `keepalive`: idle keep-alive connection lifetime.
pub static KEEPALIVE: Setting = Setting {
    key: "keepalive",
    flags: &["--keep-alive"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Worker,
    default: "2",
    summary: "Seconds to wait for requests on a Keep-Alive connection",
    doc: "An idle keep-alive connection is closed after this many seconds. 0 turns \
          keep-alive off: every response closes its connection.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.keepalive = parse_uint(v)?;
        Ok(())
    },
};

/// `worker_class`: the worker type.
pub static WORKER_CLASS: Setting = Setting {
    key: "worker_class",
    flags: &["-k", "--worker-class"],
    arity: Arity::Value { metavar: "STRING" },
    kind: Kind::Str,
    section: Section::Worker,
    default: "sync",
    summary: "The type of workers to use",
    doc: "sync, gthread or asgi. sync and gthread run rgunicorn's event-loop worker, \
          which owns all socket I/O in Rust; the app sees one request at a time per \
          Python thread (see threads). asgi (Gunicorn 24's ASGI worker) serves an \
          ASGI 3 app (FastAPI, Starlette, Django's ASGI handler, Quart): the same \
          Rust loop owns the sockets, and the app's coroutines run on one asyncio \
          loop per worker on its own Python thread (see asgi_loop, asgi_lifespan). \
          uvicorn.workers.UvicornWorker and uvicorn_worker.UvicornWorker are taken \
          as asgi, with a log line saying so. gevent, eventlet and tornado are \
          refused: their monkey patching has no place in a Rust event loop.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        let name = v.trim();
        let (threaded, asgi) = match name {
            "sync" | "gunicorn.workers.sync.SyncWorker" => (false, false),
            "gthread" | "gunicorn.workers.gthread.ThreadWorker" => (true, false),
            "asgi" | "gunicorn.workers.gasgi.ASGIWorker" => (false, true),
            "uvicorn.workers.UvicornWorker" | "uvicorn_worker.UvicornWorker" => {
                c.worker_class_alias = Some(name.to_owned());
                (false, true)
            }
            "gevent"
            | "eventlet"
            | "tornado"
            | "gunicorn.workers.ggevent.GeventWorker"
            | "gunicorn.workers.geventlet.EventletWorker"
            | "gunicorn.workers.gtornado.TornadoWorker" => {
                return Err(
                    "greenlet and tornado workers are not supported; use sync, gthread or asgi"
                        .into(),
                );
            }
            other => {
                return Err(format!(
                    "unknown worker class {other:?}; use sync, gthread or asgi"
                ));
            }
        };
        if !name.starts_with("uvicorn") {
            c.worker_class_alias = None;
        }
        c.threaded_class = threaded;
        c.asgi = asgi;
        Ok(())
    },
};

/// `threads`: Python threads per worker.
pub static THREADS: Setting = Setting {
    key: "threads",
    flags: &["--threads"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Worker,
    default: "1",
    summary: "The number of worker threads for handling requests",
    doc: "Python threads per worker that run requests, as Gunicorn's gthread; with \
          -k sync and more than 1 the worker runs as gthread, as in Gunicorn. The \
          event loop keeps all socket I/O on its own, so threads help apps that wait \
          (databases, HTTP APIs, time.sleep) and not CPU-bound Python, which the GIL \
          runs one thread at a time. 1 runs requests on the loop's own thread.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.threads = parse_positive(v)?;
        Ok(())
    },
};

/// `worker_connections`: connection cap per worker.
pub static WORKER_CONNECTIONS: Setting = Setting {
    key: "worker_connections",
    flags: &["--worker-connections"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Worker,
    default: "1000",
    summary: "The maximum number of simultaneous clients",
    doc: "Per worker. When they are all taken, a new client takes the place of the \
          connection that has waited longest without sending a whole request head; \
          when every connection is busy, new clients wait in the kernel backlog.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        let n: usize = parse_uint(v)?;
        if n < 1 {
            return Err("must be at least 1".into());
        }
        c.worker_connections = n;
        Ok(())
    },
};

/// `max_requests`: the maximum number of requests a worker will process before restarting.
pub static MAX_REQUESTS: Setting = Setting {
    key: "max_requests",
    flags: &["--max-requests"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Worker,
    default: "0",
    summary: "The maximum number of requests a worker will process before restarting",
    doc: "After this many requests a worker stops accepting, answers what it has in hand (the last response says Connection: close), closes idle keep-alive connections and exits; the master starts a fresh one. 0 disables. A simple way to limit the damage of memory leaks.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.max_requests = parse_uint(v)?;
        Ok(())
    },
};

/// `max_requests_jitter`: the maximum jitter to add to the max_requests setting.
pub static MAX_REQUESTS_JITTER: Setting = Setting {
    key: "max_requests_jitter",
    flags: &["--max-requests-jitter"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Worker,
    default: "0",
    summary: "The maximum jitter to add to the max_requests setting",
    doc: "Each worker restarts after max_requests + a random number in 0..=jitter requests, so workers do not all restart at once.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.max_requests_jitter = parse_uint(v)?;
        Ok(())
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn workers_must_be_positive_integer() {
        let mut c = Config::default();
        assert!((WORKERS.apply)(&mut c, "0").is_err());
        assert!((WORKERS.apply)(&mut c, "-2").is_err());
        assert!((WORKERS.apply)(&mut c, "four").is_err());
        (WORKERS.apply)(&mut c, "4").unwrap();
        assert_eq!(c.workers, 4);
    }

    #[test]
    fn timeouts_parse_seconds() {
        let mut c = Config::default();
        (TIMEOUT.apply)(&mut c, "0").unwrap();
        (GRACEFUL_TIMEOUT.apply)(&mut c, "5").unwrap();
        (KEEPALIVE.apply)(&mut c, "10").unwrap();
        assert_eq!((c.timeout, c.graceful_timeout, c.keepalive), (0, 5, 10));
    }
}
