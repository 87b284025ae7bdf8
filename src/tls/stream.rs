//! One TLS session driven over a non-blocking socket: `read_tls` /
//! `process_new_packets` / `write_tls` turned into the calls the event loop
//! and the WSGI layer already make on plain sockets (read what is there, send
//! what the socket takes, and their blocking forms for PEP 3333's waits).
//!
//! The handshake needs no call of its own: it advances whenever bytes arrive
//! ([`TlsStream::read_some`]) and its replies go out with the next write, so a
//! client stalled mid-handshake costs its socket and nothing else. Before the
//! first TLS record, one byte is peeked: a client speaking plain HTTP to a TLS
//! port is told apart ([`PlainHttp`]) so the loop can answer it with a 400 in
//! plain text instead of a TLS alert it cannot read.
//!
//! Every socket call goes through `crate::sockio`.

use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConnection;

use super::peer::TlsInfo;
use crate::sockio::{self, Progress};

/// Plaintext handed to rustls per call: four full records.
const WRITE_CHUNK: usize = 64 * 1024;

/// The first byte of a TLS connection is a handshake record (RFC 8446 §5.1).
const HANDSHAKE_RECORD: u8 = 0x16;

/// The client sent something that is not TLS (plain HTTP, in practice).
#[derive(Debug, thiserror::Error)]
#[error("the client does not speak TLS")]
pub struct PlainHttp;

/// True when `e` is [`PlainHttp`].
pub fn is_plain_http(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<PlainHttp>())
}

/// A server session over one client socket.
pub struct TlsStream {
    fd: RawFd,
    session: ServerConnection,
    /// No byte has been read yet: sniff for plain HTTP first.
    untouched: bool,
    /// `suppress_ragged_eofs`.
    ragged_eofs_are_eofs: bool,
    /// What the handshake settled, once it has.
    info: Option<Arc<TlsInfo>>,
    /// Decrypted bytes rustls holds for us (as its last `IoState` said).
    plaintext: usize,
    /// The client sent close_notify.
    closed: bool,
    /// The socket reported EOF.
    eof: bool,
}

/// `io::Read` over the socket for `read_tls`.
struct SocketReader(RawFd);

impl Read for SocketReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sockio::read_into(self.0, buf)?.ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }
}

/// `io::Write` over the socket for `write_tls`.
struct SocketWriter(RawFd);

impl Write for SocketWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sockio::send_some(self.0, buf)?.ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsStream {
    /// A session over `fd`, whose handshake has not started.
    pub fn new(fd: RawFd, session: ServerConnection, ragged_eofs_are_eofs: bool) -> TlsStream {
        TlsStream {
            fd,
            session,
            untouched: true,
            ragged_eofs_are_eofs,
            info: None,
            plaintext: 0,
            closed: false,
            eof: false,
        }
    }

    /// The socket under the session.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The handshake has not completed yet.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// What the handshake settled; None until it is complete.
    pub fn info(&mut self) -> Option<Arc<TlsInfo>> {
        if self.info.is_none() && !self.session.is_handshaking() {
            self.info = Some(Arc::new(TlsInfo::of(&self.session)));
        }
        self.info.clone()
    }

    /// TLS records wait to be written.
    pub fn has_pending(&self) -> bool {
        self.session.wants_write()
    }

    /// Decrypt what has arrived into `buf` (up to `max` bytes). `Ok(Some(0))`
    /// is the end of the stream; `Ok(None)` that nothing more is there now
    /// (the socket said WouldBlock), which may be mid-handshake.
    ///
    /// # Errors
    /// The socket failed, the client broke the protocol (its alert is sent
    /// when the socket takes it), a ragged EOF without `suppress_ragged_eofs`,
    /// or [`PlainHttp`].
    pub fn read_some(&mut self, buf: &mut Vec<u8>, max: usize) -> Progress<usize> {
        loop {
            if self.plaintext > 0 {
                // Sized to what is there: no zero-filling of a whole read buffer.
                let start = buf.len();
                buf.resize(start + self.plaintext.min(max), 0);
                let n = self.session.reader().read(&mut buf[start..])?;
                buf.truncate(start + n);
                self.plaintext -= n;
                return Ok(Some(n));
            }
            if self.closed {
                return Ok(Some(0));
            }
            if self.eof {
                return match self.ragged_eofs_are_eofs {
                    true => Ok(Some(0)),
                    false => Err(io::ErrorKind::UnexpectedEof.into()),
                };
            }
            if self.untouched {
                match sockio::peek_byte(self.fd)? {
                    None => return Ok(None),
                    Some(None) => return Ok(Some(0)),
                    Some(Some(HANDSHAKE_RECORD)) => self.untouched = false,
                    Some(Some(_)) => {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, PlainHttp));
                    }
                }
            }
            match self.session.read_tls(&mut SocketReader(self.fd)) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
            match self.session.process_new_packets() {
                Ok(state) => {
                    self.plaintext = state.plaintext_bytes_to_read();
                    self.closed = state.peer_has_closed();
                }
                Err(e) => {
                    // The alert rustls queued tells the client why.
                    let _ = self.write_pending();
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            // Handshake replies, tickets, key updates: out as soon as possible.
            self.write_pending()?;
        }
    }

    /// Write queued TLS records until done (true) or the socket is full (false).
    ///
    /// # Errors
    /// The socket failed.
    pub fn write_pending(&mut self) -> io::Result<bool> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut SocketWriter(self.fd)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Encrypt and send as much of `data` as the socket takes now; returns how
    /// much of `data` was taken. Taken bytes may still wait as records
    /// ([`TlsStream::has_pending`]) when the socket filled up.
    ///
    /// # Errors
    /// The socket failed.
    pub fn send_available(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut taken = 0;
        loop {
            if !self.write_pending()? || taken == data.len() {
                return Ok(taken);
            }
            let end = data.len().min(taken + WRITE_CHUNK);
            let n = self.session.writer().write(&data[taken..end])?;
            if n == 0 {
                return Ok(taken);
            }
            taken += n;
        }
    }

    /// Send all of `data`, waiting up to `timeout` each time the socket is full.
    ///
    /// # Errors
    /// As [`TlsStream::send_available`], plus `TimedOut`.
    pub fn send_blocking(&mut self, mut data: &[u8], timeout: Duration) -> io::Result<()> {
        loop {
            let n = self.send_available(data)?;
            data = &data[n..];
            if data.is_empty() && !self.has_pending() {
                return Ok(());
            }
            sockio::wait_writable(self.fd, timeout)?;
        }
    }

    /// [`TlsStream::read_some`], waiting up to `timeout` for the client.
    ///
    /// # Errors
    /// As [`TlsStream::read_some`], plus `TimedOut`.
    pub fn read_blocking(
        &mut self,
        buf: &mut Vec<u8>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        loop {
            if let Some(n) = self.read_some(buf, max)? {
                return Ok(n);
            }
            if self.has_pending() {
                sockio::wait_writable(self.fd, timeout)?;
                self.write_pending()?;
            } else {
                sockio::wait_readable(self.fd, timeout)?;
            }
        }
    }

    /// Queue close_notify and send it if the socket takes it now. Not
    /// mid-handshake: a client that stalled there just gets the FIN.
    pub fn close_notify(&mut self) {
        if self.session.is_handshaking() {
            return;
        }
        self.session.send_close_notify();
        let _ = self.write_pending();
    }
}
