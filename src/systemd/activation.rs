//! Socket activation, sd_listen_fds(3): LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES.
//!
//! Parsing takes the environment as a lookup function so it can be tested without
//! touching the process environment. The caller removes the variables before
//! Python starts, so the application never sees them (and never re-adopts fds).

use std::os::fd::RawFd;

/// The first passed file descriptor, per sd_listen_fds(3).
pub const LISTEN_FDS_START: RawFd = 3;

/// One socket passed by the service manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passed {
    /// The descriptor number.
    pub fd: RawFd,
    /// Its FileDescriptorName= (systemd defaults it to the socket unit's name).
    pub name: String,
}

/// Why the activation variables were unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActivationError {
    /// LISTEN_FDS is not a number.
    #[error("invalid LISTEN_FDS {0:?}")]
    InvalidCount(String),
}

/// The sockets passed to process `pid`, or none when the variables are absent or
/// meant for another process (LISTEN_PID differs).
///
/// # Errors
/// [`ActivationError`] when LISTEN_FDS is present, meant for us, and malformed.
pub fn passed_fds(
    env: &dyn Fn(&str) -> Option<String>,
    pid: u32,
) -> Result<Vec<Passed>, ActivationError> {
    let Some(listen_pid) = env("LISTEN_PID") else {
        return Ok(Vec::new());
    };
    if listen_pid.trim().parse::<u32>().ok() != Some(pid) {
        return Ok(Vec::new());
    }
    let Some(count) = env("LISTEN_FDS") else {
        return Ok(Vec::new());
    };
    let count: RawFd = count
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=4096).contains(n))
        .ok_or_else(|| ActivationError::InvalidCount(count.clone()))?;
    let names = env("LISTEN_FDNAMES").unwrap_or_default();
    let mut names = names.split(':');
    Ok((0..count)
        .map(|i| Passed {
            fd: LISTEN_FDS_START + i,
            name: names
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("unknown")
                .to_owned(),
        })
        .collect())
}

/// The variables to remove once the fds are taken.
pub const VARIABLES: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn fds_with_names_for_our_pid() {
        let e = env(&[
            ("LISTEN_PID", "42"),
            ("LISTEN_FDS", "2"),
            ("LISTEN_FDNAMES", "web:admin"),
        ]);
        assert_eq!(
            passed_fds(&e, 42).unwrap(),
            vec![
                Passed {
                    fd: 3,
                    name: "web".into()
                },
                Passed {
                    fd: 4,
                    name: "admin".into()
                }
            ]
        );
    }

    #[test]
    fn other_pid_or_missing_vars_pass_nothing() {
        let e = env(&[("LISTEN_PID", "41"), ("LISTEN_FDS", "2")]);
        assert!(passed_fds(&e, 42).unwrap().is_empty());
        assert!(passed_fds(&env(&[]), 42).unwrap().is_empty());
    }

    #[test]
    fn missing_names_default_to_unknown() {
        let e = env(&[("LISTEN_PID", "7"), ("LISTEN_FDS", "1")]);
        assert_eq!(passed_fds(&e, 7).unwrap()[0].name, "unknown");
    }

    #[test]
    fn malformed_count_is_an_error() {
        let e = env(&[("LISTEN_PID", "7"), ("LISTEN_FDS", "x")]);
        assert_eq!(
            passed_fds(&e, 7),
            Err(ActivationError::InvalidCount("x".into()))
        );
    }
}
