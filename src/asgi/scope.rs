//! The connection scope of an HTTP request or WebSocket handshake (ASGI HTTP
//! and WebSocket spec 2.4), built on the app thread from the parsed head.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::Start;

/// The scope dict for `start`; `state` is the lifespan state, shallow-copied.
pub(super) fn build<'py>(
    py: Python<'py>,
    start: &Start,
    state: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let head = &start.head;
    let scope = PyDict::new(py);
    let asgi = PyDict::new(py);
    asgi.set_item(intern!(py, "version"), intern!(py, "3.0"))?;
    asgi.set_item(intern!(py, "spec_version"), intern!(py, "2.4"))?;
    let (kind, scheme) = match (start.websocket, start.https) {
        (false, false) => (intern!(py, "http"), intern!(py, "http")),
        (false, true) => (intern!(py, "http"), intern!(py, "https")),
        (true, false) => (intern!(py, "websocket"), intern!(py, "ws")),
        (true, true) => (intern!(py, "websocket"), intern!(py, "wss")),
    };
    scope.set_item(intern!(py, "type"), kind)?;
    scope.set_item(intern!(py, "asgi"), asgi)?;
    let version = match head.version {
        crate::http::head::Version::Http10 => intern!(py, "1.0"),
        crate::http::head::Version::Http11 => intern!(py, "1.1"),
    };
    scope.set_item(intern!(py, "http_version"), version)?;
    if !start.websocket {
        scope.set_item(intern!(py, "method"), PyString::new(py, head.method()))?;
    }
    scope.set_item(intern!(py, "scheme"), scheme)?;
    let raw_path = head.path();
    scope.set_item(
        intern!(py, "path"),
        PyString::new(py, &percent_decode_utf8(raw_path)),
    )?;
    scope.set_item(
        intern!(py, "raw_path"),
        PyBytes::new(py, raw_path.as_bytes()),
    )?;
    scope.set_item(
        intern!(py, "query_string"),
        PyBytes::new(py, head.query().as_bytes()),
    )?;
    scope.set_item(
        intern!(py, "root_path"),
        PyString::new(py, &start.root_path),
    )?;
    let (headers, subprotocols) = headers(py, head)?;
    scope.set_item(intern!(py, "headers"), headers)?;
    scope.set_item(
        intern!(py, "client"),
        address(py, &start.info.remote_addr, &start.info.remote_port)?,
    )?;
    scope.set_item(
        intern!(py, "server"),
        address(py, &start.info.server_name, &start.info.server_port)?,
    )?;
    if start.websocket {
        scope.set_item(intern!(py, "subprotocols"), subprotocols)?;
    }
    let extensions = PyDict::new(py);
    if !start.websocket {
        extensions.set_item(intern!(py, "http.response.pathsend"), PyDict::new(py))?;
    }
    scope.set_item(intern!(py, "extensions"), extensions)?;
    if let Some(state) = state {
        scope.set_item(intern!(py, "state"), state.copy()?)?;
    }
    Ok(scope)
}

/// The headers as `(name, value)` byte pairs, names lower-cased; and the
/// subprotocols a WebSocket handshake offers, in order.
fn headers<'py>(
    py: Python<'py>,
    head: &crate::http::head::RequestHead,
) -> PyResult<(Bound<'py, PyList>, Vec<String>)> {
    let headers = PyList::empty(py);
    let mut subprotocols = Vec::new();
    for (name, value) in head.headers() {
        let lower = name.to_ascii_lowercase();
        if lower == "sec-websocket-protocol" {
            subprotocols.extend(
                String::from_utf8_lossy(value)
                    .split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty()),
            );
        }
        let pair = PyTuple::new(
            py,
            [PyBytes::new(py, lower.as_bytes()), PyBytes::new(py, value)],
        )?;
        headers.append(pair)?;
    }
    Ok((headers, subprotocols))
}

/// `(host, port)`, or `(path, None)` for a unix socket, or None when unknown.
fn address<'py>(py: Python<'py>, host: &str, port: &str) -> PyResult<Bound<'py, PyAny>> {
    if host.is_empty() {
        return Ok(py.None().into_bound(py));
    }
    let port = port.parse::<u16>().ok();
    Ok(PyTuple::new(
        py,
        [
            host.into_pyobject(py)?.into_any(),
            port.into_pyobject(py)?.into_any(),
        ],
    )?
    .into_any())
}

/// The path with `%XX` escapes decoded, read as UTF-8 (invalid sequences
/// become U+FFFD, as Python's `unquote` does).
pub(super) fn percent_decode_utf8(path: &str) -> String {
    String::from_utf8_lossy(&crate::http::head::percent_decode(path)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode_utf8;

    #[test]
    fn paths_are_percent_decoded_as_utf8() {
        assert_eq!(percent_decode_utf8("/plain"), "/plain");
        assert_eq!(percent_decode_utf8("/caf%C3%A9"), "/café");
        assert_eq!(percent_decode_utf8("/a%20b%2"), "/a b%2");
        assert_eq!(percent_decode_utf8("/%41"), "/A");
        assert_eq!(percent_decode_utf8("/bad%FF"), "/bad\u{fffd}");
        assert_eq!(percent_decode_utf8("/%zz"), "/%zz");
    }
}
