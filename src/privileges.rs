//! Dropping root in a worker: `user`, `group`, `initgroups`.
//!
//! The master keeps its identity (it must be able to bind, re-exec and signal
//! workers); each worker switches right after fork, before it imports the app.
//! The order is the only safe one: the group first (setgid(2) needs the
//! privilege setuid(2) gives up), then the supplementary groups, then the user.
//! A failure is fatal for the worker — serving as root by accident is worse than
//! not serving — and the caller exits with the boot-error status.
//!
//! As in Gunicorn, `group` defaults to the process's current group, and names
//! and numeric ids are both accepted. Unlike Gunicorn, a root process that
//! changes user without `initgroups` also clears its supplementary groups, so
//! root's groups do not leak into the worker.

use std::ffi::CString;

use nix::unistd::{Gid, Group, Uid, User};

/// Why the worker could not take on its configured identity.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// No such user name.
    #[error("no such user {0:?}")]
    UnknownUser(String),
    /// No such group name.
    #[error("no such group {0:?}")]
    UnknownGroup(String),
    /// The user or group database could not be read.
    #[error("cannot look up {name:?}: {source}")]
    Lookup {
        /// The name looked up.
        name: String,
        /// What getpwnam_r/getgrnam_r said.
        source: nix::Error,
    },
    /// `initgroups` needs a user name, but the uid has none.
    #[error("initgroups needs a user name, but uid {0} has no passwd entry")]
    NoUserName(u32),
    /// A set*id call failed (usually: not running as root).
    #[error("{call} failed: {source}")]
    Switch {
        /// The call that failed, with its argument.
        call: String,
        /// The errno.
        source: nix::Error,
    },
}

/// Switch this process to `user` / `group` (names or numeric ids). With
/// `initgroups`, the supplementary groups become the user's from the group
/// database. Nothing happens for settings left unset, or already in effect.
///
/// Only call this in a single-threaded process (a freshly forked worker):
/// set*id(2) are per-thread system calls under glibc's process-wide emulation.
///
/// # Errors
/// A name does not resolve, or a set*id call is refused.
pub fn drop_privileges(
    user: Option<&str>,
    group: Option<&str>,
    initgroups: bool,
) -> Result<(), PrivilegeError> {
    if user.is_none() && group.is_none() {
        return Ok(());
    }
    let uid = user.map(resolve_user).transpose()?;
    let gid = match group {
        Some(g) => resolve_group(g)?,
        None => Gid::current(),
    };
    let changing_user = uid.is_some_and(|u| u != Uid::current());

    if gid != Gid::current() {
        nix::unistd::setgid(gid).map_err(|source| PrivilegeError::Switch {
            call: format!("setgid({gid})"),
            source,
        })?;
    }
    if Uid::effective().is_root() {
        if initgroups && let Some(uid) = uid {
            let name = User::from_uid(uid)
                .ok()
                .flatten()
                .ok_or(PrivilegeError::NoUserName(uid.as_raw()))?
                .name;
            let cname = CString::new(name.clone())
                .map_err(|_| PrivilegeError::UnknownUser(name.clone()))?;
            nix::unistd::initgroups(&cname, gid).map_err(|source| PrivilegeError::Switch {
                call: format!("initgroups({name:?}, {gid})"),
                source,
            })?;
        } else if changing_user {
            nix::unistd::setgroups(&[gid]).map_err(|source| PrivilegeError::Switch {
                call: format!("setgroups([{gid}])"),
                source,
            })?;
        }
    }
    if let Some(uid) = uid
        && changing_user
    {
        nix::unistd::setuid(uid).map_err(|source| PrivilegeError::Switch {
            call: format!("setuid({uid})"),
            source,
        })?;
    }
    Ok(())
}

/// Give the files workers write or serve (unix sockets, log files) to the user
/// and group the workers will run as, so they still work after the drop. Runs in
/// the master, which keeps its privileges.
///
/// # Errors
/// A name does not resolve, or chown(2) is refused.
pub fn hand_over(
    user: Option<&str>,
    group: Option<&str>,
    paths: &[&std::path::Path],
) -> Result<(), PrivilegeError> {
    if user.is_none() && group.is_none() {
        return Ok(());
    }
    let uid = user.map(resolve_user).transpose()?;
    let gid = group.map(resolve_group).transpose()?;
    for path in paths {
        nix::unistd::chown(*path, uid, gid).map_err(|source| PrivilegeError::Switch {
            call: format!("chown({})", path.display()),
            source,
        })?;
    }
    Ok(())
}

/// A user name, or a numeric uid (which need not exist in the database).
fn resolve_user(user: &str) -> Result<Uid, PrivilegeError> {
    if let Some(id) = numeric_id(user) {
        return Ok(Uid::from_raw(id));
    }
    match User::from_name(user) {
        Ok(Some(u)) => Ok(u.uid),
        Ok(None) => Err(PrivilegeError::UnknownUser(user.to_owned())),
        Err(source) => Err(PrivilegeError::Lookup {
            name: user.to_owned(),
            source,
        }),
    }
}

/// A group name, or a numeric gid (which need not exist in the database).
fn resolve_group(group: &str) -> Result<Gid, PrivilegeError> {
    if let Some(id) = numeric_id(group) {
        return Ok(Gid::from_raw(id));
    }
    match Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(PrivilegeError::UnknownGroup(group.to_owned())),
        Err(source) => Err(PrivilegeError::Lookup {
            name: group.to_owned(),
            source,
        }),
    }
}

/// `"65534"` → 65534; names (anything not all digits) → None.
fn numeric_id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_are_taken_as_is() {
        assert_eq!(resolve_user("12345").unwrap(), Uid::from_raw(12345));
        assert_eq!(resolve_group("54321").unwrap(), Gid::from_raw(54321));
        assert_eq!(numeric_id("-1"), None);
        assert_eq!(numeric_id(""), None);
    }

    #[test]
    fn names_resolve_through_the_database() {
        assert_eq!(resolve_user("root").unwrap(), Uid::from_raw(0));
        assert_eq!(resolve_group("root").unwrap(), Gid::from_raw(0));
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!(matches!(
            resolve_user("no-such-user-rgunicorn"),
            Err(PrivilegeError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve_group("no-such-group-rgunicorn"),
            Err(PrivilegeError::UnknownGroup(_))
        ));
    }

    #[test]
    fn nothing_to_do_without_settings() {
        drop_privileges(None, None, false).unwrap();
    }

    #[test]
    fn switching_to_the_current_identity_is_a_no_op() {
        let uid = Uid::current().as_raw().to_string();
        let gid = Gid::current().as_raw().to_string();
        drop_privileges(Some(&uid), Some(&gid), false).unwrap();
        assert_eq!(Uid::current().as_raw().to_string(), uid);
    }

    /// No allocation: this runs in a forked child of a multi-threaded test binary.
    fn supplementary_groups_are_only(gid: libc::gid_t) -> bool {
        let mut groups = [0 as libc::gid_t; 8];
        // SAFETY: the buffer holds `groups.len()` entries.
        let n = unsafe { libc::getgroups(groups.len() as libc::c_int, groups.as_mut_ptr()) };
        n == 1 && groups[0] == gid
    }

    #[test]
    fn a_forked_root_child_becomes_nobody() {
        if !Uid::effective().is_root() {
            return; // needs root; the integration tests cover it under sudo
        }
        // SAFETY: the child only makes syscalls and _exits.
        match unsafe { libc::fork() } {
            0 => {
                let ok = drop_privileges(Some("65534"), Some("65534"), false).is_ok()
                    && Uid::current().as_raw() == 65534
                    && Gid::current().as_raw() == 65534
                    && supplementary_groups_are_only(65534)
                    // Root is gone for good.
                    && nix::unistd::setuid(Uid::from_raw(0)).is_err();
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            pid => {
                let mut status = 0;
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
            }
        }
    }
}
