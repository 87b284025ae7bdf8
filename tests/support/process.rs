//! What the harness reads about processes from `/proc`: a master's children
//! (its workers), their state, and their memory.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

/// Direct children of `pid`, from `/proc/<pid>/task/<pid>/children`, falling
/// back to scanning `/proc/*/stat` where that file doesn't exist.
pub fn children_of(pid: Pid) -> Vec<Pid> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let mut pids: Vec<Pid> = match fs::read_to_string(&path) {
        Ok(s) => s
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .map(Pid::from_raw)
            .collect(),
        Err(_) => scan_children(pid),
    };
    // A worker that just died but isn't reaped yet is not a worker.
    pids.retain(|p| process_state(*p).is_some_and(|s| s != 'Z'));
    pids.sort();
    pids
}

fn scan_children(parent: Pid) -> Vec<Pid> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .map(Pid::from_raw)
        .filter(|p| stat_fields(*p).is_some_and(|(_, ppid)| ppid == parent.as_raw()))
        .collect()
}

/// (state, ppid) from `/proc/<pid>/stat`.
fn stat_fields(pid: Pid) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

/// The process state letter (R, S, Z, ..), or None if it doesn't exist.
pub fn process_state(pid: Pid) -> Option<char> {
    stat_fields(pid).map(|(s, _)| s)
}

/// True while `pid` exists and isn't a zombie.
pub fn alive(pid: Pid) -> bool {
    process_state(pid).is_some_and(|s| s != 'Z')
}

/// Polls until `pid` is gone (or a zombie); false on timeout.
pub fn wait_gone(pid: Pid, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A `/proc/<pid>/status` field in KiB (e.g. "VmHWM", "VmRSS").
pub fn proc_status_kib(pid: Pid, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}
