//! What an app may `send()`, checked against the ASGI HTTP and WebSocket
//! specs and turned into plain Rust values before it crosses to the event loop.

use std::path::PathBuf;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::WsData;
use super::call::{Stage, protocol_error};

/// A valid message, in Rust.
#[derive(Debug)]
pub(super) enum Sent {
    Start {
        status: u16,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    },
    Body {
        data: Vec<u8>,
        more: bool,
    },
    PathSend {
        path: PathBuf,
    },
    Accept {
        subprotocol: Option<String>,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    },
    Message(WsData),
    Close {
        code: u16,
        reason: String,
    },
}

/// Check `message` for a call at `stage`; a violation is a RuntimeError in
/// the app, as in Uvicorn.
pub(super) fn parse(message: &Bound<'_, PyDict>, websocket: bool, stage: Stage) -> PyResult<Sent> {
    let Some(kind) = message.get_item(intern!(message.py(), "type"))? else {
        return Err(protocol_error("ASGI message without a 'type' key".into()));
    };
    let kind = kind.cast_into::<PyString>()?;
    let kind = kind.to_str()?;
    let unexpected = || {
        protocol_error(format!(
            "Unexpected ASGI message '{kind}' sent{}",
            match stage {
                Stage::Opening => "",
                Stage::Open => " after the response started",
                Stage::Closed => " after the response completed",
            }
        ))
    };
    match (websocket, stage, kind) {
        (false, Stage::Opening, "http.response.start") => response_start(message),
        (false, Stage::Open, "http.response.body") => Ok(Sent::Body {
            data: bytes_item(message, intern!(message.py(), "body"))?.unwrap_or_default(),
            more: flag(message, intern!(message.py(), "more_body"))?,
        }),
        (false, Stage::Open, "http.response.pathsend") => path_send(message),
        (true, Stage::Opening, "websocket.accept") => Ok(Sent::Accept {
            subprotocol: optional_str(message, intern!(message.py(), "subprotocol"))?,
            headers: headers(message)?,
        }),
        (true, Stage::Open, "websocket.send") => {
            let text = optional_str(message, intern!(message.py(), "text"))?;
            match (text, bytes_item(message, intern!(message.py(), "bytes"))?) {
                (Some(t), None) => Ok(Sent::Message(WsData::Text(t))),
                (None, Some(b)) => Ok(Sent::Message(WsData::Binary(b))),
                _ => Err(protocol_error(
                    "websocket.send needs exactly one of 'bytes' and 'text'".into(),
                )),
            }
        }
        (true, Stage::Opening | Stage::Open, "websocket.close") => Ok(Sent::Close {
            code: optional_u16(message, intern!(message.py(), "code"))?.unwrap_or(1000),
            reason: optional_str(message, intern!(message.py(), "reason"))?.unwrap_or_default(),
        }),
        _ => Err(unexpected()),
    }
}

fn response_start(message: &Bound<'_, PyDict>) -> PyResult<Sent> {
    let Some(status) = optional_u16(message, intern!(message.py(), "status"))? else {
        return Err(protocol_error(
            "http.response.start without a status".into(),
        ));
    };
    if !(200..=599).contains(&status) {
        return Err(protocol_error(format!("invalid HTTP status {status}")));
    }
    if flag(message, intern!(message.py(), "trailers"))? {
        return Err(protocol_error(
            "http.response.start asked for trailers, which this server does not \
             offer (no http.response.trailers extension in the scope)"
                .into(),
        ));
    }
    Ok(Sent::Start {
        status,
        headers: headers(message)?,
    })
}

fn path_send(message: &Bound<'_, PyDict>) -> PyResult<Sent> {
    let Some(path) = optional_str(message, intern!(message.py(), "path"))? else {
        return Err(protocol_error(
            "http.response.pathsend without a path".into(),
        ));
    };
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(protocol_error(format!(
            "http.response.pathsend needs an absolute path, not {}",
            path.display()
        )));
    }
    Ok(Sent::PathSend { path })
}

/// `message[key]` when present and not None.
fn optional<'py>(
    message: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(message.get_item(key)?.filter(|v| !v.is_none()))
}

fn optional_str<'py>(
    message: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<String>> {
    optional(message, key)?.map(|v| v.extract()).transpose()
}

fn optional_u16<'py>(
    message: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<u16>> {
    optional(message, key)?.map(|v| v.extract()).transpose()
}

fn flag<'py>(message: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> PyResult<bool> {
    match message.get_item(key)? {
        Some(v) => v.is_truthy(),
        None => Ok(false),
    }
}

fn bytes_item<'py>(
    message: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Vec<u8>>> {
    match message.get_item(key)? {
        Some(v) if v.is_none() => Ok(None),
        Some(v) => match v.cast::<PyBytes>() {
            Ok(b) => Ok(Some(b.as_bytes().to_vec())),
            // bytearray and memoryview, as Uvicorn takes them.
            Err(_) => Ok(Some(v.extract::<Vec<u8>>().map_err(|_| {
                protocol_error(format!("'{key}' must be bytes, not {}", type_name(&v)))
            })?)),
        },
        None => Ok(None),
    }
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The `headers` of a start or accept message: byte pairs with a valid name
/// and a value without CR, LF or NUL. Hop-by-hop fields are the server's.
fn headers(message: &Bound<'_, PyDict>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let Some(list) = message.get_item(intern!(message.py(), "headers"))? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for pair in list.try_iter()? {
        let pair = pair?;
        let (name, value) = header_pair(&pair)?;
        let name = header_bytes(&name)?;
        let value = header_bytes(&value)?;
        if !crate::http::response::valid_header_name(&name) {
            return Err(protocol_error(format!(
                "invalid header name {:?}",
                String::from_utf8_lossy(&name)
            )));
        }
        if !crate::http::response::valid_header_value(&value) {
            return Err(protocol_error(format!(
                "invalid value for header {:?}",
                String::from_utf8_lossy(&name)
            )));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// A `(name, value)` tuple or `[name, value]` list (or any two-item iterable).
fn header_pair<'py>(pair: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let wrong = || protocol_error("each header must be a [name, value] pair".into());
    if let Ok(t) = pair.cast::<PyTuple>() {
        return match t.len() {
            2 => Ok((t.get_item(0)?, t.get_item(1)?)),
            _ => Err(wrong()),
        };
    }
    if let Ok(l) = pair.cast::<PyList>() {
        return match l.len() {
            2 => Ok((l.get_item(0)?, l.get_item(1)?)),
            _ => Err(wrong()),
        };
    }
    let mut items = pair.try_iter()?;
    match (items.next(), items.next(), items.next()) {
        (Some(name), Some(value), None) => Ok((name?, value?)),
        _ => Err(wrong()),
    }
}

fn header_bytes(v: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    // Strings are taken as latin-1, as Uvicorn does.
    if let Ok(s) = v.cast::<PyString>() {
        let text = s.to_str()?;
        if let Some(bytes) = text.chars().map(|c| u8::try_from(c as u32).ok()).collect() {
            return Ok(bytes);
        }
    }
    Err(protocol_error(format!(
        "header names and values must be bytes, not {}",
        type_name(v)
    )))
}
