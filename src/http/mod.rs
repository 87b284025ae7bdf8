//! HTTP/1.x wire format: bytes in, request heads and body payload out; response
//! heads and chunks back to bytes.
//!
//! This module owns framing only. It knows nothing about sockets, Python or WSGI,
//! and it compiles without pyo3: the worker feeds it buffers, `wsgi/` reads the
//! parsed [`head::RequestHead`] and hands back headers to encode.
//!
//! - [`head`]: request line and header section (RFC 9112 §2–§5), with gunicorn's
//!   `limit_request_*` settings, and message body framing (RFC 9112 §6).
//! - [`body`]: incremental, zero-copy Content-Length and chunked decoders (RFC 9112
//!   §6.2, §7.1).
//! - [`response`]: response framing decisions, status line and header encoding,
//!   chunked encoding and canned error responses (RFC 9112 §4, §6.3, §7.1).
//! - [`error`]: [`ParseError`] and its single mapping to a response status.

pub mod body;
pub mod error;
pub mod head;
pub mod response;

pub use error::ParseError;
