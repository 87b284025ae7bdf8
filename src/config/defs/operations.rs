//! Operations settings (rgunicorn extensions): the master's metrics and health
//! listener, readiness, the shutdown delay, memory-based recycling.

use crate::config::{Arity, Kind, Process, Section, Setting, Support, parse_uint};
use crate::listen::Address;

/// `metrics_bind`: the master's metrics and health listener.
pub static METRICS_BIND: Setting = Setting {
    key: "metrics_bind",
    flags: &["--metrics-bind"],
    arity: Arity::Value { metavar: "ADDRESS" },
    kind: Kind::Str,
    section: Section::Operations,
    default: "None",
    summary: "Serve /metrics, /healthz and /readyz from the master here",
    doc: "HOST:PORT or unix:PATH (an rgunicorn extension). The master answers \
          GET /metrics (Prometheus text format, names starting rgunicorn_), \
          /healthz (200 while the master runs) and /readyz (200 while enough \
          workers serve, see ready_min_workers) on its own socket, from shared \
          memory, without asking a worker anything: a wedged worker cannot hold up \
          a scrape. A socket systemd passes with FileDescriptorName=metrics is used \
          the same way, and is never served as an HTTP listener. Off by default.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.metrics_bind = match v.trim() {
            "" | "None" => None,
            addr => match Address::parse(addr)? {
                Address::Fd(_) | Address::FdName(_) => {
                    return Err("use a socket named metrics for an inherited metrics socket".into());
                }
                a => Some(a),
            },
        };
        Ok(())
    },
};

/// `ready_min_workers`: how many serving workers /readyz needs.
pub static READY_MIN_WORKERS: Setting = Setting {
    key: "ready_min_workers",
    flags: &["--ready-min-workers"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Operations,
    default: "0",
    summary: "Workers that must serve for /readyz to answer 200; 0 means all",
    doc: "/readyz answers 200 while at least this many workers have loaded the app \
          and are not draining, and 503 otherwise: while the workers boot, while a \
          HUP's new workers boot (until they serve), during shutdown_delay and \
          while stopping. 0 (the default) means every configured worker.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.ready_min_workers = parse_uint(v)?;
        Ok(())
    },
};

/// `shutdown_delay`: serve on after TERM while /readyz says not ready.
pub static SHUTDOWN_DELAY: Setting = Setting {
    key: "shutdown_delay",
    flags: &["--shutdown-delay"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Operations,
    default: "0",
    summary: "Seconds to keep serving after TERM while /readyz says not ready",
    doc: "After SIGTERM the master first keeps its workers serving for this many \
          seconds while /readyz answers 503, so a load balancer or Kubernetes stops \
          sending new requests before the listeners close; then the graceful stop \
          (graceful_timeout) begins. STOPPING=1 is sent at once. A second TERM, or \
          INT/QUIT, stops at once. 0 (the default) stops without delay.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.shutdown_delay = parse_uint(v)?;
        Ok(())
    },
};

/// `max_worker_memory`: recycle a worker whose PSS passes this many MiB.
pub static MAX_WORKER_MEMORY: Setting = Setting {
    key: "max_worker_memory",
    flags: &["--max-worker-memory"],
    arity: Arity::Value { metavar: "MIB" },
    kind: Kind::Int,
    section: Section::Operations,
    default: "0",
    summary: "Retire a worker whose memory (PSS) passes this many MiB",
    doc: "The master reads each worker's proportional set size (Pss in \
          /proc/PID/smaps_rollup) every second; a worker above the limit is \
          retired gracefully, as with max_requests: it stops accepting, finishes \
          the requests it has, and exits while a fresh worker starts, so no \
          request is lost. The size is logged and the restart counted with reason \
          memory. PSS rather than RSS: pages a worker shares with the master and \
          its siblings (the preloaded app, the interpreter) count only in part, \
          so the limit measures what recycling the worker would give back, and \
          the sum over workers is their real footprint; RSS would count the \
          shared pages in every worker and recycle them for memory they do not \
          own. 0 (the default) turns the check off.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.max_worker_memory = parse_uint(v)?;
        Ok(())
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn metrics_bind_takes_tcp_and_unix_but_not_fds() {
        let mut c = Config::default();
        (METRICS_BIND.apply)(&mut c, "127.0.0.1:9100").unwrap();
        assert!(matches!(
            c.metrics_bind,
            Some(Address::Tcp { port: 9100, .. })
        ));
        (METRICS_BIND.apply)(&mut c, "unix:/run/m.sock").unwrap();
        assert!(matches!(c.metrics_bind, Some(Address::Unix(_))));
        assert!((METRICS_BIND.apply)(&mut c, "fd://metrics").is_err());
        (METRICS_BIND.apply)(&mut c, "").unwrap();
        assert_eq!(c.metrics_bind, None);
    }

    #[test]
    fn ready_min_workers_is_a_count() {
        let mut c = Config::default();
        (READY_MIN_WORKERS.apply)(&mut c, "2").unwrap();
        assert_eq!(c.ready_min_workers, 2);
        assert!((READY_MIN_WORKERS.apply)(&mut c, "-1").is_err());
    }

    #[test]
    fn shutdown_delay_is_seconds() {
        let mut c = Config::default();
        (SHUTDOWN_DELAY.apply)(&mut c, "5").unwrap();
        assert_eq!(c.shutdown_delay(), Some(std::time::Duration::from_secs(5)));
        (SHUTDOWN_DELAY.apply)(&mut c, "0").unwrap();
        assert_eq!(c.shutdown_delay(), None);
    }

    #[test]
    fn max_worker_memory_is_mebibytes() {
        let mut c = Config::default();
        (MAX_WORKER_MEMORY.apply)(&mut c, "512").unwrap();
        assert_eq!(c.max_worker_memory_bytes(), Some(512 << 20));
        (MAX_WORKER_MEMORY.apply)(&mut c, "0").unwrap();
        assert_eq!(c.max_worker_memory_bytes(), None);
    }
}
