//! The harness's HTTP/1.1 client: one connection ([`Conn`]) over TCP or a unix
//! socket, reading responses ([`Response`]) one at a time, so pipelined and
//! kept-alive responses can be checked byte for byte.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{IO_TIMEOUT, tail};

/// Byte streams a [`Conn`] can run over.
pub trait Stream: Read + Write + Send {
    /// Sets the read timeout.
    fn set_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    /// Half-closes the write side.
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(t)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl Stream for UnixStream {
    fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(t)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// One client connection with a read buffer, so several (pipelined)
/// responses can be read from it one at a time.
pub struct Conn {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    eof: bool,
    /// The local port (TCP only), for REMOTE_PORT checks.
    pub local_port: Option<u16>,
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// e.g. `HTTP/1.1 200 OK`.
    pub status_line: String,
    /// The status code.
    pub status: u16,
    /// Header fields in wire order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body after removing chunked framing.
    pub body: Vec<u8>,
    /// Every byte of this response as received (head + framed body).
    pub raw: Vec<u8>,
    /// True if the body was chunked.
    pub chunked: bool,
    /// True if the body was delimited by the server closing.
    pub close_delimited: bool,
}

impl Response {
    /// First header value named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as UTF-8 (lossy).
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the response if it isn't.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(e) => panic!("response body is not JSON ({e}): {}", self.dump()),
        }
    }

    /// The raw response as text, for assertion messages (truncated).
    pub fn dump(&self) -> String {
        let s = String::from_utf8_lossy(&self.raw);
        tail(&s, 2000).to_string()
    }
}

impl Conn {
    /// Connects to a TCP address (loopback only).
    #[track_caller]
    pub fn tcp(addr: SocketAddr) -> Conn {
        match Conn::try_tcp(addr) {
            Ok(c) => c,
            Err(e) => panic!("connect {addr}: {e}"),
        }
    }

    /// [`Conn::tcp`], returning the error instead of panicking.
    pub fn try_tcp(addr: SocketAddr) -> io::Result<Conn> {
        assert!(addr.ip().is_loopback(), "tests only talk to loopback");
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        s.set_nodelay(true)?;
        let local_port = s.local_addr().ok().map(|a| a.port());
        Ok(Conn {
            stream: Box::new(s),
            buf: Vec::new(),
            eof: false,
            local_port,
        })
    }

    /// A connection over an already connected stream (TLS, for one).
    pub fn over(stream: Box<dyn Stream>) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            eof: false,
            local_port: None,
        }
    }

    /// Connects to a unix stream socket.
    #[track_caller]
    pub fn unix(path: &Path) -> Conn {
        let s = match UnixStream::connect(path) {
            Ok(s) => s,
            Err(e) => panic!("connect {}: {e}", path.display()),
        };
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
        s.set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        Conn {
            stream: Box::new(s),
            buf: Vec::new(),
            eof: false,
            local_port: None,
        }
    }

    /// Sets the read timeout for subsequent reads.
    pub fn set_read_timeout(&mut self, t: Duration) {
        self.stream.set_timeout(Some(t)).expect("set read timeout");
    }

    /// Writes all of `bytes`; panics on error.
    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.write_all(bytes) {
            panic!("write to server: {e}");
        }
    }

    /// Writes all of `bytes`, returning the error instead of panicking.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads exactly `buf.len()` raw bytes (buffered ones first); panics on
    /// error or EOF.
    #[track_caller]
    pub fn read_exact(&mut self, buf: &mut [u8]) {
        if let Err(e) = self.try_read_exact(buf) {
            panic!("reading {} bytes: {e}", buf.len());
        }
    }

    /// [`Conn::read_exact`], returning the error (timeout, EOF, reset)
    /// instead of panicking.
    pub fn try_read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.need(buf.len())?;
        buf.copy_from_slice(&self.buf[..buf.len()]);
        self.buf.drain(..buf.len());
        Ok(())
    }

    /// The first `n` bytes not yet consumed, reading until they arrive;
    /// they stay buffered for the next read. Panics on error or EOF.
    #[track_caller]
    pub fn peek(&mut self, n: usize) -> Vec<u8> {
        if let Err(e) = self.need(n) {
            panic!("waiting for {n} bytes: {e}");
        }
        self.buf[..n].to_vec()
    }

    /// Half-closes our side (the server sees EOF).
    pub fn shutdown_write(&mut self) {
        self.stream.shutdown_write().expect("shutdown write");
    }

    /// Reads one response to a non-HEAD request; panics on error.
    #[track_caller]
    pub fn read_response(&mut self) -> Response {
        match self.try_read_response(false) {
            Ok(r) => r,
            Err(e) => panic!("reading response: {e}"),
        }
    }

    /// Reads one response to a HEAD request (no body whatever the headers say).
    #[track_caller]
    pub fn read_head_response(&mut self) -> Response {
        match self.try_read_response(true) {
            Ok(r) => r,
            Err(e) => panic!("reading HEAD response: {e}"),
        }
    }

    /// Reads one response. `head_request` suppresses the body (RFC 9112 §6.3).
    /// Errors on timeout, premature EOF or unparseable framing.
    pub fn try_read_response(&mut self, head_request: bool) -> io::Result<Response> {
        let head_end = self.find(b"\r\n\r\n", 0)? + 4;
        let head = std::str::from_utf8(&self.buf[..head_end - 4])
            .map_err(|_| invalid("response head is not UTF-8"))?
            .to_string();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !(version == "HTTP/1.1" || version == "HTTP/1.0") {
            return Err(invalid(&format!("bad status line {status_line:?}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| invalid(&format!("bad status code in {status_line:?}")))?;
        let mut headers = Vec::new();
        for line in lines {
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| invalid(&format!("bad header line {line:?}")))?;
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            status_line,
            status,
            headers,
            body: Vec::new(),
            raw: Vec::new(),
            chunked: false,
            close_delimited: false,
        };
        let no_body =
            head_request || (100..200).contains(&status) || status == 204 || status == 304;
        let end = if no_body {
            head_end
        } else if resp
            .header("Transfer-Encoding")
            .is_some_and(|te| te.to_ascii_lowercase().ends_with("chunked"))
        {
            resp.chunked = true;
            self.read_chunked(head_end, &mut resp.body)?
        } else if let Some(cl) = resp.header("Content-Length") {
            let len: usize = cl
                .parse()
                .map_err(|_| invalid(&format!("bad Content-Length {cl:?}")))?;
            self.need(head_end + len)?;
            resp.body = self.buf[head_end..head_end + len].to_vec();
            head_end + len
        } else {
            resp.close_delimited = true;
            while self.fill()? {}
            resp.body = self.buf[head_end..].to_vec();
            self.buf.len()
        };
        resp.raw = self.buf.drain(..end).collect();
        Ok(resp)
    }

    /// Reads until the server closes; returns everything not yet consumed.
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? {}
        Ok(std::mem::take(&mut self.buf))
    }

    /// Asserts the server closes the connection within `timeout` without
    /// sending anything more. A reset counts as closed.
    #[track_caller]
    pub fn expect_closed(&mut self, timeout: Duration) {
        self.set_read_timeout(timeout);
        let start = Instant::now();
        match self.read_to_close() {
            Ok(rest) => assert!(
                rest.is_empty(),
                "expected the server to close; got {} more bytes: {:?}",
                rest.len(),
                String::from_utf8_lossy(&rest[..rest.len().min(500)])
            ),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!(
                "expected the server to close within {timeout:?}; after {:?}: {e}",
                start.elapsed()
            ),
        }
    }

    /// Reads more bytes into the buffer; Ok(false) at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; 65536];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let have = self.buf.len();
                    return Err(self.short(
                        io::ErrorKind::TimedOut,
                        &format!("read timed out; have {have} unconsumed bytes"),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The error for a response cut short: `what`, then the start of what
    /// the buffer holds.
    fn short(&self, kind: io::ErrorKind, what: &str) -> io::Error {
        let have = String::from_utf8_lossy(&self.buf[..self.buf.len().min(500)]);
        io::Error::new(kind, format!("{what}: {have:?}"))
    }

    /// Ensures `buf.len() >= n`; errors at EOF.
    fn need(&mut self, n: usize) -> io::Result<()> {
        while self.buf.len() < n {
            if !self.fill()? {
                let have = self.buf.len();
                return Err(self.short(
                    io::ErrorKind::UnexpectedEof,
                    &format!("connection closed after {have} of {n} bytes"),
                ));
            }
        }
        Ok(())
    }

    /// Index of `needle` in the buffer at or after `from`, reading as needed.
    fn find(&mut self, needle: &[u8], from: usize) -> io::Result<usize> {
        let mut searched = from;
        loop {
            if let Some(i) = self.buf[searched..]
                .windows(needle.len())
                .position(|w| w == needle)
            {
                return Ok(searched + i);
            }
            searched = self.buf.len().saturating_sub(needle.len() - 1).max(from);
            if !self.fill()? {
                let wanted = String::from_utf8_lossy(needle);
                return Err(self.short(
                    io::ErrorKind::UnexpectedEof,
                    &format!("connection closed before {wanted:?}"),
                ));
            }
        }
    }

    /// Decodes a chunked body starting at `pos`; returns the end offset.
    fn read_chunked(&mut self, mut pos: usize, body: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            let eol = self.find(b"\r\n", pos)?;
            let line = String::from_utf8_lossy(&self.buf[pos..eol]).into_owned();
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| invalid(&format!("bad chunk size line {line:?}")))?;
            pos = eol + 2;
            if size == 0 {
                // Trailer section: header lines until an empty line.
                loop {
                    let eol = self.find(b"\r\n", pos)?;
                    let empty = eol == pos;
                    pos = eol + 2;
                    if empty {
                        return Ok(pos);
                    }
                }
            }
            self.need(pos + size + 2)?;
            body.extend_from_slice(&self.buf[pos..pos + size]);
            if &self.buf[pos + size..pos + size + 2] != b"\r\n" {
                return Err(invalid("chunk data not followed by CRLF"));
            }
            pos += size + 2;
        }
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Asserts an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
#[track_caller]
pub fn assert_http_date(value: &str) {
    let b = value.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() == 29
        && ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&&value[..3])
        && &value[3..5] == ", "
        && digits(5..7)
        && b[7] == b' '
        && [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .contains(&&value[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && &value[25..] == " GMT";
    assert!(ok, "not an IMF-fixdate: {value:?}");
}
