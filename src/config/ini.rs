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
    let mut raw = RawSettings::default();
    let mut in_section = false;
    let mut seen_section = false;
    // What a continuation line extends.
    let mut last: Option<Last> = None;
    let at = |line: usize| Source::ConfigFile {
        path: path.to_owned(),
        line: Some(line),
    };
    let err = |line: usize, msg: String| SettingError::File(format!("{path}:{line}: {msg}"));
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if indented {
            match last {
                Some(Last::List(s)) => raw.push(s, trimmed, at(n)),
                Some(Last::Scalar(idx)) => {
                    let entry = &mut raw.entries[idx];
                    entry.value.push('\n');
                    entry.value.push_str(trimmed);
                }
                None => return Err(err(n, "continuation line without a key".into())),
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| err(n, format!("malformed section header {trimmed:?}")))?;
            if !matches!(name.trim(), "rgunicorn" | "gunicorn") {
                return Err(err(
                    n,
                    format!("unknown section [{name}]; settings go in [rgunicorn]"),
                ));
            }
            in_section = true;
            seen_section = true;
            last = None;
            continue;
        }
        let (key, value) = trimmed
            .split_once('=')
            .or_else(|| trimmed.split_once(':'))
            .ok_or_else(|| err(n, format!("expected key = value, got {trimmed:?}")))?;
        if !in_section {
            return Err(err(n, "setting outside the [rgunicorn] section".into()));
        }
        let key = key.trim().to_ascii_lowercase().replace('-', "_");
        let Some(s) = setting(&key) else {
            return Err(SettingError::UnknownKey {
                suggestion: suggest_key(&key),
                key,
                origin: at(n).to_string(),
            });
        };
        if let Kind::Hook(_) = s.kind {
            return Err(err(
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
                raw.push(s, value, at(n));
            }
            last = Some(Last::List(s));
        } else {
            raw.push(s, value, at(n));
            last = Some(Last::Scalar(raw.entries.len() - 1));
        }
    }
    if !seen_section && !raw.entries.is_empty() {
        return Err(SettingError::File(format!(
            "{path}: no [rgunicorn] section"
        )));
    }
    Ok(raw)
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
