//! The master's PID file, including Gunicorn's `.2` dance during a USR2 upgrade:
//! the new master writes `PIDFILE.2` and renames it to `PIDFILE` once the old
//! master is gone.

use std::io;
use std::path::{Path, PathBuf};

/// A PID file we wrote; removed on drop if it still holds our pid.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    pid: u32,
}

impl Pidfile {
    /// Write `pid` to `path` atomically (temporary file + rename).
    ///
    /// # Errors
    /// The directory is not writable.
    pub fn create(path: &Path, pid: u32) -> io::Result<Pidfile> {
        let tmp = path.with_extension(format!("tmp{pid}"));
        std::fs::write(&tmp, format!("{pid}\n"))?;
        std::fs::rename(&tmp, path)?;
        Ok(Pidfile {
            path: path.to_owned(),
            pid,
        })
    }

    /// The `.2` name used by a master started by USR2.
    pub fn upgrade_path(path: &Path) -> PathBuf {
        let mut s = path.as_os_str().to_owned();
        s.push(".2");
        PathBuf::from(s)
    }

    /// Move the file to `path` (promotion after the old master exited).
    ///
    /// # Errors
    /// rename(2) failed.
    pub fn rename(&mut self, path: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, path)?;
        self.path = path.to_owned();
        Ok(())
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            == Some(self.pid);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_renamed_and_removed_when_ours() {
        let dir = std::env::temp_dir().join(format!("rgunicorn-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let main = dir.join("app.pid");
        let upgrade = Pidfile::upgrade_path(&main);
        assert_eq!(upgrade, dir.join("app.pid.2"));
        let mut p = Pidfile::create(&upgrade, 4242).unwrap();
        assert_eq!(std::fs::read_to_string(&upgrade).unwrap(), "4242\n");
        p.rename(&main).unwrap();
        assert!(!upgrade.exists());
        drop(p);
        assert!(!main.exists());
    }

    #[test]
    fn a_file_taken_over_by_another_pid_is_left_alone() {
        let dir = std::env::temp_dir().join(format!("rgunicorn-pid2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.pid");
        let p = Pidfile::create(&path, 1).unwrap();
        std::fs::write(&path, "2\n").unwrap();
        drop(p);
        assert!(path.exists());
    }
}
