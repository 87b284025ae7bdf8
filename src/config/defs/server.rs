//! Server mechanics: the Python environment the application is loaded into.

use std::path::PathBuf;

use crate::config::{Arity, Process, Section, Setting};

/// `chdir`: working directory before loading the app.
pub static CHDIR: Setting = Setting {
    key: "chdir",
    flags: &["--chdir"],
    arity: Arity::Value { metavar: "DIR" },
    section: Section::Server,
    default: "",
    summary: "Change directory to the specified directory before loading apps",
    doc: "The directory is also put first on sys.path, so the app module is found there.",
    env_fallback: None,
    process: Process::Master,
    apply: |c, v| {
        if v.is_empty() {
            return Err("expected a directory".into());
        }
        c.chdir = Some(PathBuf::from(v));
        Ok(())
    },
};

/// `pythonpath`: extra sys.path entries.
pub static PYTHONPATH: Setting = Setting {
    key: "pythonpath",
    flags: &["--pythonpath"],
    arity: Arity::Value { metavar: "STRING" },
    section: Section::Server,
    default: "",
    summary: "A comma-separated list of directories to add to the Python path",
    doc: "e.g. '/home/djangoprojects/myproject,/home/python/mylibrary'.",
    env_fallback: None,
    process: Process::Master,
    apply: |c, v| {
        c.pythonpath = v
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        Ok(())
    },
};

/// `virtualenv`: rgunicorn's own; a venv whose site-packages the app imports from.
pub static VIRTUALENV: Setting = Setting {
    key: "virtualenv",
    flags: &["--virtualenv"],
    arity: Arity::Value { metavar: "DIR" },
    section: Section::Server,
    default: "",
    summary: "Import packages from this virtualenv (default: $VIRTUAL_ENV)",
    doc: "The embedded interpreter starts as DIR/bin/python would, so the venv's \
          site-packages are importable. The venv must have been made by the same \
          Python version rgunicorn embeds. Not in Gunicorn, which runs inside the venv.",
    env_fallback: Some("VIRTUAL_ENV"),
    process: Process::Master,
    apply: |c, v| {
        if v.is_empty() {
            return Err("expected a directory".into());
        }
        c.virtualenv = Some(PathBuf::from(v));
        Ok(())
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn pythonpath_splits_on_commas() {
        let mut c = Config::default();
        (PYTHONPATH.apply)(&mut c, "/a, /b,,").unwrap();
        assert_eq!(c.pythonpath, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    }

    #[test]
    fn empty_directories_are_refused() {
        let mut c = Config::default();
        assert!((CHDIR.apply)(&mut c, "").is_err());
        assert!((VIRTUALENV.apply)(&mut c, "").is_err());
    }
}
