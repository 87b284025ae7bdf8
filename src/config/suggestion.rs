//! "Did you mean": the setting a user probably meant by a key or flag that no
//! setting declares.
//!
//! A name is near a setting in one of two ways. By spelling: within an edit
//! distance of 2, or of a quarter of the setting's name (`worker_connection`,
//! `--keepalive`). Or by meaning: a few names that users bring from other
//! servers and frameworks and that no edit distance would lead to the right
//! setting (`app` is not spelled like `wsgi_app`, `port` not like `bind`).
//! Meaning is asked first.

use super::{SETTINGS, setting};

/// Names that are not settings, and the setting users mean by them.
const MEANINGS: &[(&str, &str)] = &[
    ("app", "wsgi_app"),
    ("application", "wsgi_app"),
    ("module", "wsgi_app"),
    // `worker = 4`: a count reads more naturally than a class.
    ("worker", "workers"),
    ("port", "bind"),
    ("host", "bind"),
];

/// What to suggest on the command line for `wsgi_app`, which has no flag.
const APP_ARGUMENT: &str = "the APP_MODULE argument";

/// The setting key a config-file key (INI or Python) probably meant.
pub fn suggest_key(typed: &str) -> Option<&'static str> {
    meant(typed).or_else(|| {
        SETTINGS
            .iter()
            .map(|s| (edit_distance(typed, s.key), s.key))
            .filter(|(d, k)| *d <= 2.max(k.len() / 4))
            .min_by_key(|(d, _)| *d)
            .map(|(_, k)| k)
    })
}

/// The flag (or, for `wsgi_app`, the positional argument) that an unknown
/// command-line flag such as `--port` probably meant.
pub fn suggest_flag(typed: &str) -> Option<&'static str> {
    if let Some(key) = typed.strip_prefix("--").and_then(meant) {
        return Some(flag_of(key));
    }
    let normalized = typed.replace('_', "-");
    SETTINGS
        .iter()
        .flat_map(|s| s.flags.iter().copied())
        .filter(|f| f.starts_with("--"))
        .map(|f| (edit_distance(&normalized, &f.replace('_', "-")), f))
        .filter(|(d, f)| *d <= 2.max(f.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| f)
}

/// The setting `name` stands for by meaning, spelled as INI keys are (any
/// case, `-` for `_`).
fn meant(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase().replace('-', "_");
    MEANINGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, key)| *key)
}

/// The long flag of `key`, or the APP_MODULE argument for `wsgi_app`.
fn flag_of(key: &'static str) -> &'static str {
    setting(key)
        .and_then(|s| s.flags.iter().copied().find(|f| f.starts_with("--")))
        .unwrap_or(APP_ARGUMENT)
}

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_users_reach_for_suggest_the_setting_they_mean() {
        assert_eq!(suggest_key("app"), Some("wsgi_app"));
        assert_eq!(suggest_key("module"), Some("wsgi_app"));
        assert_eq!(suggest_key("APP"), Some("wsgi_app"));
        assert_eq!(suggest_key("worker"), Some("workers"));
        assert_eq!(suggest_key("port"), Some("bind"));
        assert_eq!(suggest_flag("--port"), Some("--bind"));
        assert_eq!(suggest_flag("--host"), Some("--bind"));
        assert_eq!(suggest_flag("--worker"), Some("--workers"));
        assert_eq!(suggest_flag("--app"), Some(APP_ARGUMENT));
        assert_eq!(suggest_flag("--module"), Some(APP_ARGUMENT));
    }

    #[test]
    fn typos_suggest_by_spelling() {
        assert_eq!(suggest_key("worker_connection"), Some("worker_connections"));
        assert_eq!(suggest_flag("--keepalive"), Some("--keep-alive"));
        assert_eq!(suggest_key("surely_not_a_setting"), None);
        assert_eq!(suggest_flag("--surely-not-a-flag"), None);
    }

    #[test]
    fn every_meaning_names_a_declared_setting() {
        for (name, key) in MEANINGS {
            let s = setting(key).unwrap_or_else(|| panic!("{name} -> {key}"));
            assert!(setting(name).is_none(), "{name} is a setting itself");
            let long_flag = s.flags.iter().any(|f| f.starts_with("--"));
            assert!(long_flag || *key == "wsgi_app", "{key} has no flag");
        }
    }
}
