//! systemd integration at the edge: socket activation and sd_notify.
//!
//! Nothing here imports `http`, `wsgi` or `python`; everything else may call in.

pub mod activation;
pub mod notify;
