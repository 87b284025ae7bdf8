//! Process naming settings.

use crate::config::{Arity, Kind, Process, Section, Setting, Support};

not_yet!(
    PROC_NAME,
    "proc_name",
    ["-n", "--name"],
    Arity::Value { metavar: "STRING" },
    Kind::Str,
    Section::ProcessNaming,
    "None",
    "A base to use with setproctitle for process naming",
    Process::Master
);

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
