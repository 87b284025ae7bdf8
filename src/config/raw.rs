//! RawSettings: what was typed, source by source, before any validation.

use std::fmt;

use super::Setting;

/// Where a value came from, in increasing precedence (Gunicorn's order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A documented environment fallback (PORT, WEB_CONCURRENCY, ...).
    Environment(&'static str),
    /// A config file, with the line when known.
    ConfigFile {
        /// Path as given.
        path: String,
        /// 1-based line number.
        line: Option<usize>,
    },
    /// `RGUNICORN_CMD_ARGS` / `GUNICORN_CMD_ARGS`.
    CmdArgsEnv(&'static str),
    /// The command line.
    CommandLine,
}

impl Source {
    /// Precedence rank: a higher rank replaces a lower one.
    pub fn rank(&self) -> u8 {
        match self {
            Source::Default => 0,
            Source::Environment(_) => 1,
            Source::ConfigFile { .. } => 2,
            Source::CmdArgsEnv(_) => 3,
            Source::CommandLine => 4,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::Environment(var) => write!(f, "environment ${var}"),
            Source::ConfigFile {
                path,
                line: Some(line),
            } => write!(f, "{path}:{line}"),
            Source::ConfigFile { path, line: None } => write!(f, "{path}"),
            Source::CmdArgsEnv(var) => write!(f, "${var}"),
            Source::CommandLine => write!(f, "command line"),
        }
    }
}

/// One typed value.
#[derive(Clone, Debug)]
pub struct RawEntry {
    /// The setting it is for.
    pub setting: &'static Setting,
    /// The value as text (lists: one entry per item).
    pub value: String,
    /// Where it was typed.
    pub source: Source,
}

/// Everything typed, in the order it was read.
#[derive(Clone, Debug, Default)]
pub struct RawSettings {
    /// The entries.
    pub entries: Vec<RawEntry>,
}

impl RawSettings {
    /// Record a value.
    pub fn push(&mut self, setting: &'static Setting, value: impl Into<String>, source: Source) {
        self.entries.push(RawEntry {
            setting,
            value: value.into(),
            source,
        });
    }

    /// Append another source's entries.
    pub fn extend(&mut self, other: RawSettings) {
        self.entries.extend(other.entries);
    }

    /// The winning (highest-precedence, last) value typed for `key`, if any.
    pub fn last(&self, key: &str) -> Option<&RawEntry> {
        self.entries
            .iter()
            .filter(|e| e.setting.key == key)
            .max_by_key(|e| e.source.rank())
            .and_then(|best| {
                self.entries
                    .iter()
                    .rev()
                    .find(|e| e.setting.key == key && e.source.rank() == best.source.rank())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::setting;

    #[test]
    fn command_line_beats_config_file() {
        let mut raw = RawSettings::default();
        let w = setting("workers").unwrap();
        raw.push(w, "2", Source::CommandLine);
        raw.push(
            w,
            "3",
            Source::ConfigFile {
                path: "g.py".into(),
                line: Some(1),
            },
        );
        assert_eq!(raw.last("workers").unwrap().value, "2");
        assert!(raw.last("bind").is_none());
    }

    #[test]
    fn sources_display_where_they_are() {
        let s = Source::ConfigFile {
            path: "/etc/rgunicorn/a.conf".into(),
            line: Some(4),
        };
        assert_eq!(s.to_string(), "/etc/rgunicorn/a.conf:4");
        assert_eq!(Source::Environment("PORT").to_string(), "environment $PORT");
    }
}
