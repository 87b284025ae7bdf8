//! Process titles, as `ps` and `/proc/PID/cmdline` show them:
//! `rgunicorn: master [NAME]` and `rgunicorn: worker [NAME]` (Gunicorn's,
//! with our name), NAME being `proc_name`, else the application spec.
//!
//! Linux has no call to set the command line: it is whatever lies in the memory
//! range the kernel filled with argv (and, directly after it, the environment
//! strings) at exec. The setproctitle(3) technique, as Python's `setproctitle`
//! and PostgreSQL use it:
//! 1. [`init`], first thing in `main` while the process is single-threaded,
//!    copies every argv and environ string to the heap and repoints `argv[i]`,
//!    `environ[i]` and glibc's `program_invocation_name` at the copies, so the
//!    original range is free — `std::env::args`, `getenv` and CPython (started
//!    later) all read the copies.
//! 2. [`set`] writes the title over that range, NUL-padded. When the title is
//!    shorter than argv, the last byte of the argv part is made non-NUL: the
//!    kernel then reads the title only up to its NUL (proc(5), "cmdline").
//!    The 15-byte `comm` (`ps -o comm`, `top`) is set with prctl(PR_SET_NAME).
//!
//! argv's address comes from glibc, which passes `(argc, argv, envp)` to
//! `.init_array` functions (the Rust standard library reads argv the same way).
//! Those addresses are the one piece of process-wide state this module keeps:
//! they describe memory that is itself process-wide.

use std::ffi::{CStr, c_char, c_int};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

use crate::config::Config;

/// Which process a title is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The arbiter.
    Master,
    /// A worker.
    Worker,
}

/// argc and argv as glibc passed them to `.init_array`.
static ARGC: AtomicUsize = AtomicUsize::new(0);
static ARGV: AtomicPtr<*mut c_char> = AtomicPtr::new(std::ptr::null_mut());

/// The writable title range, set by [`init`]: start, length, and the offset
/// just past the last argv string (the kernel's `arg_end`).
static AREA_START: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static AREA_LEN: AtomicUsize = AtomicUsize::new(0);
static ARG_END: AtomicUsize = AtomicUsize::new(0);
static INITIALISED: AtomicBool = AtomicBool::new(false);

unsafe extern "C" {
    static mut environ: *mut *mut c_char;
    static mut program_invocation_name: *mut c_char;
    static mut program_invocation_short_name: *mut c_char;
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[unsafe(link_section = ".init_array")]
static CAPTURE_ARGV: extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) = capture_argv;

extern "C" fn capture_argv(argc: c_int, argv: *mut *mut c_char, _envp: *mut *mut c_char) {
    ARGC.store(usize::try_from(argc).unwrap_or(0), Ordering::Relaxed);
    ARGV.store(argv, Ordering::Relaxed);
}

/// The title for `role`: `rgunicorn: master [NAME]`.
pub fn title(role: Role, config: &Config) -> String {
    let role = match role {
        Role::Master => "master",
        Role::Worker => "worker",
    };
    format!("rgunicorn: {role} [{}]", name(config))
}

/// NAME in the title: `proc_name`, else the application spec, else
/// `default_proc_name`.
pub fn name(config: &Config) -> &str {
    match &config.proc_name {
        Some(n) if !n.is_empty() => n,
        _ if !config.app_uri.is_empty() => &config.app_uri,
        _ => &config.default_proc_name,
    }
}

/// Free the argv/environ memory for [`set`] by moving its strings to the heap.
/// Idempotent; a no-op where argv is unknown (non-glibc).
///
/// Call it first thing in `main`: no other thread may exist (nothing may read
/// `environ` meanwhile), and CPython must not have started (it keeps pointers
/// into argv).
pub fn init() {
    if INITIALISED.swap(true, Ordering::SeqCst) {
        return;
    }
    let argc = ARGC.load(Ordering::Relaxed);
    let argv = ARGV.load(Ordering::Relaxed);
    if argc == 0 || argv.is_null() {
        return;
    }
    // SAFETY: argv/argc came from glibc for this process: argc valid string
    // pointers. environ is the NULL-terminated environment array. We are
    // single-threaded (the caller's contract), so nobody reads the pointers we
    // replace while we replace them. strdup'd copies are never freed.
    unsafe {
        let start = *argv as *mut u8;
        if start.is_null() {
            return;
        }
        let mut end = start;
        for i in 0..argc {
            end = extend_contiguous(end, *argv.add(i));
        }
        let arg_end = end;
        let env = environ;
        if !env.is_null() {
            let mut i = 0;
            while !(*env.add(i)).is_null() {
                end = extend_contiguous(end, *env.add(i));
                i += 1;
            }
        }
        let name_ptr = program_invocation_name;
        let short_ptr = program_invocation_short_name;
        for i in 0..argc {
            let copy = libc::strdup(*argv.add(i));
            if !copy.is_null() {
                *argv.add(i) = copy;
            }
        }
        if !env.is_null() {
            let mut i = 0;
            while !(*env.add(i)).is_null() {
                let copy = libc::strdup(*env.add(i));
                if !copy.is_null() {
                    *env.add(i) = copy;
                }
                i += 1;
            }
        }
        if in_range(name_ptr as *const u8, start, end) {
            let copy = libc::strdup(name_ptr);
            if !copy.is_null() {
                program_invocation_name = copy;
                if in_range(short_ptr as *const u8, name_ptr as *const u8, end) {
                    program_invocation_short_name = copy.offset(short_ptr.offset_from(name_ptr));
                }
            }
        }
        AREA_START.store(start, Ordering::Relaxed);
        AREA_LEN.store(end.offset_from(start) as usize, Ordering::Relaxed);
        ARG_END.store(arg_end.offset_from(start) as usize, Ordering::Relaxed);
    }
}

/// If `s` starts exactly at `end`, the range grows past `s` and its NUL.
///
/// # Safety
/// `s` is null or a valid NUL-terminated string.
unsafe fn extend_contiguous(end: *mut u8, s: *mut c_char) -> *mut u8 {
    if s.is_null() || s as *mut u8 != end {
        return end;
    }
    // SAFETY: s is a valid C string (caller), so s + len + 1 is one past its NUL.
    unsafe { end.add(CStr::from_ptr(s).to_bytes().len() + 1) }
}

fn in_range(p: *const u8, start: *const u8, end: *const u8) -> bool {
    !p.is_null() && p >= start && p < end
}

/// Set the process title (and the 15-byte `comm`). Before [`init`], only `comm`
/// changes.
pub fn set(title: &str) {
    set_comm(title);
    let start = AREA_START.load(Ordering::Relaxed);
    let len = AREA_LEN.load(Ordering::Relaxed);
    if start.is_null() || len == 0 {
        return;
    }
    // SAFETY: [start, start+len) is the argv+environ string memory that `init`
    // moved every reader away from; only this function writes it, and the
    // worker and master each own their copy (after fork).
    let area = unsafe { std::slice::from_raw_parts_mut(start, len) };
    fill(area, ARG_END.load(Ordering::Relaxed), title.as_bytes());
}

/// Write `title` into `area` as the kernel will read it back (see the module doc).
fn fill(area: &mut [u8], arg_end: usize, title: &[u8]) {
    if area.is_empty() {
        return;
    }
    let n = title.len().min(area.len() - 1);
    area[..n].copy_from_slice(&title[..n]);
    area[n..].fill(0);
    if arg_end > n + 1 && arg_end <= area.len() {
        area[arg_end - 1] = b' ';
    }
}

fn set_comm(title: &str) {
    let mut comm = [0u8; 16];
    let n = title.len().min(15);
    comm[..n].copy_from_slice(&title.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr(), 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What /proc/PID/cmdline returns for `area` (proc(5)).
    fn kernel_view(area: &[u8], arg_end: usize) -> Vec<u8> {
        if area[arg_end - 1] != 0 {
            let end = area
                .iter()
                .position(|&b| b == 0)
                .map_or(area.len(), |p| p + 1);
            area[..end].to_vec()
        } else {
            area[..arg_end].to_vec()
        }
    }

    #[test]
    fn a_short_title_reads_back_alone() {
        let mut area = *b"/usr/bin/rgunicorn\0--workers\0\x34\0hello:app\0HOME=/root\0";
        let arg_end = 41;
        fill(&mut area, arg_end, b"rgunicorn: master [hello:app]");
        assert_eq!(
            kernel_view(&area, arg_end),
            b"rgunicorn: master [hello:app]\0"
        );
    }

    #[test]
    fn a_title_longer_than_argv_spills_into_environ() {
        let mut area = *b"rg\0x\0HOME=/root\0PATH=/usr/bin\0";
        fill(&mut area, 5, b"rgunicorn: worker [x]");
        assert_eq!(kernel_view(&area, 5), b"rgunicorn: worker [x]\0");
    }

    #[test]
    fn a_title_longer_than_everything_is_truncated() {
        let mut area = *b"rg\0x\0";
        fill(&mut area, 5, b"rgunicorn: worker [x]");
        assert_eq!(&area, b"rgun\0");
    }

    #[test]
    fn the_name_is_proc_name_else_the_app() {
        let mut c = Config::default();
        c.app_uri = "hello:app".into();
        assert_eq!(title(Role::Master, &c), "rgunicorn: master [hello:app]");
        c.proc_name = Some("site".into());
        assert_eq!(title(Role::Worker, &c), "rgunicorn: worker [site]");
        c.proc_name = None;
        c.app_uri.clear();
        assert_eq!(name(&c), "rgunicorn");
    }

    #[test]
    fn set_changes_proc_self_cmdline_and_keeps_args() {
        // In a child: the title is process-wide and init wants one thread (after
        // fork there is one).
        // SAFETY: the child reads files, checks, and _exits.
        match unsafe { libc::fork() } {
            0 => {
                let args_before: Vec<String> = std::env::args().collect();
                init();
                set("rgunicorn: worker [test]");
                let cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
                let comm = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
                let ok = (ARGV.load(Ordering::Relaxed).is_null()
                    || cmdline == b"rgunicorn: worker [test]\0")
                    && comm == "rgunicorn: work\n"
                    && std::env::args().collect::<Vec<_>>() == args_before
                    && std::env::var_os("PATH").is_some();
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
