//! Config: typed, resolved once from RawSettings in Gunicorn's precedence order:
//! defaults < environment fallbacks (PORT, WEB_CONCURRENCY, ...) < config file <
//! `RGUNICORN_CMD_ARGS`/`GUNICORN_CMD_ARGS` < command line.
//!
//! For each setting the highest-ranked source that mentions it wins outright: a
//! `-b` on the command line replaces every `bind` of the config file, as in
//! Gunicorn, rather than adding to it.

use std::fmt::Write;

use super::raw::{RawSettings, Source};
use super::{Config, Kind, SETTINGS, Setting, SettingError, Support, not_yet};
use crate::listen::Address;

/// Each setting's effective value and where it came from, for `--print-config`.
#[derive(Clone, Debug, Default)]
pub struct Origins {
    /// In registry order: the setting, its value(s) as text, and the source.
    pub entries: Vec<(&'static Setting, Vec<String>, Source)>,
}

impl Origins {
    /// Where `key`'s value came from.
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.entries
            .iter()
            .find(|(s, _, _)| s.key == key)
            .map(|(_, _, src)| src)
    }

    /// The `--print-config` text: one `key = value  # source` line per setting.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut sorted: Vec<_> = self.entries.iter().collect();
        sorted.sort_by_key(|(s, _, _)| s.key);
        for (s, value, source) in sorted {
            let _ = writeln!(out, "{:<34} = {:<30} # {source}", s.key, value.join(", "));
        }
        out
    }
}

/// Validate and store one value.
///
/// # Errors
/// The setting's own refusal, or [`SettingError::NotSupported`].
pub fn apply_value(
    config: &mut Config,
    setting: &'static Setting,
    value: &str,
) -> Result<(), SettingError> {
    if let Kind::Hook(_) = setting.kind {
        return Ok(());
    }
    match setting.support {
        Support::NotYet => return not_yet(setting, value),
        Support::Refused => {
            return Err(SettingError::Refused {
                key: setting.key,
                reason: setting.doc,
            });
        }
        Support::Full => {}
    }
    (setting.apply)(config, value).map_err(|reason| SettingError::Invalid {
        key: setting.key,
        value: value.to_owned(),
        reason,
    })
}

/// Resolve `raw` into a Config. `env` is the process environment.
///
/// # Errors
/// The first refused value, with its source.
pub fn resolve(
    raw: &RawSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Origins), SettingError> {
    let mut config = Config::default();
    let mut origins = Origins::default();
    for setting in SETTINGS.iter().copied() {
        let best = raw
            .entries
            .iter()
            .filter(|e| std::ptr::eq(e.setting, setting))
            .map(|e| e.source.rank())
            .max();
        if let Some(rank) = best {
            let chosen: Vec<_> = raw
                .entries
                .iter()
                .filter(|e| std::ptr::eq(e.setting, setting) && e.source.rank() == rank)
                .collect();
            // A scalar typed twice in one source: the last one wins.
            let chosen = if setting.kind == Kind::List {
                chosen
            } else {
                chosen.into_iter().last().into_iter().collect()
            };
            let mut shown = Vec::new();
            for e in &chosen {
                apply_value(&mut config, setting, &e.value)
                    .map_err(|error| located(error, &e.source))?;
                shown.push(e.value.clone());
            }
            let source = chosen
                .last()
                .map(|e| e.source.clone())
                .unwrap_or(Source::Default);
            origins.entries.push((setting, shown, source));
            continue;
        }
        if let Some(var) = setting.env_fallback
            && let Some(value) = env(var).filter(|v| !v.is_empty())
        {
            let source = Source::Environment(var);
            apply_value(&mut config, setting, &value).map_err(|error| located(error, &source))?;
            origins.entries.push((setting, vec![value], source));
            continue;
        }
        let default = match setting.kind {
            Kind::List => Vec::new(),
            _ => vec![setting.default.to_owned()],
        };
        origins.entries.push((setting, default, Source::Default));
    }
    bind_port_fallback(&mut config, &mut origins, env)?;
    config.script_name = env("SCRIPT_NAME").unwrap_or_default();
    if config.app_uri.is_empty() && !config.print_config {
        return Err(SettingError::MissingApp);
    }
    Ok((config, origins))
}

/// Gunicorn's PORT fallback: with no bind anywhere, bind 0.0.0.0:$PORT.
fn bind_port_fallback(
    config: &mut Config,
    origins: &mut Origins,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), SettingError> {
    if !config.bind.is_empty() {
        return Ok(());
    }
    let Some(port) = env("PORT").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let source = Source::Environment("PORT");
    let addr = Address::parse(&format!("0.0.0.0:{port}")).map_err(|reason| {
        located(
            SettingError::Invalid {
                key: "bind",
                value: port.clone(),
                reason,
            },
            &source,
        )
    })?;
    config.bind.push(addr);
    if let Some(entry) = origins.entries.iter_mut().find(|(s, _, _)| s.key == "bind") {
        *entry = (entry.0, vec![format!("0.0.0.0:{port}")], source);
    }
    Ok(())
}

fn located(error: SettingError, source: &Source) -> SettingError {
    match source {
        Source::CommandLine => error,
        _ => SettingError::At {
            error: Box::new(error),
            origin: source.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::setting;

    fn file(line: usize) -> Source {
        Source::ConfigFile {
            path: "gunicorn.conf.py".into(),
            line: Some(line),
        }
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn raw(entries: &[(&str, &str, Source)]) -> RawSettings {
        let mut r = RawSettings::default();
        r.push(setting("wsgi_app").unwrap(), "app:app", Source::CommandLine);
        for (k, v, s) in entries {
            r.push(setting(k).unwrap(), *v, s.clone());
        }
        r
    }

    #[test]
    fn precedence_is_env_then_file_then_cmd_args_then_cli() {
        let env = env_of(&[("WEB_CONCURRENCY", "2")]);
        let (c, o) = resolve(&raw(&[]), &env).unwrap();
        assert_eq!(c.workers, 2);
        assert_eq!(
            o.source("workers"),
            Some(&Source::Environment("WEB_CONCURRENCY"))
        );

        let (c, _) = resolve(&raw(&[("workers", "3", file(1))]), &env).unwrap();
        assert_eq!(c.workers, 3);

        let r = raw(&[
            ("workers", "3", file(1)),
            ("workers", "4", Source::CmdArgsEnv("GUNICORN_CMD_ARGS")),
        ]);
        assert_eq!(resolve(&r, &env).unwrap().0.workers, 4);

        let r = raw(&[
            ("workers", "3", file(1)),
            ("workers", "5", Source::CommandLine),
            ("workers", "4", Source::CmdArgsEnv("GUNICORN_CMD_ARGS")),
        ]);
        let (c, o) = resolve(&r, &env).unwrap();
        assert_eq!(c.workers, 5);
        assert_eq!(o.source("workers"), Some(&Source::CommandLine));
    }

    #[test]
    fn a_higher_source_replaces_a_list_entirely() {
        let r = raw(&[
            ("bind", "127.0.0.1:1", file(1)),
            ("bind", "127.0.0.1:2", file(2)),
            ("bind", "127.0.0.1:3", Source::CommandLine),
        ]);
        let (c, _) = resolve(&r, &|_| None).unwrap();
        assert_eq!(c.bind, vec![Address::parse("127.0.0.1:3").unwrap()]);
        let r = raw(&[
            ("bind", "127.0.0.1:1", file(1)),
            ("bind", "127.0.0.1:2", file(2)),
        ]);
        assert_eq!(resolve(&r, &|_| None).unwrap().0.bind.len(), 2);
    }

    #[test]
    fn port_applies_only_without_any_bind() {
        let env = env_of(&[("PORT", "9000")]);
        let (c, o) = resolve(&raw(&[]), &env).unwrap();
        assert_eq!(c.bind, vec![Address::parse("0.0.0.0:9000").unwrap()]);
        assert_eq!(o.source("bind"), Some(&Source::Environment("PORT")));
        let (c, _) = resolve(&raw(&[("bind", "unix:/x", file(3))]), &env).unwrap();
        assert_eq!(c.bind, vec![Address::Unix("/x".into())]);
    }

    #[test]
    fn bad_value_names_key_value_and_line() {
        let err = resolve(&raw(&[("workers", "many", file(7))]), &|_| None).unwrap_err();
        match err {
            SettingError::At { error, origin } => {
                assert_eq!(origin, "gunicorn.conf.py:7");
                assert!(matches!(
                    *error,
                    SettingError::Invalid { key: "workers", .. }
                ));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unsupported_setting_is_refused_by_name_unless_default() {
        assert!(resolve(&raw(&[("spew", "False", file(1))]), &|_| None).is_ok());
        let err = resolve(&raw(&[("spew", "true", Source::CommandLine)]), &|_| None).unwrap_err();
        assert!(matches!(
            err,
            SettingError::NotSupported { key: "spew", .. }
        ));
    }

    #[test]
    fn missing_app_is_a_usage_error() {
        assert_eq!(
            resolve(&RawSettings::default(), &|_| None).unwrap_err(),
            SettingError::MissingApp
        );
    }
}
