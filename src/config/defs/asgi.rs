//! ASGI worker settings (`-k asgi`): the event loop the app's coroutines run
//! on, the lifespan protocol, and the WebSocket message limit.

use crate::config::{Arity, Kind, Process, Section, Setting, Support, parse_positive};

/// Which asyncio event loop an ASGI worker runs (`asgi_loop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsgiLoop {
    /// uvloop when it can be imported, else asyncio's own loop.
    Auto,
    /// asyncio's default event loop.
    Asyncio,
    /// uvloop; the worker fails to boot without it.
    Uvloop,
}

/// Whether an ASGI worker runs the app's lifespan protocol (`asgi_lifespan`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifespan {
    /// Run it; an app that raises before answering does not support it and is
    /// served without.
    Auto,
    /// Run it; any failure fails the worker's boot.
    On,
    /// Never send lifespan events.
    Off,
}

/// `asgi_loop`: the asyncio event loop implementation.
pub static ASGI_LOOP: Setting = Setting {
    key: "asgi_loop",
    flags: &["--asgi-loop"],
    arity: Arity::Value { metavar: "STRING" },
    kind: Kind::Str,
    section: Section::Worker,
    default: "auto",
    summary: "Event loop for the ASGI worker: auto, asyncio or uvloop",
    doc: "With -k asgi, each worker runs one event loop on its own Python thread, \
          while the worker's Rust event loop keeps every socket. auto uses uvloop \
          when it is installed and asyncio's loop otherwise; uvloop without uvloop \
          installed fails the worker's boot.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.asgi_loop = match v.trim() {
            "auto" => AsgiLoop::Auto,
            "asyncio" => AsgiLoop::Asyncio,
            "uvloop" => AsgiLoop::Uvloop,
            other => return Err(format!("{other:?} is not one of auto, asyncio, uvloop")),
        };
        Ok(())
    },
};

/// `asgi_lifespan`: the ASGI lifespan protocol.
pub static ASGI_LIFESPAN: Setting = Setting {
    key: "asgi_lifespan",
    flags: &["--asgi-lifespan"],
    arity: Arity::Value { metavar: "STRING" },
    kind: Kind::Str,
    section: Section::Worker,
    default: "auto",
    summary: "ASGI lifespan protocol: auto, on or off",
    doc: "With -k asgi, each worker sends lifespan.startup after loading the app and \
          serves only once the app answers lifespan.startup.complete; \
          lifespan.startup.failed fails the worker's boot (exit status 3) with the \
          app's message. lifespan.shutdown is sent on a graceful stop after the \
          last request. auto serves an app that raises on the lifespan scope \
          without it; on treats that as a boot failure; off never sends lifespan \
          events.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.asgi_lifespan = match v.trim() {
            "auto" => Lifespan::Auto,
            "on" => Lifespan::On,
            "off" => Lifespan::Off,
            other => return Err(format!("{other:?} is not one of auto, on, off")),
        };
        Ok(())
    },
};

/// `websocket_max_message_size`: the largest WebSocket message accepted.
pub static WEBSOCKET_MAX_MESSAGE_SIZE: Setting = Setting {
    key: "websocket_max_message_size",
    flags: &["--websocket-max-message-size"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Worker,
    default: "16777216",
    summary: "Largest WebSocket message, in bytes, an ASGI app is given",
    doc: "A client message (all its fragments together) larger than this closes \
          the WebSocket with status 1009 (message too big). An rgunicorn extension; \
          Uvicorn's ws_max_size has the same default, 16 MiB.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.websocket_max_message_size = parse_positive(v)?;
        Ok(())
    },
};
