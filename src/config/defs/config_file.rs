//! Config file and debugging settings.

use crate::config::{Arity, Kind, Process, Section, Setting, Support, parse_bool};

/// `config`: the config file to read.
pub static CONFIG: Setting = Setting {
    key: "config",
    flags: &["-c", "--config"],
    arity: Arity::Value { metavar: "CONFIG" },
    kind: Kind::Str,
    section: Section::Config,
    default: "./gunicorn.conf.py",
    summary: "The Gunicorn config file",
    doc: "A Python file (gunicorn.conf.py style, run by the embedded interpreter), \
          python:MODULE, or an INI file (.ini or .conf) with a [rgunicorn] section \
          whose keys are setting names. ./gunicorn.conf.py is read when present and \
          no config file is named.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.config_file = (!v.is_empty()).then(|| v.to_owned());
        Ok(())
    },
};

/// `wsgi_app`: the application, as a setting.
pub static WSGI_APP: Setting = Setting {
    key: "wsgi_app",
    flags: &[],
    arity: Arity::Value { metavar: "STRING" },
    kind: Kind::Str,
    section: Section::Config,
    default: "None",
    summary: "A WSGI application path in pattern $(MODULE_NAME):$(VARIABLE_NAME)",
    doc: "The APP_MODULE argument, for config files (an INI instance file names its \
          app here). The command-line argument takes precedence.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        if v.trim().is_empty() {
            return Err("expected module[:expression]".into());
        }
        c.app_uri = v.trim().to_owned();
        Ok(())
    },
};

/// `check_config`: validate and exit.
pub static CHECK_CONFIG: Setting = Setting {
    key: "check_config",
    flags: &["--check-config"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Config,
    default: "False",
    summary: "Check the configuration and exit",
    doc: "Resolves every setting, loads the application, and exits 0 when both \
          succeed (2 for a bad setting, 4 when the app cannot be loaded).",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.check_config = parse_bool(v)?;
        Ok(())
    },
};

/// `print_config`: print the effective configuration and exit.
pub static PRINT_CONFIG: Setting = Setting {
    key: "print_config",
    flags: &["--print-config"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Config,
    default: "False",
    summary: "Print the configuration settings as fully resolved",
    doc: "Prints every setting's effective value and where it came from (default, \
          environment, config file and line, or command line), then exits.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.print_config = parse_bool(v)?;
        Ok(())
    },
};

not_yet!(
    SPEW,
    "spew",
    ["--spew"],
    Arity::Switch { value: "true" },
    Kind::Bool,
    Section::Config,
    "False",
    "Install a trace function that spews every line executed",
    Process::Worker
);

/// `reload`: restart workers when code changes.
pub static RELOAD: Setting = Setting {
    key: "reload",
    flags: &["--reload"],
    arity: Arity::Switch { value: "true" },
    kind: Kind::Bool,
    section: Section::Config,
    default: "False",
    summary: "Restart workers when code changes",
    doc: "Each worker watches the files of the modules it imported (and reload_extra_files) with inotify and, when one changes, finishes its requests and exits; the master starts a fresh worker that imports the new code. An app that fails \
          to load is answered with a 500 showing the error until the next change, \
          instead of stopping the server. For development.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.reload = parse_bool(v)?;
        Ok(())
    },
};

/// `reload_engine`: the implementation that should be used to power reload.
pub static RELOAD_ENGINE: Setting = Setting {
    key: "reload_engine",
    flags: &["--reload-engine"],
    arity: Arity::Value { metavar: "STRING" },
    kind: Kind::Str,
    section: Section::Config,
    default: "auto",
    summary: "The implementation that should be used to power reload",
    doc: "auto or inotify (both use inotify). poll is refused: inotify is always available on Linux.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |_, v| match v.trim() {
        "auto" | "inotify" => Ok(()),
        _ => Err("expected auto or inotify".into()),
    },
};

/// `reload_extra_files`: extends reload option to also watch and reload on additional files.
pub static RELOAD_EXTRA_FILES: Setting = Setting {
    key: "reload_extra_files",
    flags: &["--reload-extra-file"],
    arity: Arity::Value { metavar: "FILES" },
    kind: Kind::List,
    section: Section::Config,
    default: "",
    summary: "Extends reload option to also watch and reload on additional files",
    doc: "e.g. templates or configuration files. May be given several times.",
    env_fallback: None,
    process: Process::Worker,
    support: Support::Full,
    apply: |c, v| {
        c.reload_extra_files.push(std::path::PathBuf::from(v));
        Ok(())
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn wsgi_app_is_trimmed_and_required() {
        let mut c = Config::default();
        assert!((WSGI_APP.apply)(&mut c, " ").is_err());
        (WSGI_APP.apply)(&mut c, " hello:app ").unwrap();
        assert_eq!(c.app_uri, "hello:app");
    }

    #[test]
    fn check_and_print_are_switches() {
        let mut c = Config::default();
        (CHECK_CONFIG.apply)(&mut c, "true").unwrap();
        (PRINT_CONFIG.apply)(&mut c, "yes").unwrap();
        assert!(c.check_config && c.print_config);
    }
}
