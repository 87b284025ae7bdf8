//! The only integration-test target (`autotests = false`): spawns the real
//! `rgunicorn` binary against the Python apps in `tests/apps/`.
//!
//! Each module is one behaviour area; the harness lives in `support`.
//! Run with `cargo test --test integration -- --test-threads=2`.

mod support;

mod asgi;
mod asgi_websocket;
mod cli;
mod corpus;
mod edge;
mod errors;
mod frameworks;
mod keepalive;
mod logconfig;
mod logging;
mod metrics;
mod notify;
mod operations;
mod parity;
mod serve;
mod signals;
mod statsd;
mod stdio;
mod syslog;
mod tls;
mod upload;
mod virtualenv;
mod wsgi;

mod activation;
mod config;
mod lifecycle;
mod pid1;
mod systemd;
mod threads;
