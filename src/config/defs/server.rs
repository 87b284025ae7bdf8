//! Server mechanics: the Python environment the application is loaded into.

use std::path::PathBuf;

use crate::config::{Arity, Kind, Process, Section, Setting, Support};

/// `chdir`: working directory before loading the app.
pub static CHDIR: Setting = Setting {
    key: "chdir",
    flags: &["--chdir"],
    arity: Arity::Value { metavar: "DIR" },
    kind: Kind::Str,
    section: Section::Server,
    default: "",
    summary: "Change directory to the specified directory before loading apps",
    doc: "The directory is also put first on sys.path, so the app module is found there.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
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
    kind: Kind::Str,
    section: Section::Server,
    default: "",
    summary: "A comma-separated list of directories to add to the Python path",
    doc: "e.g. '/home/djangoprojects/myproject,/home/python/mylibrary'.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
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
    kind: Kind::Str,
    section: Section::Server,
    default: "",
    summary: "Import packages from this virtualenv (default: $VIRTUAL_ENV)",
    doc: "The embedded interpreter starts as DIR/bin/python would, so the venv's \
          site-packages are importable. The venv must have been made by the same \
          Python version rgunicorn embeds. Not in Gunicorn, which runs inside the venv.",
    env_fallback: Some("VIRTUAL_ENV"),
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        if v.is_empty() {
            return Err("expected a directory".into());
        }
        c.virtualenv = Some(PathBuf::from(v));
        Ok(())
    },
};

/// `raw_env`: environment variables for the app.
pub static RAW_ENV: Setting = Setting {
    key: "raw_env",
    flags: &["-e", "--env"],
    arity: Arity::Value { metavar: "ENV" },
    kind: Kind::List,
    section: Section::Server,
    default: "",
    summary: "Set environment variables in the execution environment",
    doc: "KEY=VALUE; may be given several times. Set in the master before the \
          application is loaded, so workers inherit them.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        let (k, val) = v.split_once('=').ok_or("expected KEY=VALUE")?;
        if k.is_empty() || k.contains('\0') || val.contains('\0') {
            return Err("expected KEY=VALUE".into());
        }
        c.raw_env.push((k.to_owned(), val.to_owned()));
        Ok(())
    },
};

/// `sendfile`: use sendfile(2) for file responses.
pub static SENDFILE: Setting = Setting {
    key: "sendfile",
    flags: &["--no-sendfile"],
    arity: Arity::Switch { value: "false" },
    kind: Kind::Bool,
    section: Section::Server,
    default: "True",
    summary: "Disables the use of sendfile()",
    doc: "wsgi.file_wrapper responses over regular files are sent with sendfile(2) \
          unless this is false. Unlike Gunicorn (where `sendfile = True` in a config \
          file turns sendfile off, and SENDFILE in the environment overrides it), the \
          value means what it says and no environment variable changes it.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.sendfile_enabled = crate::config::parse_bool(v)?;
        Ok(())
    },
};

/// `header_map`: request headers whose names contain `_`.
pub static HEADER_MAP: Setting = Setting {
    key: "header_map",
    flags: &["--header-map"],
    arity: Arity::Value { metavar: "MODE" },
    kind: Kind::Str,
    section: Section::Server,
    default: "drop",
    summary: "Configure how header field names are mapped into environ",
    doc: "drop (default): silently drop headers whose names contain _, which could \
          otherwise spoof a header a proxy set with -; refuse: answer 400; \
          dangerous: pass them mapped like any other header.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.header_map = match v.trim().to_ascii_lowercase().as_str() {
            "drop" => crate::config::HeaderMap::Drop,
            "refuse" => crate::config::HeaderMap::Refuse,
            "dangerous" => crate::config::HeaderMap::Dangerous,
            _ => return Err("expected drop, refuse or dangerous".into()),
        };
        Ok(())
    },
};

not_yet!(
    TMP_UPLOAD_DIR,
    "tmp_upload_dir",
    [],
    Arity::Value { metavar: "DIR" },
    Kind::Str,
    Section::Server,
    "None",
    "Directory to store temporary request data",
    Process::Worker
);
not_yet!(
    PASTE,
    "paste",
    ["--paste", "--paster"],
    Arity::Value { metavar: "STRING" },
    Kind::Str,
    Section::Server,
    "None",
    "Load a PasteDeploy config file",
    Process::Master
);
not_yet!(
    RAW_PASTE_GLOBAL_CONF,
    "raw_paste_global_conf",
    ["--paste-global"],
    Arity::Value { metavar: "CONF" },
    Kind::List,
    Section::Server,
    "",
    "Set a PasteDeploy global config variable in key=value form",
    Process::Master
);

/// `worker_tmp_dir`: not needed; heartbeats live in shared memory.
pub static WORKER_TMP_DIR: Setting = Setting {
    key: "worker_tmp_dir",
    flags: &["--worker-tmp-dir"],
    arity: Arity::Value { metavar: "DIR" },
    kind: Kind::Str,
    section: Section::Server,
    default: "None",
    summary: "A directory to use for the worker heartbeat temporary file",
    doc: "Accepted and unused: rgunicorn's worker heartbeat lives in shared memory, \
          not in a file, so there is nothing to put on a tmpfs.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |_, _| Ok(()),
};

/// `preload_app`: load application code before the worker processes are forked.
pub static PRELOAD_APP: Setting = Setting {
    key: "preload_app",
    flags: &["--preload"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Server,
    default: "False",
    summary: "Load application code before the worker processes are forked",
    doc: "The master imports the app once and freezes the garbage collector before forking, so workers share its memory. Unlike Gunicorn, SIGHUP still loads new code: the master re-executes itself to get a fresh interpreter.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.preload_app = crate::config::parse_bool(v)?;
        Ok(())
    },
};

/// `daemon`: daemonize the Gunicorn process.
pub static DAEMON: Setting = Setting {
    key: "daemon",
    flags: &["-D", "--daemon"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Server,
    default: "False",
    summary: "Daemonize the Gunicorn process",
    doc: "Detaches the server from the controlling terminal and enters the background. Not needed, and best avoided, under systemd.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.daemon = crate::config::parse_bool(v)?;
        Ok(())
    },
};

/// `pidfile`: a filename to use for the PID file.
pub static PIDFILE: Setting = Setting {
    key: "pidfile",
    flags: &["-p", "--pid"],
    arity: Arity::Value { metavar: "FILE" },
    kind: Kind::Str,
    section: Section::Server,
    default: "None",
    summary: "A filename to use for the PID file",
    doc: "Written by the master at start and removed at exit. During a USR2 upgrade the new master writes FILE.2 until the old one exits.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.pidfile = (!v.is_empty()).then(|| PathBuf::from(v));
        Ok(())
    },
};

/// `user`: switch worker processes to run as this user.
pub static USER: Setting = Setting {
    key: "user",
    flags: &["-u", "--user"],
    arity: Arity::Value { metavar: "USER" },
    kind: Kind::Str,
    section: Section::Server,
    default: "None",
    summary: "Switch worker processes to run as this user",
    doc: "A user name or numeric uid. Workers drop to it after fork, before loading the app; the master keeps its privileges to bind and signal. Log files and unix sockets are handed to the user.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.user = (!v.is_empty()).then(|| v.to_owned());
        Ok(())
    },
};

/// `group`: switch worker process to run as this group.
pub static GROUP: Setting = Setting {
    key: "group",
    flags: &["-g", "--group"],
    arity: Arity::Value { metavar: "GROUP" },
    kind: Kind::Str,
    section: Section::Server,
    default: "None",
    summary: "Switch worker process to run as this group",
    doc: "A group name or numeric gid. Defaults to the user's primary group when user is set.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.group = (!v.is_empty()).then(|| v.to_owned());
        Ok(())
    },
};

/// `umask`: a bit mask for the file mode on files written by Gunicorn.
pub static UMASK: Setting = Setting {
    key: "umask",
    flags: &["-m", "--umask"],
    arity: Arity::Value { metavar: "INT" },
    kind: Kind::Int,
    section: Section::Server,
    default: "0",
    summary: "A bit mask for the file mode on files written by Gunicorn",
    doc: "Decimal, or octal with a leading 0 or 0o (e.g. 0o22). Applied in the master, so unix sockets, log files and workers inherit it.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.umask = parse_umask(v)?;
        Ok(())
    },
};

/// `initgroups`: set supplementary groups of the worker from the user's groups.
pub static INITGROUPS: Setting = Setting {
    key: "initgroups",
    flags: &["--initgroups"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Server,
    default: "False",
    summary: "Set supplementary groups of the worker from the user's groups",
    doc: "With user set, workers also get the user's supplementary groups from the group database.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.initgroups = crate::config::parse_bool(v)?;
        Ok(())
    },
};

/// Gunicorn's `auto_int`: decimal, 0o/0x prefixes, or a leading 0 for octal.
fn parse_umask(v: &str) -> Result<u32, String> {
    let v = v.trim();
    let parsed = if let Some(o) = v.strip_prefix("0o").or_else(|| v.strip_prefix("0O")) {
        u32::from_str_radix(o, 8)
    } else if let Some(x) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(x, 16)
    } else if v.len() > 1 && v.starts_with('0') {
        u32::from_str_radix(&v[1..], 8)
    } else {
        v.parse()
    };
    parsed
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| "expected a mode between 0 and 0o777".into())
}

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
