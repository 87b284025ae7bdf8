//! Process naming settings.

use crate::config::{Arity, Kind, Process, Section, Setting, Support};

/// `proc_name`: a base to use with setproctitle for process naming.
pub static PROC_NAME: Setting = Setting {
    key: "proc_name",
    flags: &["-n", "--name"],
    arity: Arity::Value { metavar: "STRING" },
    kind: Kind::Str,
    section: Section::ProcessNaming,
    default: "None",
    summary: "A base to use with setproctitle for process naming",
    doc: "Process titles become rgunicorn: master [NAME] and rgunicorn: worker [NAME], as ps and top show them. Defaults to the app module.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.proc_name = (!v.is_empty()).then(|| v.to_owned());
        Ok(())
    },
};

/// `default_proc_name`: the name used when `proc_name` is not set.
pub static DEFAULT_PROC_NAME: Setting = Setting {
    key: "default_proc_name",
    flags: &[],
    arity: Arity::Value { metavar: "STRING" },
    kind: Kind::Str,
    section: Section::ProcessNaming,
    default: "rgunicorn",
    summary: "Internal setting that is adjusted for each type of application",
    doc: "The process title base when proc_name is not set.",
    env_fallback: None,
    process: Process::Master,
    support: Support::Full,
    apply: |c, v| {
        c.default_proc_name = v.to_owned();
        Ok(())
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn default_proc_name_is_stored() {
        let mut c = Config::default();
        (DEFAULT_PROC_NAME.apply)(&mut c, "site").unwrap();
        assert_eq!(c.default_proc_name, "site");
    }
}
