//! `--reload`: notice that the application's source changed.
//!
//! After the app is imported, the worker watches the file of every module in
//! `sys.modules` plus `reload_extra_files`. A change makes the worker stop
//! gracefully (exit 0); the master forks a fresh worker, which imports the new
//! code. This is Gunicorn's `reload_engine = inotify`.
//!
//! inotify(7) watches *directories*, not the files: editors save by writing a
//! temporary file and renaming it over the original, which replaces the inode a
//! file watch would be attached to. Events are matched against the watched
//! names, so unrelated files in the same directory (logs, editor swap files)
//! do not trigger a reload. The inotify descriptor is non-blocking and lives in
//! the worker's epoll set; it is read to WouldBlock on each readiness edge.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Events that mean "this name now has new content, or is gone".
const MASK: u32 =
    libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_CREATE | libc::IN_DELETE | libc::IN_ONLYDIR;

/// Size of `struct inotify_event` without its name.
const EVENT_HEADER: usize = 16;

/// Watches a set of files through their directories.
pub(super) struct Watcher {
    fd: OwnedFd,
    /// Watch descriptor → (directory, watched file names in it).
    dirs: BTreeMap<i32, (PathBuf, BTreeSet<OsString>)>,
    /// The first watched file seen changing.
    first: Option<PathBuf>,
}

impl Watcher {
    /// Watch `files`. Directories that cannot be watched are logged and skipped.
    ///
    /// # Errors
    /// inotify_init1(2) failed (e.g. the per-user instance limit).
    pub(super) fn new(files: impl IntoIterator<Item = PathBuf>) -> io::Result<Watcher> {
        // SAFETY: plain syscall; the result is checked before use.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: inotify_init1 returned a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut watcher = Watcher {
            fd,
            dirs: BTreeMap::new(),
            first: None,
        };
        for (dir, names) in by_directory(files) {
            match watcher.add_dir(&dir) {
                Ok(wd) => {
                    let entry = watcher
                        .dirs
                        .entry(wd)
                        .or_insert_with(|| (dir.clone(), BTreeSet::new()));
                    entry.1.extend(names);
                }
                Err(e) => {
                    crate::log::warning(&format!("cannot watch {} for changes: {e}", dir.display()))
                }
            }
        }
        Ok(watcher)
    }

    fn add_dir(&self, dir: &Path) -> io::Result<i32> {
        let c = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: c is a valid NUL-terminated path; the fd is our inotify instance.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), c.as_ptr(), MASK) };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(wd)
    }

    /// The descriptor to register for readability.
    pub(super) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Number of directories watched.
    pub(super) fn watched_dirs(&self) -> usize {
        self.dirs.len()
    }

    /// The first watched file seen changing, if any.
    pub(super) fn first_change(&self) -> Option<PathBuf> {
        self.first.clone()
    }

    /// Read every pending event. Returns the first watched file that changed in
    /// this batch, if any.
    ///
    /// # Errors
    /// read(2) failed with something other than WouldBlock.
    pub(super) fn read_changes(&mut self) -> io::Result<Option<PathBuf>> {
        // Aligned for inotify_event; large enough for several events with names.
        let mut buf = [0u64; 1024];
        let mut found = None;
        loop {
            // SAFETY: buf is valid writable memory of the given byte length.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    std::mem::size_of_val(&buf),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => break,
                    _ => return Err(e),
                }
            }
            if n == 0 {
                break;
            }
            let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
            for event in parse_events(&bytes[..n as usize]) {
                if found.is_none()
                    && let Some(path) = self.match_event(&event)
                {
                    found = Some(path);
                }
            }
        }
        if self.first.is_none() {
            self.first.clone_from(&found);
        }
        Ok(found)
    }

    fn match_event(&self, event: &RawEvent<'_>) -> Option<PathBuf> {
        if event.mask & libc::IN_Q_OVERFLOW != 0 {
            // Events were lost; one of them may have been ours.
            return self.dirs.values().next().map(|(dir, _)| dir.clone());
        }
        let (dir, names) = self.dirs.get(&event.wd)?;
        let name = OsStr::from_bytes(event.name);
        names.contains(name).then(|| dir.join(name))
    }
}

/// One `struct inotify_event`, borrowed from the read buffer.
#[derive(Debug, PartialEq, Eq)]
struct RawEvent<'a> {
    wd: i32,
    mask: u32,
    /// The file name inside the watched directory, without NUL padding.
    name: &'a [u8],
}

/// Split a read(2) result into events (wd, mask, cookie, len, name[len]).
fn parse_events(mut bytes: &[u8]) -> Vec<RawEvent<'_>> {
    let mut out = Vec::new();
    while bytes.len() >= EVENT_HEADER {
        let word = |at: usize| [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        let wd = i32::from_ne_bytes(word(0));
        let mask = u32::from_ne_bytes(word(4));
        let len = u32::from_ne_bytes(word(12)) as usize;
        let Some(name) = bytes.get(EVENT_HEADER..EVENT_HEADER + len) else {
            break;
        };
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        out.push(RawEvent {
            wd,
            mask,
            name: &name[..end],
        });
        bytes = &bytes[EVENT_HEADER + len..];
    }
    out
}

/// Group files by directory. A symlinked file is watched both where it is
/// named and where it points, since either may be edited.
fn by_directory(files: impl IntoIterator<Item = PathBuf>) -> BTreeMap<PathBuf, BTreeSet<OsString>> {
    let mut dirs: BTreeMap<PathBuf, BTreeSet<OsString>> = BTreeMap::new();
    for file in files {
        let file = std::path::absolute(&file).unwrap_or(file);
        let canonical = std::fs::canonicalize(&file).ok();
        for path in std::iter::once(file).chain(canonical) {
            if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
                dirs.entry(dir.to_owned())
                    .or_default()
                    .insert(name.to_owned());
            }
        }
    }
    dirs
}

/// The source file of every loaded module, as Gunicorn's reloader collects them:
/// `__file__`, with a compiled `.pyc`/`.pyo` name mapped to its `.py`.
///
/// # Errors
/// `sys.modules` is not a dict.
pub(super) fn module_files(py: Python<'_>) -> PyResult<Vec<PathBuf>> {
    let modules = py.import("sys")?.getattr("modules")?;
    // Copy first: the dict may change while we look (lazy imports).
    let modules = modules.cast::<PyDict>()?.copy()?;
    let mut files = Vec::new();
    for module in modules.values() {
        let Ok(file) = module.getattr("__file__") else {
            continue;
        };
        let Ok(file) = file.extract::<String>() else {
            continue;
        };
        files.push(PathBuf::from(source_of(&file)));
    }
    Ok(files)
}

/// `x.pyc` / `x.pyo` → `x.py`.
fn source_of(file: &str) -> &str {
    match file.strip_suffix('c').or_else(|| file.strip_suffix('o')) {
        Some(base) if base.ends_with(".py") => base,
        _ => file,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rgunicorn-reload-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn compiled_names_map_to_sources() {
        assert_eq!(source_of("/a/app.pyc"), "/a/app.py");
        assert_eq!(source_of("/a/app.pyo"), "/a/app.py");
        assert_eq!(source_of("/a/app.py"), "/a/app.py");
        assert_eq!(source_of("/a/_sre.so"), "/a/_sre.so");
        assert_eq!(source_of("/a/abc"), "/a/abc");
    }

    #[test]
    fn events_are_split_and_names_unpadded() {
        let mut bytes = Vec::new();
        for (wd, mask, name) in [
            (1i32, libc::IN_CLOSE_WRITE, &b"app.py\0\0"[..]),
            (2, libc::IN_DELETE, b""),
        ] {
            bytes.extend(wd.to_ne_bytes());
            bytes.extend(mask.to_ne_bytes());
            bytes.extend(0u32.to_ne_bytes());
            bytes.extend((name.len() as u32).to_ne_bytes());
            bytes.extend(name);
        }
        let events = parse_events(&bytes);
        assert_eq!(
            events,
            vec![
                RawEvent {
                    wd: 1,
                    mask: libc::IN_CLOSE_WRITE,
                    name: b"app.py"
                },
                RawEvent {
                    wd: 2,
                    mask: libc::IN_DELETE,
                    name: b""
                },
            ]
        );
    }

    #[test]
    fn writing_a_watched_file_is_seen() {
        let dir = temp_dir("write");
        let file = dir.join("app.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        let mut w = Watcher::new([file.clone()]).unwrap();
        assert_eq!(w.read_changes().unwrap(), None);
        std::fs::write(&file, "x = 2\n").unwrap();
        assert_eq!(w.read_changes().unwrap(), Some(file.clone()));
        assert_eq!(w.first_change(), Some(file));
    }

    #[test]
    fn replacing_a_watched_file_by_rename_is_seen() {
        let dir = temp_dir("rename");
        let file = dir.join("app.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        let mut w = Watcher::new([file.clone()]).unwrap();
        let tmp = dir.join(".app.py.swp");
        std::fs::write(&tmp, "x = 2\n").unwrap();
        // Only the swap file so far: not a watched name.
        assert_eq!(w.read_changes().unwrap(), None);
        std::fs::rename(&tmp, &file).unwrap();
        assert_eq!(w.read_changes().unwrap(), Some(file));
    }

    #[test]
    fn other_files_in_the_directory_are_ignored() {
        let dir = temp_dir("other");
        let file = dir.join("app.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        let mut w = Watcher::new([file]).unwrap();
        std::fs::write(dir.join("access.log"), "GET /\n").unwrap();
        assert_eq!(w.read_changes().unwrap(), None);
    }

    #[test]
    fn missing_directories_are_skipped() {
        let w = Watcher::new([PathBuf::from("/nonexistent-rgunicorn-dir/app.py")]).unwrap();
        assert_eq!(w.watched_dirs(), 0);
    }
}
