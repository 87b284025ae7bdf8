//! Listening sockets: parse bind addresses, bind them, or adopt inherited fds.
//!
//! The master owns every [`Listener`] and passes them to workers across fork.
//! Sockets we bind get `backlog` and `reuse_port`; sockets inherited from systemd
//! are used as they are (no second listen(2), so the unit's Backlog= holds).
//! Unix socket files we created are removed on exit; ones systemd owns never are.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

/// A `--bind` value, parsed but not resolved (parsing does no I/O).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// `HOST:PORT` or `[V6]:PORT`; host may be a name, resolved at bind time.
    Tcp {
        /// Host name or literal address (without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `fd://N`: an already-open listening socket.
    Fd(RawFd),
    /// `fd://NAME`: the socket systemd passed under this FileDescriptorName=.
    FdName(String),
}

impl Address {
    /// Parse Gunicorn's bind syntax. A bare `HOST` gets port 8000.
    ///
    /// # Errors
    /// A reason string for the config error.
    pub fn parse(s: &str) -> Result<Address, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("empty unix socket path".into());
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if let Some(fd) = s.strip_prefix("fd://") {
            if fd.is_empty() {
                return Err("fd:// needs a file descriptor number or a socket name".into());
            }
            return match fd.parse::<RawFd>() {
                Ok(n) if n >= 0 => Ok(Address::Fd(n)),
                Ok(_) => Err("fd:// needs a non-negative number".into()),
                Err(_) => Ok(Address::FdName(fd.to_owned())),
            };
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or("missing ']' in IPv6 address")?;
            match after.strip_prefix(':') {
                Some(port) => (host, port),
                None if after.is_empty() => (host, "8000"),
                None => return Err("expected :PORT after ']'".into()),
            }
        } else {
            match s.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, port),
                Some(_) => return Err("IPv6 addresses must be in brackets".into()),
                None => (s, "8000"),
            }
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("invalid port {port:?}"))?;
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        Ok(Address::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
            Address::Fd(fd) => write!(f, "fd://{fd}"),
            Address::FdName(name) => write!(f, "fd://{name}"),
        }
    }
}

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Name resolution failed.
    #[error("cannot resolve {addr}: {source}")]
    Resolve {
        /// The address as given.
        addr: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// socket/bind/listen failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address as given.
        addr: String,
        /// The system error.
        source: std::io::Error,
    },
    /// `fd://NAME` names no socket systemd passed.
    #[error("no socket named {name:?} was passed by systemd (LISTEN_FDNAMES)")]
    NoSuchName {
        /// The name asked for.
        name: String,
    },
    /// An inherited fd is not a listening stream socket.
    #[error("fd {fd} is not a listening stream socket")]
    NotListening {
        /// The offending descriptor.
        fd: RawFd,
    },
}

/// What kind of socket a listener is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// TCP, with its bound local address.
    Tcp(SocketAddr),
    /// Unix stream socket at this path (empty if unnamed or abstract).
    Unix(PathBuf),
}

/// One listening socket owned by the master and shared with the workers.
#[derive(Debug)]
pub struct Listener {
    /// The socket, non-blocking, close-on-exec.
    pub fd: OwnedFd,
    /// TCP or unix, with the local address.
    pub kind: Endpoint,
    /// True when we created the unix socket file and must remove it on exit.
    unlink_on_drop: bool,
    /// Passed in (systemd, fd store, a previous master, fd://) rather than bound here.
    pub inherited: bool,
    /// The FileDescriptorName= systemd passed it under, if any.
    pub name: Option<String>,
}

impl Listener {
    /// Bind `addr` with the given options.
    ///
    /// # Errors
    /// [`BindError`] naming the address.
    pub fn bind(
        addr: &Address,
        backlog: i32,
        reuse_port: bool,
    ) -> Result<Vec<Listener>, BindError> {
        let err = |source| BindError::Bind {
            addr: addr.to_string(),
            source,
        };
        match addr {
            Address::Tcp { host, port } => {
                let addrs: Vec<SocketAddr> = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|source| BindError::Resolve {
                        addr: addr.to_string(),
                        source,
                    })?
                    .collect();
                // Bind the first resolved address, like Gunicorn does.
                let sa = addrs.first().ok_or_else(|| {
                    err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no addresses",
                    ))
                })?;
                let socket =
                    Socket::new(Domain::for_address(*sa), Type::STREAM, None).map_err(err)?;
                socket.set_reuse_address(true).map_err(err)?;
                if reuse_port {
                    socket.set_reuse_port(true).map_err(err)?;
                }
                if sa.is_ipv6() {
                    socket.set_only_v6(true).map_err(err)?;
                }
                socket.bind(&(*sa).into()).map_err(err)?;
                socket.listen(backlog).map_err(err)?;
                socket.set_nonblocking(true).map_err(err)?;
                let local = socket
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_socket())
                    .unwrap_or(*sa);
                Ok(vec![Listener {
                    fd: socket.into(),
                    kind: Endpoint::Tcp(local),
                    unlink_on_drop: false,
                    inherited: false,
                    name: None,
                }])
            }
            Address::Unix(path) => {
                remove_stale_socket(path);
                let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(err)?;
                socket
                    .bind(&SockAddr::unix(path).map_err(err)?)
                    .map_err(err)?;
                socket.listen(backlog).map_err(err)?;
                socket.set_nonblocking(true).map_err(err)?;
                Ok(vec![Listener {
                    fd: socket.into(),
                    kind: Endpoint::Unix(path.clone()),
                    unlink_on_drop: true,
                    inherited: false,
                    name: None,
                }])
            }
            Address::FdName(name) => Err(BindError::NoSuchName { name: name.clone() }),
            Address::Fd(fd) => {
                // SAFETY: the user named this fd as a socket handed to us; we take
                // ownership of it for the life of the process. `adopt` checks that
                // it really is a listening socket before anything uses it.
                let owned = unsafe { OwnedFd::from_raw_fd(*fd) };
                Ok(vec![Listener::adopt(owned)?])
            }
        }
    }

    /// Take over an inherited listening socket (systemd or `fd://`) as it is.
    ///
    /// # Errors
    /// [`BindError::NotListening`] when the fd is not a listening stream socket.
    pub fn adopt(fd: OwnedFd) -> Result<Listener, BindError> {
        let raw = fd.as_raw_fd();
        let socket = Socket::from(fd);
        let listening = socket.is_listener().unwrap_or(false);
        let stream = socket.r#type().map(|t| t == Type::STREAM).unwrap_or(false);
        if !listening || !stream {
            // Don't close what we don't understand: leak it back to the raw fd.
            let _ = OwnedFd::from(socket).into_raw_fd_keep();
            return Err(BindError::NotListening { fd: raw });
        }
        let local = socket.local_addr().map_err(|source| BindError::Bind {
            addr: format!("fd://{raw}"),
            source,
        })?;
        let kind = match local.as_socket() {
            Some(sa) => Endpoint::Tcp(sa),
            None => Endpoint::Unix(
                local
                    .as_pathname()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            ),
        };
        socket.set_cloexec(true).ok();
        socket.set_nonblocking(true).ok();
        Ok(Listener {
            fd: socket.into(),
            kind,
            unlink_on_drop: false,
            inherited: true,
            name: None,
        })
    }

    /// A worker's own handle on a master socket: never unlinks the path.
    pub fn from_parts(fd: OwnedFd, kind: Endpoint) -> Listener {
        Listener {
            fd,
            kind,
            unlink_on_drop: false,
            inherited: true,
            name: None,
        }
    }

    /// True when this socket is the one `addr` names (no side effects, unlike
    /// [`Listener::serves`]).
    pub fn matches(&self, addr: &Address) -> bool {
        match (addr, &self.kind) {
            (Address::Tcp { host, port }, Endpoint::Tcp(sa)) => {
                host.parse::<std::net::IpAddr>().ok() == Some(sa.ip()) && *port == sa.port()
            }
            (Address::Unix(path), Endpoint::Unix(bound)) => path == bound,
            (Address::Fd(fd), _) => *fd == self.fd.as_raw_fd(),
            (Address::FdName(name), _) => self.name.as_deref() == Some(name.as_str()),
            _ => false,
        }
    }

    /// True when this (inherited) socket is the one `addr` names. A unix socket
    /// we were asked to bind is then ours to remove at exit.
    pub fn serves(&mut self, addr: &Address) -> bool {
        match (addr, &self.kind) {
            (Address::Tcp { host, port }, Endpoint::Tcp(sa)) => {
                host.parse::<std::net::IpAddr>().ok() == Some(sa.ip()) && *port == sa.port()
            }
            (Address::Unix(path), Endpoint::Unix(bound)) if path == bound => {
                self.unlink_on_drop = true;
                true
            }
            (Address::Fd(fd), _) => *fd == self.fd.as_raw_fd(),
            (Address::FdName(name), _) => self.name.as_deref() == Some(name.as_str()),
            _ => false,
        }
    }

    /// Keep the socket file at exit: another master (after USR2) serves it now.
    pub fn keep_path(&mut self) {
        self.unlink_on_drop = false;
    }

    /// Human form for logs: `http://127.0.0.1:8000` or `unix:/run/app.sock`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Endpoint::Tcp(sa) => format!("http://{sa}"),
            Endpoint::Unix(p) => format!("unix:{}", p.display()),
        }
    }

    /// Close the socket without unlinking its path (used by workers, which must
    /// never remove the master's socket files).
    pub fn forget_path(&mut self) {
        self.unlink_on_drop = false;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let (true, Endpoint::Unix(path)) = (self.unlink_on_drop, &self.kind) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Remove a socket file left by a previous run; refuse to touch anything else.
fn remove_stale_socket(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_socket()
    {
        let _ = std::fs::remove_file(path);
    }
}

/// Leak an fd back to its number without closing it.
trait IntoRawFdKeep {
    fn into_raw_fd_keep(self) -> RawFd;
}

impl IntoRawFdKeep for OwnedFd {
    fn into_raw_fd_keep(self) -> RawFd {
        std::os::fd::IntoRawFd::into_raw_fd(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gunicorn_bind_forms() {
        assert_eq!(
            Address::parse("127.0.0.1:8000").unwrap(),
            Address::Tcp {
                host: "127.0.0.1".into(),
                port: 8000
            }
        );
        assert_eq!(
            Address::parse("[::1]:80").unwrap(),
            Address::Tcp {
                host: "::1".into(),
                port: 80
            }
        );
        assert_eq!(
            Address::parse("localhost").unwrap(),
            Address::Tcp {
                host: "localhost".into(),
                port: 8000
            }
        );
        assert_eq!(Address::parse("fd://5").unwrap(), Address::Fd(5));
        assert_eq!(
            Address::parse("unix:/run/x.sock").unwrap(),
            Address::Unix("/run/x.sock".into())
        );
        assert!(Address::parse("::1:80").is_err());
        assert!(Address::parse("host:99999").is_err());
        assert_eq!(
            Address::parse("fd://web").unwrap(),
            Address::FdName("web".into())
        );
        assert!(Address::parse("fd://").is_err());
    }

    #[test]
    fn binds_port_zero_and_reports_the_real_port() {
        let addr = Address::parse("127.0.0.1:0").unwrap();
        let l = Listener::bind(&addr, 16, false).unwrap().remove(0);
        match l.kind {
            Endpoint::Tcp(sa) => assert_ne!(sa.port(), 0),
            Endpoint::Unix(_) => panic!("tcp expected"),
        }
    }

    #[test]
    fn unix_socket_file_is_removed_on_drop() {
        let path =
            std::env::temp_dir().join(format!("rgunicorn-listen-{}.sock", std::process::id()));
        let l = Listener::bind(&Address::Unix(path.clone()), 16, false).unwrap();
        assert!(path.exists());
        drop(l);
        assert!(!path.exists());
    }

    #[test]
    fn adopt_refuses_a_non_listening_socket() {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let raw = s.as_raw_fd();
        let err = Listener::adopt(s.into()).unwrap_err();
        assert!(matches!(err, BindError::NotListening { fd } if fd == raw));
        // SAFETY: adopt leaked the fd back to us; close it once.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
    }
}
