//! `start_response` and the legacy `write` callable (PEP 3333).
//!
//! Status and headers are validated here, before anything reaches the wire:
//! a malformed status or header from the app becomes a Python exception in the
//! app's own frame (and so a 500), never bytes that break HTTP framing.
//! Hop-by-hop headers are dropped (RFC 9110 §7.6.1); `Connection: close` from the
//! app is honoured by closing after the response.

use pyo3::exceptions::{PyAssertionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use super::exchange::{IoFailure, Shared, acquire};
use super::response::Pending;
use crate::http::head::Version;
use crate::http::response::{is_hop_by_hop, valid_header_name, valid_header_value};

/// The `start_response` callable given to the app.
#[pyclass(module = "rgunicorn")]
pub(crate) struct StartResponse {
    /// The exchange this response belongs to.
    pub exchange: Shared,
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__(
        &self,
        py: Python<'_>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Writer> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        if let Some(info) = exc_info
            && acquire(&self.exchange)?.response.head_sent()
        {
            // PEP 3333: too late to change the response; re-raise.
            let info = info.cast::<PyTuple>()?;
            let err = PyErr::from_value(info.get_item(1)?);
            let tb = info.get_item(2)?;
            if !tb.is_none() {
                err.set_traceback(py, Some(tb.cast_into()?));
            }
            return Err(err);
        }
        if exc_info.is_none() && acquire(&self.exchange)?.response.started() {
            return Err(PyAssertionError::new_err("Response headers already set!"));
        }
        let (pending, must_close) = parse_response(status, headers)?;
        let mut ex = acquire(&self.exchange)?;
        if must_close {
            ex.response.close_after();
        }
        ex.response
            .start(pending, exc_info.is_some())
            .map_err(|_| PyAssertionError::new_err("Response headers already set!"))?;
        Ok(Writer {
            exchange: self.exchange.clone(),
        })
    }
}

/// Validate status and headers. Returns the pending response and whether the app
/// asked for `Connection: close`.
fn parse_response(
    status: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
) -> PyResult<(Pending, bool)> {
    let status: String = status
        .extract()
        .map_err(|_| PyTypeError::new_err("status must be a str"))?;
    let code = parse_status(&status)?;
    let mut out = Vec::new();
    let mut content_length = None;
    let mut must_close = false;
    for item in headers
        .try_iter()
        .map_err(|_| PyTypeError::new_err("headers must be a list"))?
    {
        let (name, value) = parse_header(&item?)?;
        if is_hop_by_hop(&name) {
            if name.eq_ignore_ascii_case(b"connection")
                && value.to_ascii_lowercase().windows(5).any(|w| w == b"close")
            {
                must_close = true;
            }
            continue;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(value.trim_ascii())
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    let shown = String::from_utf8_lossy(&value);
                    PyValueError::new_err(format!("invalid Content-Length {shown:?}"))
                })?;
            content_length = Some(n);
        }
        out.push((name, value));
    }
    Ok((
        Pending {
            code,
            status: status.into_bytes(),
            headers: out,
            content_length,
        },
        must_close,
    ))
}

/// One `(name, value)` header from the app, checked so it cannot break the
/// framing: a token name, a value without CR, LF or NUL, both latin-1.
/// Returns the name and value as the bytes they will be sent as.
fn parse_header(item: &Bound<'_, PyAny>) -> PyResult<(Vec<u8>, Vec<u8>)> {
    let not_a_pair =
        || PyTypeError::new_err(format!("header must be a (str, str) tuple, got {item}"));
    let pair = item.cast::<PyTuple>().map_err(|_| not_a_pair())?;
    if pair.len() != 2 {
        return Err(not_a_pair());
    }
    let (name, value) = (pair.get_borrowed_item(0)?, pair.get_borrowed_item(1)?);
    let not_latin1 = |what| move |_| PyValueError::new_err(format!("{what} is not latin-1"));
    let name = name.cast::<PyString>().map_err(|_| not_a_pair())?;
    let name = name.to_str().map_err(not_latin1("header name"))?;
    let value = value.cast::<PyString>().map_err(|_| not_a_pair())?;
    let value = value.to_str().map_err(not_latin1("header value"))?;
    let name_b = latin1(name, "header name")?;
    let value_b = latin1(value, "header value")?;
    if !valid_header_name(&name_b) {
        return Err(PyValueError::new_err(format!(
            "invalid header name {name:?}"
        )));
    }
    if !valid_header_value(&value_b) {
        return Err(PyValueError::new_err(format!(
            "invalid header value {value:?}"
        )));
    }
    Ok((name_b, value_b))
}

/// `"200 OK"` → 200. A three-digit code, then a space and a reason (may be empty).
fn parse_status(status: &str) -> PyResult<u16> {
    let bytes = status.as_bytes();
    let ok = bytes.len() >= 3
        && bytes[..3].iter().all(u8::is_ascii_digit)
        && (bytes.len() == 3 || bytes[3] == b' ')
        && !bytes.iter().any(|b| *b == b'\r' || *b == b'\n');
    if !ok {
        return Err(PyValueError::new_err(format!("invalid status {status:?}")));
    }
    let code: u16 = status[..3].parse().unwrap_or(0);
    if code < 100 {
        return Err(PyValueError::new_err(format!("invalid status {status:?}")));
    }
    Ok(code)
}

fn latin1(s: &str, what: &str) -> PyResult<Vec<u8>> {
    if s.is_ascii() {
        return Ok(s.as_bytes().to_vec());
    }
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| PyValueError::new_err(format!("{what} {s:?} is not latin-1")))
}

/// The `write(data)` callable returned by `start_response`.
#[pyclass(module = "rgunicorn")]
pub(crate) struct Writer {
    exchange: Shared,
}

#[pymethods]
impl Writer {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = data
            .cast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err("write() argument must be bytes"))?;
        let mut ex = acquire(&self.exchange)?;
        if ex.finished {
            return Err(PyValueError::new_err("write() after the response ended"));
        }
        ex.ensure_head(None)
            .map_err(|_| PyAssertionError::new_err("write() before start_response"))?;
        ex.write_body(data.as_bytes())?;
        // write() must not return before the data is on its way (PEP 3333).
        ex.flush_blocking(py)?;
        Ok(())
    }
}

/// `environ["wsgi.early_hints"]` (Gunicorn 23): `early_hints(headers)` sends a
/// `103 Early Hints` response at once, so a browser can start fetching what
/// the `Link` headers name while the app computes the real response. Ignored
/// for HTTP/1.0 clients (which do not understand 1xx) and once the final
/// response has begun; may be called more than once.
#[pyclass(module = "rgunicorn")]
pub(crate) struct EarlyHints {
    /// The exchange whose connection the hints go to.
    pub exchange: Shared,
}

#[pymethods]
impl EarlyHints {
    fn __call__(&self, py: Python<'_>, headers: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut block = b"HTTP/1.1 103 Early Hints\r\n".to_vec();
        for item in headers
            .try_iter()
            .map_err(|_| PyTypeError::new_err("headers must be a list"))?
        {
            let (name, value) = parse_header(&item?)?;
            block.extend_from_slice(&name);
            block.extend_from_slice(b": ");
            block.extend_from_slice(value.trim_ascii());
            block.extend_from_slice(b"\r\n");
        }
        block.extend_from_slice(b"\r\n");
        let mut ex = acquire(&self.exchange)?;
        if ex.finished || ex.response.head_sent() || ex.head_ctx.version == Version::Http10 {
            return Ok(());
        }
        let timeout = ex.io_timeout;
        let wire = &mut ex.wire;
        // Nothing of the final response is buffered yet (its head is not
        // sent), so these bytes go out first, as 1xx responses must. The
        // exchange stays locked meanwhile (a TLS session has one writer).
        py.detach(|| wire.send_blocking(&block, timeout))
            .map_err(IoFailure::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_needs_three_digits_and_a_space() {
        assert_eq!(parse_status("200 OK").unwrap(), 200);
        assert_eq!(parse_status("404").unwrap(), 404);
        assert_eq!(parse_status("599 Custom Thing").unwrap(), 599);
        assert!(parse_status("20 OK").is_err());
        assert!(parse_status("200OK").is_err());
        assert!(parse_status("099 Low").is_err());
        assert!(parse_status("200 OK\r\nX: y").is_err());
    }
}
