//! PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2).

/// Which versions a listener accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Text headers only.
    V1,
    /// Binary headers only.
    V2,
    /// Either, told apart by the first byte.
    Any,
}
