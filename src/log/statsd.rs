//! statsD client with Gunicorn's metric names (`statsd_host`, `statsd_prefix`,
//! `dogstatsd_tags`).
//!
//! What is sent, as Gunicorn's `gunicorn/instrument/statsd.py` does:
//! - per request, from the worker that answered it: `gunicorn.requests:1|c|@1.0`,
//!   `gunicorn.request.status.<code>:1|c|@1.0` and
//!   `gunicorn.request.duration:<ms>|ms`;
//! - from the master, once a second: `gunicorn.workers:<n>|g`;
//! - from any process, per error-log record at warning or above:
//!   `gunicorn.log.warning|error|critical:1|c|@1.0`.
//!
//! The prefix gets one trailing dot; `dogstatsd_tags` are appended to each
//! metric as `|#tags` (the DogStatsD datagram format).
//!
//! One difference: a request's three metrics travel in one datagram, one per
//! line, where Gunicorn sends three. statsd, DogStatsD and Telegraf all read
//! newline-separated metrics from a packet, and the worker's hot path makes
//! one non-blocking send(2) per request instead of three. Sends use
//! MSG_DONTWAIT on a connected socket (UDP, or a unix datagram socket); a
//! full or missing receiver loses the metric, never delays a request.
//!
//! The client is process-wide, set once at start-up and inherited by the
//! workers across fork, like the error log's sink.

use std::fmt::Write as _;
use std::net::ToSocketAddrs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

/// Gunicorn's default statsD port.
pub const DEFAULT_PORT: u16 = 8125;

/// Where statsD metrics go (`statsd_host`), parsed without I/O.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsdTarget {
    /// `HOST:PORT` (port 8125 when left out), over UDP.
    Udp {
        /// Host name or address.
        host: String,
        /// UDP port.
        port: u16,
    },
    /// `unix:PATH` (or `unix://PATH`): a unix datagram socket.
    Unix(PathBuf),
}

impl StatsdTarget {
    /// Parse a `statsd_host` value.
    ///
    /// # Errors
    /// A reason for the config error.
    pub fn parse(value: &str) -> Result<StatsdTarget, String> {
        let value = value.trim();
        if let Some(path) = value.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("empty unix socket path".into());
            }
            return Ok(StatsdTarget::Unix(PathBuf::from(path)));
        }
        let (host, port) = match value.rsplit_once(':') {
            Some((host, port)) => (
                host.trim_start_matches('[').trim_end_matches(']'),
                port.parse::<u16>()
                    .map_err(|_| format!("invalid port {port:?}"))?,
            ),
            None => (value, DEFAULT_PORT),
        };
        if host.is_empty() {
            return Err("expected HOST:PORT or unix:PATH".into());
        }
        Ok(StatsdTarget::Udp {
            host: host.to_owned(),
            port,
        })
    }
}

/// A connected statsD socket with the prefix and tags to write.
pub struct Statsd {
    sock: OwnedFd,
    prefix: String,
    tags: String,
}

static CLIENT: OnceLock<Statsd> = OnceLock::new();

/// Connect the process-wide client (once; later calls are ignored).
///
/// # Errors
/// The host does not resolve or the socket cannot be created or connected.
pub fn init(target: &StatsdTarget, prefix: &str, tags: &str) -> std::io::Result<()> {
    let client = Statsd::connect(target, prefix, tags)?;
    let _ = CLIENT.set(client);
    Ok(())
}

/// A request was answered with `status` after `duration` (worker side).
pub fn request(status: u16, duration: Duration) {
    if let Some(c) = CLIENT.get() {
        let ms = duration.as_secs_f64() * 1000.0;
        let mut packet = String::with_capacity(160);
        c.line(
            &mut packet,
            "gunicorn.request.duration",
            &format!("{ms:.3}"),
            "ms",
        );
        c.line(&mut packet, "gunicorn.requests", "1", "c|@1.0");
        let status_metric = format!("gunicorn.request.status.{status}");
        c.line(&mut packet, &status_metric, "1", "c|@1.0");
        c.send(&packet);
    }
}

/// `gunicorn.workers`, the master's worker count.
pub fn workers(n: usize) {
    if let Some(c) = CLIENT.get() {
        let mut packet = String::new();
        c.line(&mut packet, "gunicorn.workers", &n.to_string(), "g");
        c.send(&packet);
    }
}

/// `gunicorn.log.<level>` for an error-log record at `level` (warning and up).
pub fn log_record(level: super::Level) {
    let name = match level {
        super::Level::Warning => "gunicorn.log.warning",
        super::Level::Error => "gunicorn.log.error",
        super::Level::Critical => "gunicorn.log.critical",
        super::Level::Debug | super::Level::Info => return,
    };
    if let Some(c) = CLIENT.get() {
        let mut packet = String::new();
        c.line(&mut packet, name, "1", "c|@1.0");
        c.send(&packet);
    }
}

impl Statsd {
    fn connect(target: &StatsdTarget, prefix: &str, tags: &str) -> std::io::Result<Statsd> {
        let (domain, addr) = match target {
            StatsdTarget::Udp { host, port } => {
                let addr = (host.as_str(), *port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| std::io::Error::other(format!("{host} does not resolve")))?;
                (Domain::for_address(addr), SockAddr::from(addr))
            }
            StatsdTarget::Unix(path) => (Domain::UNIX, SockAddr::unix(path)?),
        };
        let sock = Socket::new(domain, Type::DGRAM.cloexec(), None)?;
        sock.set_nonblocking(true)?;
        sock.connect(&addr)?;
        Ok(Statsd {
            sock: sock.into(),
            prefix: dotted(prefix),
            tags: tags.trim().to_owned(),
        })
    }

    /// Append `prefix name:value|kind[|#tags]` as one line of `packet`.
    fn line(&self, packet: &mut String, name: &str, value: &str, kind: &str) {
        if !packet.is_empty() {
            packet.push('\n');
        }
        let _ = write!(packet, "{}{name}:{value}|{kind}", self.prefix);
        if !self.tags.is_empty() {
            let _ = write!(packet, "|#{}", self.tags);
        }
    }

    fn send(&self, packet: &str) {
        // Best effort, never blocking: a lost metric is not worth a stall.
        let _ = nix::sys::socket::send(
            self.sock.as_raw_fd(),
            packet.as_bytes(),
            nix::sys::socket::MsgFlags::MSG_DONTWAIT | nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        );
    }
}

/// The prefix with exactly one trailing dot, or empty (Gunicorn's rule).
fn dotted(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('.');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_like_gunicorns() {
        assert_eq!(
            StatsdTarget::parse("localhost:9125"),
            Ok(StatsdTarget::Udp {
                host: "localhost".into(),
                port: 9125
            })
        );
        assert_eq!(
            StatsdTarget::parse("statsd"),
            Ok(StatsdTarget::Udp {
                host: "statsd".into(),
                port: DEFAULT_PORT
            })
        );
        assert_eq!(
            StatsdTarget::parse("unix:///run/statsd.sock"),
            Ok(StatsdTarget::Unix("/run/statsd.sock".into()))
        );
        assert_eq!(
            StatsdTarget::parse("unix:/run/s"),
            Ok(StatsdTarget::Unix("/run/s".into()))
        );
        assert!(StatsdTarget::parse("host:port").is_err());
        assert!(StatsdTarget::parse(":8125").is_err());
    }

    #[test]
    fn prefixes_get_one_dot() {
        assert_eq!(dotted("app"), "app.");
        assert_eq!(dotted("app..."), "app.");
        assert_eq!(dotted(""), "");
    }

    #[test]
    fn lines_carry_prefix_and_tags() {
        let dir = std::env::temp_dir().join(format!("rg-statsd-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let c = Statsd::connect(&StatsdTarget::Unix(path.clone()), "svc", "env:prod,a:b").unwrap();
        let mut packet = String::new();
        c.line(&mut packet, "gunicorn.requests", "1", "c|@1.0");
        c.line(&mut packet, "gunicorn.workers", "2", "g");
        c.send(&packet);
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "svc.gunicorn.requests:1|c|@1.0|#env:prod,a:b\nsvc.gunicorn.workers:2|g|#env:prod,a:b"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
