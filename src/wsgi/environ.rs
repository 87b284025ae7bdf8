//! The WSGI environ (PEP 3333 "environ Variables") for one request.
//!
//! Keys that never change in a worker live in a template dict built once; each
//! request starts from a C-level copy of it and adds the request's own keys using
//! interned key strings. Header names map to `HTTP_*` keys through a small cache,
//! so a typical request allocates no key strings at all.
//!
//! As in Gunicorn 22+, request headers whose names contain `_` are dropped
//! (unless `header_map = dangerous`): with `-` and `_` both mapping to `_`,
//! they could spoof a header set by a proxy.

use crate::config::{HeaderMap, HeaderVerdict};
use rustc_hash::FxHashMap;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::exchange::Shared;
use super::forwarded::Forwarded;
use super::input::{Errors, Input};
use super::respond::FileWrapper;
use super::socket::ConnSocket;
use super::start_response::EarlyHints;
use crate::http::head::{RequestHead, Version};

/// Most distinct header names cached per worker.
const HEADER_KEY_CACHE: usize = 256;

/// Addresses of one connection, as environ strings.
#[derive(Clone, Debug, Default)]
pub struct ConnInfo {
    /// Client IP, or empty for unix sockets.
    pub remote_addr: String,
    /// Client port, or empty for unix sockets.
    pub remote_port: String,
    /// The address the client connected to (the listener's, or the
    /// connection's own when the listener is bound to a wildcard address);
    /// the socket path for unix sockets.
    pub server_name: String,
    /// The port the client connected to; empty for unix sockets.
    pub server_port: String,
    /// The peer's address, for trust decisions; None for unix sockets.
    pub peer_ip: Option<std::net::IpAddr>,
    /// What the TLS handshake settled; None on a plain connection.
    pub tls: Option<std::sync::Arc<crate::tls::TlsInfo>>,
}

/// Builds environ dicts for one worker.
pub(crate) struct EnvironBuilder {
    template: Py<PyDict>,
    script_name: String,
    /// `header_map`: which header names reach the environ.
    header_map: HeaderMap,
    /// `forwarder_headers`: names a trusted proxy may send despite `header_map`.
    forwarder_headers: Vec<String>,
    header_keys: std::sync::Mutex<FxHashMap<String, Py<PyString>>>,
}

impl EnvironBuilder {
    /// Build the template. `multiprocess` is true with more than one worker.
    pub fn new(
        py: Python<'_>,
        multiprocess: bool,
        multithread: bool,
        script_name: &str,
        header_map: HeaderMap,
        forwarder_headers: Vec<String>,
    ) -> PyResult<EnvironBuilder> {
        let t = PyDict::new(py);
        t.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
        t.set_item("wsgi.url_scheme", "http")?;
        t.set_item("wsgi.errors", Py::new(py, Errors)?)?;
        t.set_item("wsgi.multithread", multithread)?;
        t.set_item("wsgi.multiprocess", multiprocess)?;
        t.set_item("wsgi.run_once", false)?;
        t.set_item("wsgi.input_terminated", true)?;
        t.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
        t.set_item(
            "SERVER_SOFTWARE",
            concat!("rgunicorn/", env!("CARGO_PKG_VERSION")),
        )?;
        t.set_item("SCRIPT_NAME", script_name)?;
        Ok(EnvironBuilder {
            template: t.unbind(),
            script_name: script_name.to_owned(),
            header_map,
            forwarder_headers,
            header_keys: std::sync::Mutex::new(FxHashMap::default()),
        })
    }

    /// The environ for `head` on connection `conn`; `wsgi.input`,
    /// `gunicorn.socket` and `wsgi.early_hints` work on the exchange `ex`.
    pub fn build<'py>(
        &self,
        py: Python<'py>,
        head: &RequestHead,
        conn: &ConnInfo,
        forwarded: &Forwarded,
        ex: &Shared,
    ) -> PyResult<Bound<'py, PyDict>> {
        let env = self.template.bind(py).copy()?;
        if forwarded.https || conn.tls.is_some() {
            env.set_item(intern!(py, "wsgi.url_scheme"), intern!(py, "https"))?;
        }
        if let Some(tls) = &conn.tls {
            add_tls(py, &env, tls)?;
        }
        env.set_item(intern!(py, "REQUEST_METHOD"), method(py, head.method()))?;
        env.set_item(intern!(py, "RAW_URI"), head.target())?;
        let protocol = match head.version {
            Version::Http10 => intern!(py, "HTTP/1.0"),
            Version::Http11 => intern!(py, "HTTP/1.1"),
        };
        env.set_item(intern!(py, "SERVER_PROTOCOL"), protocol)?;
        env.set_item(intern!(py, "QUERY_STRING"), head.query())?;
        let path = percent_decode_latin1(head.path());
        let script_name = match &forwarded.script_name {
            Some(s) => {
                env.set_item(intern!(py, "SCRIPT_NAME"), s.as_str())?;
                s.as_str()
            }
            None => self.script_name.as_str(),
        };
        let path_info = match path.strip_prefix(script_name) {
            Some(rest) if !script_name.is_empty() && (rest.is_empty() || rest.starts_with('/')) => {
                rest
            }
            _ => path.as_str(),
        };
        env.set_item(intern!(py, "PATH_INFO"), path_info)?;
        env.set_item(intern!(py, "REMOTE_ADDR"), conn.remote_addr.as_str())?;
        if !conn.remote_port.is_empty() {
            env.set_item(intern!(py, "REMOTE_PORT"), conn.remote_port.as_str())?;
        }
        let host = self.add_headers(py, &env, head, forwarded.trusted)?;
        let (server_name, server_port) = server_address(conn, host.as_deref());
        env.set_item(intern!(py, "SERVER_NAME"), server_name)?;
        env.set_item(intern!(py, "SERVER_PORT"), server_port)?;
        env.set_item(intern!(py, "wsgi.input"), Input::new(ex.clone()))?;
        env.set_item(
            intern!(py, "gunicorn.socket"),
            ConnSocket {
                exchange: ex.clone(),
            },
        )?;
        env.set_item(
            intern!(py, "wsgi.early_hints"),
            EarlyHints {
                exchange: ex.clone(),
            },
        )?;
        Ok(env)
    }

    /// The request headers as `HTTP_*` keys (CONTENT_TYPE and CONTENT_LENGTH
    /// without the prefix), latin-1 decoded; returns the first Host value.
    fn add_headers(
        &self,
        py: Python<'_>,
        env: &Bound<'_, PyDict>,
        head: &RequestHead,
        trusted: bool,
    ) -> PyResult<Option<String>> {
        let mut host = None;
        for (name, value) in head.headers() {
            if self.header_map.verdict(name) != HeaderVerdict::Pass
                && !(trusted
                    && self
                        .forwarder_headers
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case(name)))
            {
                continue;
            }
            if name.eq_ignore_ascii_case("content-type") {
                env.set_item(intern!(py, "CONTENT_TYPE"), latin1_py(py, value)?)?;
                continue;
            }
            if name.eq_ignore_ascii_case("content-length") {
                let n = latin1_py(py, value.trim_ascii())?;
                env.set_item(intern!(py, "CONTENT_LENGTH"), n)?;
                continue;
            }
            if name.eq_ignore_ascii_case("host") && host.is_none() {
                host = Some(latin1_str(value));
            }
            let key = self.header_key(py, name);
            let key = key.bind(py);
            match env.get_item(key)? {
                // Repeated headers are joined with a comma (RFC 9110 §5.3).
                Some(prev) => {
                    let joined = format!("{},{}", prev.extract::<&str>()?, latin1_str(value));
                    env.set_item(key, joined)?;
                }
                None => env.set_item(key, latin1_py(py, value)?)?,
            }
        }
        Ok(host)
    }

    /// `HTTP_X_FORWARDED_FOR` for `X-Forwarded-For`, cached.
    fn header_key(&self, py: Python<'_>, name: &str) -> Py<PyString> {
        let mut cache = self
            .header_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(k) = cache.get(name) {
            return k.clone_ref(py);
        }
        let mut key = String::with_capacity(5 + name.len());
        key.push_str("HTTP_");
        key.extend(name.chars().map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        }));
        let k = PyString::intern(py, &key).unbind();
        if cache.len() < HEADER_KEY_CACHE {
            cache.insert(name.to_owned(), k.clone_ref(py));
        }
        k
    }
}

/// What mod_ssl tells apps about a TLS connection: `HTTPS=on`, the protocol
/// and suite, and the client certificate. Certificate names are UTF-8; like
/// every environ string they arrive latin-1 decoded (PEP 3333 native strings:
/// `.encode("latin-1").decode("utf-8")` gives the name back).
fn add_tls(py: Python<'_>, env: &Bound<'_, PyDict>, tls: &crate::tls::TlsInfo) -> PyResult<()> {
    env.set_item(intern!(py, "HTTPS"), intern!(py, "on"))?;
    env.set_item(intern!(py, "SSL_PROTOCOL"), tls.protocol)?;
    env.set_item(intern!(py, "SSL_CIPHER"), tls.cipher)?;
    env.set_item(intern!(py, "SSL_CLIENT_VERIFY"), tls.client_verify())?;
    if let Some(cert) = &tls.client {
        let subject = latin1_str(cert.subject.as_bytes());
        env.set_item(intern!(py, "SSL_CLIENT_S_DN"), subject)?;
        let issuer = latin1_str(cert.issuer.as_bytes());
        env.set_item(intern!(py, "SSL_CLIENT_I_DN"), issuer)?;
        env.set_item(intern!(py, "SSL_CLIENT_CERT"), cert.pem.as_str())?;
    }
    Ok(())
}

/// SERVER_NAME and SERVER_PORT. As Gunicorn: a TCP listener's own address
/// names the server (the Host header is the client's claim, and apps read it
/// as HTTP_HOST). A unix socket has no address to offer, so there the Host
/// header names it, and a port that is not a number is not passed on.
fn server_address<'a>(conn: &'a ConnInfo, host: Option<&'a str>) -> (&'a str, &'a str) {
    match host {
        Some(host) if conn.server_port.is_empty() => {
            let (name, port) = split_host(host);
            let port = match port {
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p,
                _ => "80",
            };
            (name, port)
        }
        _ => (conn.server_name.as_str(), conn.server_port.as_str()),
    }
}

/// Split `host[:port]` / `[v6]:port`.
fn split_host(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        if let Some(end) = host.find(']') {
            let port = host[end + 1..].strip_prefix(':');
            return (&host[..=end], port);
        }
        return (host, None);
    }
    match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    }
}

/// Bytes as a latin-1 str: every byte is one code point (PEP 3333 "native strings").
/// The native string for bytes from the wire: their latin-1 decoding, made
/// by Python directly (no UTF-8 round trip through a Rust String).
fn latin1_py<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    let len = isize::try_from(bytes.len()).unwrap_or(isize::MAX);
    // SAFETY: the pointer and length describe `bytes`, which outlives the
    // call; a null result is turned into the Python error it set.
    unsafe {
        let ptr = pyo3::ffi::PyUnicode_DecodeLatin1(bytes.as_ptr().cast(), len, std::ptr::null());
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

/// REQUEST_METHOD: the common methods as interned strings.
fn method<'py>(py: Python<'py>, method: &str) -> Bound<'py, PyString> {
    match method {
        "GET" => intern!(py, "GET").clone(),
        "POST" => intern!(py, "POST").clone(),
        "HEAD" => intern!(py, "HEAD").clone(),
        "PUT" => intern!(py, "PUT").clone(),
        "DELETE" => intern!(py, "DELETE").clone(),
        "PATCH" => intern!(py, "PATCH").clone(),
        "OPTIONS" => intern!(py, "OPTIONS").clone(),
        other => PyString::new(py, other),
    }
}

fn latin1_str(bytes: &[u8]) -> String {
    if bytes.is_ascii() {
        // SAFETY-free fast path: ASCII is valid UTF-8.
        return String::from_utf8_lossy(bytes).into_owned();
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Percent-decode a path, then read the bytes as latin-1 (PEP 3333, as Gunicorn).
pub(crate) fn percent_decode_latin1(path: &str) -> String {
    match crate::http::head::percent_decode(path) {
        std::borrow::Cow::Borrowed(_) => path.to_owned(),
        std::borrow::Cow::Owned(bytes) => latin1_str(&bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_percent_decoded_as_latin1() {
        assert_eq!(percent_decode_latin1("/caf%C3%A9"), "/caf\u{c3}\u{a9}");
        assert_eq!(percent_decode_latin1("/a%20b"), "/a b");
        assert_eq!(percent_decode_latin1("/bad%zz%4"), "/bad%zz%4");
        assert_eq!(percent_decode_latin1("/end%41"), "/endA");
    }

    #[test]
    fn host_header_splits_into_name_and_port() {
        assert_eq!(
            split_host("example.com:8080"),
            ("example.com", Some("8080"))
        );
        assert_eq!(split_host("example.com"), ("example.com", None));
        assert_eq!(split_host("[::1]:9000"), ("[::1]", Some("9000")));
    }
}
