//! INI instance files, e.g. `/etc/rgunicorn/NAME.conf` for `rgunicorn@NAME`.
//!
//! The settings live in a `[rgunicorn]` section (`[gunicorn]` is accepted too),
//! one `key = value` per line, keys spelled as Gunicorn's setting names (`-` is
//! read as `_`). Comment lines start with `#` or `;`, indented or not. An indented
//! line continues the previous value; for list settings (`bind`, `raw_env`) every
//! line is one item, and a key may also be repeated. Values are plain strings that
//! the settings registry parses, so `reuse_port = yes` and `workers = 4` mean what
//! they say. Every entry remembers its line for error messages.
//!
//! Hand-written rather than `serde_ini` (unmaintained, no booleans, no indented
//! comments) or `rust-ini` (no line numbers to report).

use super::raw::{RawSettings, Source};
use super::{Kind, SettingError, setting, suggest_key};

/// Parse INI `text` read from `path`.
///
/// # Errors
/// Syntax errors, unknown sections and keys (with a suggestion), hooks.
pub fn parse(text: &str, path: &str) -> Result<RawSettings, SettingError> {
    let mut parser = Parser {
        path,
        raw: RawSettings::default(),
        in_section: false,
        last: None,
    };
    for (i, line) in text.lines().enumerate() {
        parser.line(i + 1, line)?;
    }
    // Every entry passed `entry`, which refuses settings before `[rgunicorn]`.
    Ok(parser.raw)
}

/// What one line of the file leaves for the next.
struct Parser<'p> {
    /// The file, for sources and messages.
    path: &'p str,
    /// Entries so far.
    raw: RawSettings,
    /// A `[rgunicorn]` header has been seen (no other section is allowed).
    in_section: bool,
    /// What a continuation line extends.
    last: Option<Last>,
}

impl Parser<'_> {
    /// Read line `n` (1-based).
    fn line(&mut self, n: usize, line: &str) -> Result<(), SettingError> {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            return Ok(());
        }
        if line.starts_with([' ', '\t']) {
            self.continuation(n, trimmed)
        } else if let Some(name) = trimmed.strip_prefix('[') {
            self.section(n, trimmed, name)
        } else {
            self.entry(n, trimmed)
        }
    }

    /// An indented line: one more list item, or more of a scalar's value.
    fn continuation(&mut self, n: usize, trimmed: &str) -> Result<(), SettingError> {
        match self.last {
            Some(Last::List(s)) => self.raw.push(s, trimmed, self.at(n)),
            Some(Last::Scalar(idx)) => {
                let entry = &mut self.raw.entries[idx];
                entry.value.push('\n');
                entry.value.push_str(trimmed);
            }
            None => return Err(self.error(n, "continuation line without a key".into())),
        }
        Ok(())
    }

    /// `[rgunicorn]` (or `[gunicorn]`); any other section is refused.
    fn section(&mut self, n: usize, header: &str, name: &str) -> Result<(), SettingError> {
        let name = name
            .strip_suffix(']')
            .ok_or_else(|| self.error(n, format!("malformed section header {header:?}")))?;
        if !matches!(name.trim(), "rgunicorn" | "gunicorn") {
            return Err(self.error(
                n,
                format!("unknown section [{name}]; settings go in [rgunicorn]"),
            ));
        }
        self.in_section = true;
        self.last = None;
        Ok(())
    }

    /// `key = value` (or `key: value`) for a setting the registry knows.
    fn entry(&mut self, n: usize, trimmed: &str) -> Result<(), SettingError> {
        let (key, value) = trimmed
            .split_once('=')
            .or_else(|| trimmed.split_once(':'))
            .ok_or_else(|| self.error(n, format!("expected key = value, got {trimmed:?}")))?;
        if !self.in_section {
            return Err(self.error(n, "setting outside the [rgunicorn] section".into()));
        }
        let key = key.trim().to_ascii_lowercase().replace('-', "_");
        let Some(s) = setting(&key) else {
            return Err(SettingError::UnknownKey {
                suggestion: suggest_key(&key),
                key,
                origin: self.at(n).to_string(),
            });
        };
        if let Kind::Hook(_) = s.kind {
            return Err(self.error(
                n,
                format!(
                    "{key} is a server hook; hooks can only be defined in a Python config file"
                ),
            ));
        }
        let value = value.trim();
        if s.kind == Kind::List {
            // `bind =` alone opens a list continued on the indented lines below.
            if !value.is_empty() {
                self.raw.push(s, value, self.at(n));
            }
            self.last = Some(Last::List(s));
        } else {
            self.raw.push(s, value, self.at(n));
            self.last = Some(Last::Scalar(self.raw.entries.len() - 1));
        }
        Ok(())
    }

    fn at(&self, line: usize) -> Source {
        Source::ConfigFile {
            path: self.path.to_owned(),
            line: Some(line),
        }
    }

    fn error(&self, line: usize, msg: String) -> SettingError {
        SettingError::File(format!("{}:{line}: {msg}", self.path))
    }
}

/// What an indented continuation line belongs to.
#[derive(Clone, Copy)]
enum Last {
    /// A list setting: each line is one more item.
    List(&'static super::Setting),
    /// A scalar entry: the line is appended to its value.
    Scalar(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_settings_with_comments_and_lines() {
        let text = "# instance demo\n[rgunicorn]\n  ; indented comment\nwsgi_app = hello:app\nworkers = 2\nreuse-port = yes\n";
        let raw = parse(text, "demo.conf").unwrap();
        let keys: Vec<_> = raw
            .entries
            .iter()
            .map(|e| (e.setting.key, e.value.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("wsgi_app", "hello:app"),
                ("workers", "2"),
                ("reuse_port", "yes")
            ]
        );
        assert_eq!(raw.entries[1].source.to_string(), "demo.conf:5");
    }

    #[test]
    fn list_settings_repeat_or_continue() {
        let text = "[rgunicorn]\nbind = 127.0.0.1:1\nbind = unix:/a\nraw_env =\n    A=1\n    B=2\n";
        let raw = parse(text, "x.conf").unwrap();
        let binds: Vec<_> = raw
            .entries
            .iter()
            .filter(|e| e.setting.key == "bind")
            .map(|e| e.value.as_str())
            .collect();
        assert_eq!(binds, vec!["127.0.0.1:1", "unix:/a"]);
        let envs: Vec<_> = raw
            .entries
            .iter()
            .filter(|e| e.setting.key == "raw_env")
            .map(|e| e.value.as_str())
            .collect();
        assert_eq!(envs, vec!["A=1", "B=2"]);
    }

    #[test]
    fn unknown_key_suggests_and_names_the_line() {
        let err = parse("[rgunicorn]\nworker = 2\n", "x.conf").unwrap_err();
        assert_eq!(
            err,
            SettingError::UnknownKey {
                key: "worker".into(),
                suggestion: Some("workers"),
                origin: "x.conf:2".into()
            }
        );
    }

    #[test]
    fn an_indented_line_continues_a_scalar_value() {
        let raw = parse("[gunicorn]\nproc_name = one\n  two\n", "x.conf").unwrap();
        assert_eq!(raw.entries.len(), 1);
        assert_eq!(raw.entries[0].value, "one\ntwo");
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let cases = [
            (
                "  workers = 2\n",
                "x.conf:1: continuation line without a key",
            ),
            (
                "[rgunicorn\n",
                "x.conf:1: malformed section header \"[rgunicorn\"",
            ),
            (
                "[rgunicorn]\n\nworkers\n",
                "x.conf:3: expected key = value, got \"workers\"",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(
                parse(text, "x.conf").unwrap_err(),
                SettingError::File(message.into()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn unknown_key_suggests_the_setting_it_means() {
        let err = parse("[rgunicorn]\napp = hello:app\n", "x.conf").unwrap_err();
        assert_eq!(
            err,
            SettingError::UnknownKey {
                key: "app".into(),
                suggestion: Some("wsgi_app"),
                origin: "x.conf:2".into()
            }
        );
    }

    #[test]
    fn hooks_sections_and_stray_keys_are_refused() {
        assert!(parse("[rgunicorn]\npost_fork = x\n", "x.conf").is_err());
        assert!(parse("[server]\nworkers = 2\n", "x.conf").is_err());
        assert!(parse("workers = 2\n", "x.conf").is_err());
    }
}
