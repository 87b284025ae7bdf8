//! Socket settings: where rgunicorn listens.

use crate::config::{Arity, Kind, Process, Section, Setting, Support, parse_bool, parse_uint};
use crate::listen::Address;

/// `bind`: repeatable listen address.
pub static BIND: Setting = Setting {
    key: "bind",
    flags: &["-b", "--bind"],
    arity: Arity::Value { metavar: "ADDRESS" },
    kind: Kind::List,
    section: Section::Socket,
    default: "",
    summary: "The socket to bind (repeatable)",
    doc: "HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N. May be given several times. \
          Without any bind, and without sockets passed by systemd, rgunicorn binds \
          127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.bind.push(Address::parse(v)?);
        Ok(())
    },
};

/// `backlog`: listen(2) queue length.
pub static BACKLOG: Setting = Setting {
    key: "backlog",
    flags: &["--backlog"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Socket,
    default: "2048",
    summary: "The maximum number of pending connections",
    doc: "Passed to listen(2) for sockets rgunicorn binds itself. Sockets inherited \
          from systemd keep the unit's Backlog=.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        let n: i32 = parse_uint(v)?;
        if n < 1 {
            return Err("must be at least 1".into());
        }
        c.backlog = n;
        Ok(())
    },
};

/// `reuse_port`: SO_REUSEPORT on bound sockets.
pub static REUSE_PORT: Setting = Setting {
    key: "reuse_port",
    flags: &["--reuse-port"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Socket,
    default: "False",
    summary: "Set the SO_REUSEPORT flag on the listening socket",
    doc: "Lets several servers bind the same address; the kernel spreads connections.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.reuse_port = parse_bool(v)?;
        Ok(())
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn bind_accepts_every_address_form_and_repeats() {
        let mut c = Config::default();
        for v in [
            "127.0.0.1:8000",
            "[::1]:9000",
            "unix:/run/app.sock",
            "fd://3",
        ] {
            (BIND.apply)(&mut c, v).unwrap();
        }
        assert_eq!(c.bind.len(), 4);
        assert!((BIND.apply)(&mut c, "localhost:notaport").is_err());
    }

    #[test]
    fn backlog_must_be_positive() {
        let mut c = Config::default();
        assert!((BACKLOG.apply)(&mut c, "0").is_err());
        (BACKLOG.apply)(&mut c, "64").unwrap();
        assert_eq!(c.backlog, 64);
    }
}
