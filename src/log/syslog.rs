//! syslog, as Gunicorn's `--log-syslog` sends it (`syslog`, `syslog_addr`,
//! `syslog_prefix`, `syslog_facility`, `disable_redirect_access_to_syslog`).
//!
//! Records are what Python's `logging.handlers.SysLogHandler` writes for
//! Gunicorn: `<PRI>TAG: [PID] MESSAGE` and a NUL byte, where PRI is facility ×
//! 8 + severity (RFC 3164's encoding; like Python, no timestamp or host name —
//! the receiving daemon adds them), and TAG is `gunicorn.PREFIX.error` for the
//! error log or `gunicorn.PREFIX.access` for access lines, PREFIX being
//! `syslog_prefix` or else the process name with `:` turned into `.`.
//!
//! Addresses: `udp://HOST:PORT` (514 when left out), `tcp://HOST:PORT`,
//! `unix://PATH#dgram` or `#stream` (without a type, a datagram socket is tried
//! first, then a stream, as Python does). The socket is connected once at
//! start-up and shared by the workers across fork. Sends never block: when
//! the receiver is slow or gone, the record is lost from syslog (it is still
//! in the error log).

use std::fmt::Write as _;
use std::net::ToSocketAddrs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::OnceLock;

use socket2::{Domain, SockAddr, Socket, Type};

use super::Level;

/// The default syslog port.
pub const DEFAULT_PORT: u16 = 514;

/// Whether a unix syslog socket is a datagram or a stream socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnixType {
    /// `#dgram`.
    Dgram,
    /// `#stream`.
    Stream,
}

/// A `syslog_addr`, parsed without I/O.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyslogTarget {
    /// `udp://HOST:PORT`.
    Udp(String, u16),
    /// `tcp://HOST:PORT`.
    Tcp(String, u16),
    /// `unix://PATH[#dgram|#stream]`; no type tries datagram, then stream.
    Unix(PathBuf, Option<UnixType>),
}

impl SyslogTarget {
    /// Parse Gunicorn's `syslog_addr` syntax.
    ///
    /// # Errors
    /// A reason for the config error.
    pub fn parse(value: &str) -> Result<SyslogTarget, String> {
        let value = value.trim();
        if let Some(rest) = value.strip_prefix("unix://") {
            let (path, kind) = match rest.rsplit_once('#') {
                Some((p, "dgram")) => (p, Some(UnixType::Dgram)),
                Some((p, "stream")) => (p, Some(UnixType::Stream)),
                Some((_, other)) => return Err(format!("unknown unix socket type {other:?}")),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err("empty unix socket path".into());
            }
            return Ok(SyslogTarget::Unix(PathBuf::from(path), kind));
        }
        let (tcp, rest) = if let Some(r) = value.strip_prefix("tcp://") {
            (true, r)
        } else if let Some(r) = value.strip_prefix("udp://") {
            (false, r)
        } else {
            return Err("expected udp://HOST:PORT, tcp://HOST:PORT or unix://PATH".into());
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>()
                    .map_err(|_| format!("invalid port {p:?}"))?,
            ),
            None => (rest, DEFAULT_PORT),
        };
        if host.is_empty() {
            return Err("empty host".into());
        }
        let host = host.to_owned();
        Ok(if tcp {
            SyslogTarget::Tcp(host, port)
        } else {
            SyslogTarget::Udp(host, port)
        })
    }
}

/// The number of a syslog facility name (`syslog_facility`), as Python's
/// SysLogHandler knows them.
pub fn facility(name: &str) -> Option<u8> {
    let n = match name.trim().to_ascii_lowercase().as_str() {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" | "security" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        other => {
            let n: u8 = other.strip_prefix("local")?.parse().ok()?;
            return (n <= 7).then_some(16 + n);
        }
    };
    Some(n)
}

/// The connected socket and what every record starts with.
struct Syslog {
    sock: OwnedFd,
    facility: u8,
    /// `gunicorn.PREFIX`.
    tag: String,
    /// Access lines go to syslog too.
    access: bool,
}

static CLIENT: OnceLock<Syslog> = OnceLock::new();

/// What [`init`] needs.
pub struct Setup<'a> {
    /// `syslog_addr`.
    pub target: &'a SyslogTarget,
    /// `syslog_facility`, as a number.
    pub facility: u8,
    /// `syslog_prefix`, or the process name with `:` as `.`.
    pub prefix: &'a str,
    /// Send access lines too (not `disable_redirect_access_to_syslog`).
    pub access: bool,
}

/// Connect the process-wide syslog client (once; later calls are ignored).
///
/// # Errors
/// The address does not resolve, or the socket cannot be created or connected.
pub fn init(setup: &Setup<'_>) -> std::io::Result<()> {
    let sock = connect(setup.target)?;
    let _ = CLIENT.set(Syslog {
        sock,
        facility: setup.facility,
        tag: format!("gunicorn.{}", setup.prefix),
        access: setup.access,
    });
    Ok(())
}

/// True when access lines are to be sent (so a worker renders them even
/// without an `accesslog`).
pub fn wants_access() -> bool {
    CLIENT.get().is_some_and(|c| c.access)
}

/// An error-log record.
pub fn error_record(level: Level, msg: &str) {
    if let Some(c) = CLIENT.get() {
        c.send(level.syslog_priority(), "error", msg);
    }
}

/// An access-log line (at info).
pub fn access_record(line: &str) {
    if let Some(c) = CLIENT.get().filter(|c| c.access) {
        c.send(Level::Info.syslog_priority(), "access", line);
    }
}

impl Syslog {
    fn send(&self, severity: u8, log: &str, msg: &str) {
        let mut record = String::with_capacity(msg.len() + 48);
        let pri = u16::from(self.facility) * 8 + u16::from(severity);
        let _ = write!(
            record,
            "<{pri}>{}.{log}: [{}] {msg}\0",
            self.tag,
            std::process::id()
        );
        let _ = nix::sys::socket::send(
            self.sock.as_raw_fd(),
            record.as_bytes(),
            nix::sys::socket::MsgFlags::MSG_DONTWAIT | nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        );
    }
}

fn connect(target: &SyslogTarget) -> std::io::Result<OwnedFd> {
    let inet = |host: &str, port: u16, ty: Type| -> std::io::Result<OwnedFd> {
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("{host} does not resolve")))?;
        let sock = Socket::new(Domain::for_address(addr), ty.cloexec(), None)?;
        sock.connect(&SockAddr::from(addr))?;
        sock.set_nonblocking(true)?;
        Ok(sock.into())
    };
    match target {
        SyslogTarget::Udp(host, port) => inet(host, *port, Type::DGRAM),
        SyslogTarget::Tcp(host, port) => inet(host, *port, Type::STREAM),
        SyslogTarget::Unix(path, kind) => {
            let addr = SockAddr::unix(path)?;
            let try_type = |ty: Type| -> std::io::Result<OwnedFd> {
                let sock = Socket::new(Domain::UNIX, ty.cloexec(), None)?;
                sock.connect(&addr)?;
                sock.set_nonblocking(true)?;
                Ok(sock.into())
            };
            match kind {
                Some(UnixType::Dgram) => try_type(Type::DGRAM),
                Some(UnixType::Stream) => try_type(Type::STREAM),
                None => try_type(Type::DGRAM).or_else(|_| try_type(Type::STREAM)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_gunicorns() {
        assert_eq!(
            SyslogTarget::parse("udp://localhost:514"),
            Ok(SyslogTarget::Udp("localhost".into(), 514))
        );
        assert_eq!(
            SyslogTarget::parse("tcp://10.0.0.1"),
            Ok(SyslogTarget::Tcp("10.0.0.1".into(), 514))
        );
        assert_eq!(
            SyslogTarget::parse("unix:///dev/log#dgram"),
            Ok(SyslogTarget::Unix("/dev/log".into(), Some(UnixType::Dgram)))
        );
        assert_eq!(
            SyslogTarget::parse("unix:///dev/log"),
            Ok(SyslogTarget::Unix("/dev/log".into(), None))
        );
        assert!(SyslogTarget::parse("unix:///dev/log#seq").is_err());
        assert!(SyslogTarget::parse("localhost:514").is_err());
    }

    #[test]
    fn facilities_have_their_numbers() {
        assert_eq!(facility("user"), Some(1));
        assert_eq!(facility("DAEMON"), Some(3));
        assert_eq!(facility("local7"), Some(23));
        assert_eq!(facility("local8"), None);
        assert_eq!(facility("nope"), None);
    }

    #[test]
    fn records_look_like_pythons_syslog_handler() {
        let dir = std::env::temp_dir().join(format!("rg-syslog-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let c = Syslog {
            sock: connect(&SyslogTarget::Unix(path, None)).unwrap(),
            facility: 3,
            tag: "gunicorn.app".into(),
            access: true,
        };
        c.send(Level::Warning.syslog_priority(), "error", "disk low");
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).unwrap();
        let expected = format!(
            "<28>gunicorn.app.error: [{}] disk low\0",
            std::process::id()
        );
        assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), expected);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
