//! A client connection's byte stream: the socket itself, or a TLS session
//! over it. The event loop and the WSGI layer read and write requests through
//! a [`Wire`] and never ask which one it is, except where TLS changes what
//! can be done (no sendfile(2) through TLS, close_notify before closing).
//!
//! The event loop owns a connection's wire and lends it to the request the
//! app runs ([`Wire::lend`]); while it is lent, the loop's copy is
//! [`Wire::Lent`] and refuses I/O, so no plaintext can slip onto a TLS
//! connection behind its session's back.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use crate::sockio::{self, Progress};
use crate::tls::{TlsInfo, TlsStream};

/// A connection's byte stream. See the module doc.
pub enum Wire {
    /// Plain TCP or unix socket.
    Plain(RawFd),
    /// TLS over the socket.
    Tls(Box<TlsStream>),
    /// Lent to a request; I/O fails until it comes back.
    Lent(RawFd),
}

fn lent() -> io::Error {
    io::Error::other("the connection is lent to a request")
}

impl Wire {
    /// The socket.
    pub fn fd(&self) -> RawFd {
        match self {
            Wire::Plain(fd) | Wire::Lent(fd) => *fd,
            Wire::Tls(t) => t.fd(),
        }
    }

    /// Hand the stream to a request; this copy refuses I/O until it is put back.
    pub fn lend(&mut self) -> Wire {
        let fd = self.fd();
        match self {
            Wire::Plain(fd) => Wire::Plain(*fd),
            _ => std::mem::replace(self, Wire::Lent(fd)),
        }
    }

    /// TLS is spoken on this connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, Wire::Tls(_))
    }

    /// A TLS handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        match self {
            Wire::Tls(t) => t.is_handshaking(),
            _ => false,
        }
    }

    /// What the TLS handshake settled, once it is complete.
    pub fn tls_info(&mut self) -> Option<Arc<TlsInfo>> {
        match self {
            Wire::Tls(t) => t.info(),
            _ => None,
        }
    }

    /// Output taken earlier still waits below the caller's buffer (TLS records).
    pub fn has_pending(&self) -> bool {
        match self {
            Wire::Tls(t) => t.has_pending(),
            _ => false,
        }
    }

    /// Read once into `buf`, growing it by up to `max` bytes. `Ok(Some(0))`
    /// is EOF; `Ok(None)` means nothing is there now.
    ///
    /// # Errors
    /// The socket or the TLS session failed.
    pub fn read_some(&mut self, buf: &mut Vec<u8>, max: usize) -> Progress<usize> {
        match self {
            Wire::Plain(fd) => sockio::read_some(*fd, buf, max),
            Wire::Tls(t) => t.read_some(buf, max),
            Wire::Lent(_) => Err(lent()),
        }
    }

    /// [`Wire::read_some`], waiting up to `timeout` (blocks: release the GIL).
    ///
    /// # Errors
    /// As [`Wire::read_some`], plus `TimedOut`.
    pub fn read_blocking(
        &mut self,
        buf: &mut Vec<u8>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        match self {
            Wire::Plain(fd) => sockio::read_blocking(*fd, buf, max, timeout),
            Wire::Tls(t) => t.read_blocking(buf, max, timeout),
            Wire::Lent(_) => Err(lent()),
        }
    }

    /// Send as much of `data` as the socket takes now; returns how much was
    /// taken. With TLS, check [`Wire::has_pending`] before calling it written.
    ///
    /// # Errors
    /// The socket failed.
    pub fn send_available(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(fd) => sockio::send_available(*fd, data),
            Wire::Tls(t) => t.send_available(data),
            Wire::Lent(_) => Err(lent()),
        }
    }

    /// Send everything taken earlier that still waits; true when nothing does.
    ///
    /// # Errors
    /// The socket failed.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        match self {
            Wire::Tls(t) => t.write_pending(),
            _ => Ok(true),
        }
    }

    /// Send all of `data`, waiting up to `timeout` whenever the socket is
    /// full (blocks: release the GIL).
    ///
    /// # Errors
    /// The socket failed, or `TimedOut`.
    pub fn send_blocking(&mut self, data: &[u8], timeout: Duration) -> io::Result<()> {
        match self {
            Wire::Plain(fd) => sockio::send_blocking(*fd, data, timeout),
            Wire::Tls(t) => t.send_blocking(data, timeout),
            Wire::Lent(_) => Err(lent()),
        }
    }

    /// Before our FIN: a TLS session says close_notify (if the socket takes it).
    pub fn close_notify(&mut self) {
        if let Wire::Tls(t) = self {
            t.close_notify();
        }
    }

    /// Stop speaking TLS on this connection (to answer a plain-HTTP client).
    pub fn downgrade(&mut self) {
        *self = Wire::Plain(self.fd());
    }
}
