//! Registry-driven argv parser.
//!
//! Accepts Gunicorn's spellings: `--flag VALUE`, `--flag=VALUE`, `-b VALUE`,
//! `-bVALUE`, switches without a value, and one positional `APP_MODULE`. The
//! same parser reads `RGUNICORN_CMD_ARGS` / `GUNICORN_CMD_ARGS`. It produces
//! [`RawSettings`]; validation happens when they are resolved.

use super::raw::{RawSettings, Source};
use super::{Arity, SETTINGS, Setting, SettingError, setting, suggest_flag};

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Serve with these settings.
    Run(RawSettings),
    /// Print `--help` and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
    /// Print generated documentation and exit 0.
    Generate(Generated),
}

/// Documents `--generate` can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    /// rgunicorn(1) in roff.
    Man,
    /// rgunicorn.conf(5) in roff.
    ConfMan,
}

/// Parse `args` (without argv\[0\]), recording each value with `source`.
///
/// # Errors
/// Unknown flags (with a suggestion), missing values, extra arguments.
pub fn parse<I, S>(args: I, source: Source) -> Result<Command, SettingError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut raw = RawSettings::default();
    let mut args = args.into_iter().map(Into::into);
    let mut positional = Vec::new();
    // An argument an optional-value flag looked at and did not take.
    let mut pending: Option<String> = None;
    while let Some(arg) = pending.take().or_else(|| args.next()) {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-v" | "--version" => return Ok(Command::Version),
            "--generate" => {
                return match args.next().as_deref() {
                    Some("man") => Ok(Command::Generate(Generated::Man)),
                    Some("conf-man") => Ok(Command::Generate(Generated::ConfMan)),
                    other => Err(SettingError::Invalid {
                        key: "generate",
                        value: other.unwrap_or("").to_owned(),
                        reason: "expected man or conf-man".into(),
                    }),
                };
            }
            "--" => {
                positional.extend(args.by_ref());
                break;
            }
            _ => {}
        }
        if !arg.starts_with('-') || arg == "-" {
            positional.push(arg);
            continue;
        }
        let (setting, flag, inline) = find(&arg)?;
        match setting.arity {
            Arity::Switch { value } => {
                if inline.is_some() {
                    return Err(SettingError::UnexpectedValue { flag });
                }
                raw.push(setting, value, source.clone());
            }
            Arity::Optional { bare, choices, .. } => {
                let value = match inline {
                    Some(v) => v,
                    None => match args.next() {
                        Some(next) if choices.contains(&next.as_str()) => next,
                        Some(next) => {
                            raw.push(setting, bare, source.clone());
                            // Not ours: handle it as the next argument.
                            pending = Some(next);
                            continue;
                        }
                        None => bare.to_owned(),
                    },
                };
                raw.push(setting, value, source.clone());
            }
            Arity::Value { .. } => {
                let value = match inline {
                    Some(v) => v,
                    None => args.next().ok_or(SettingError::MissingValue { flag })?,
                };
                raw.push(setting, value, source.clone());
            }
        }
    }
    let mut positional = positional.into_iter();
    if let Some(app) = positional.next() {
        // The positional APP_MODULE is the wsgi_app setting.
        if let Some(s) = setting("wsgi_app") {
            raw.push(s, app, source.clone());
        }
    }
    if let Some(extra) = positional.next() {
        return Err(SettingError::ExtraArgument(extra));
    }
    Ok(Command::Run(raw))
}

/// Split `RGUNICORN_CMD_ARGS` into words like a POSIX shell would (Gunicorn
/// uses `shlex.split`): whitespace separates, quotes group, backslash escapes.
///
/// # Errors
/// An unterminated quote.
pub fn split_words(text: &str) -> Result<Vec<String>, SettingError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err(unterminated(text)),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => word.push(ch),
                            Some(ch) => {
                                word.push('\\');
                                word.push(ch);
                            }
                            None => return Err(unterminated(text)),
                        },
                        Some(ch) => word.push(ch),
                        None => return Err(unterminated(text)),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = chars.next() {
                    word.push(ch);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn unterminated(text: &str) -> SettingError {
    SettingError::Invalid {
        key: "RGUNICORN_CMD_ARGS",
        value: text.to_owned(),
        reason: "unterminated quote".into(),
    }
}

/// Find the setting for `arg`, splitting off an inline value.
fn find(arg: &str) -> Result<(&'static Setting, String, Option<String>), SettingError> {
    if let Some(long) = arg.strip_prefix("--") {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (long, None),
        };
        let flag = format!("--{name}");
        return SETTINGS
            .iter()
            .find(|s| s.flags.contains(&flag.as_str()))
            .map(|s| (*s, flag.clone(), inline))
            .ok_or_else(|| SettingError::UnknownFlag {
                suggestion: suggest_flag(&flag),
                flag,
            });
    }
    // Short flag: `-w4` or `-w 4`.
    let flag: String = arg.chars().take(2).collect();
    let rest = &arg[flag.len()..];
    let setting = SETTINGS
        .iter()
        .find(|s| s.flags.contains(&flag.as_str()))
        .ok_or_else(|| SettingError::UnknownFlag {
            suggestion: suggest_flag(arg),
            flag: arg.to_owned(),
        })?;
    let inline = (!rest.is_empty()).then(|| rest.trim_start_matches('=').to_owned());
    Ok((setting, flag, inline))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::resolve;

    fn run(args: &[&str]) -> crate::config::Config {
        match parse(args.iter().copied(), Source::CommandLine).unwrap() {
            Command::Run(raw) => resolve(&raw, &|_| None).unwrap().0,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gunicorn_spellings_parse() {
        let c = run(&[
            "-w4",
            "-b",
            "0.0.0.0:8080",
            "--bind=unix:/tmp/x.sock",
            "--limit-request-field_size",
            "100",
            "--reuse-port",
            "--no-sendfile",
            "-e",
            "A=b=c",
            "pkg.wsgi:create_app(\"prod\")",
        ]);
        assert_eq!(c.workers, 4);
        assert_eq!(c.bind.len(), 2);
        assert_eq!(c.limits.field_size, 100);
        assert!(c.reuse_port);
        assert!(!c.sendfile_enabled);
        assert_eq!(c.raw_env, vec![("A".to_owned(), "b=c".to_owned())]);
        assert_eq!(c.app_uri, "pkg.wsgi:create_app(\"prod\")");
    }

    #[test]
    fn unknown_flag_suggests_the_nearest() {
        let err = parse(["--worker", "2", "app"], Source::CommandLine).unwrap_err();
        assert_eq!(
            err,
            SettingError::UnknownFlag {
                flag: "--worker".into(),
                suggestion: Some("--workers")
            }
        );
    }

    #[test]
    fn unknown_flag_suggests_by_meaning() {
        let err = parse(["--port", "8000", "app"], Source::CommandLine).unwrap_err();
        assert_eq!(
            err,
            SettingError::UnknownFlag {
                flag: "--port".into(),
                suggestion: Some("--bind")
            }
        );
    }

    #[test]
    fn missing_value_and_switch_value_are_errors() {
        assert!(matches!(
            parse(["app", "--workers"], Source::CommandLine),
            Err(SettingError::MissingValue { .. })
        ));
        assert!(matches!(
            parse(["--reuse-port=yes", "app"], Source::CommandLine),
            Err(SettingError::UnexpectedValue { .. })
        ));
        assert!(matches!(
            parse(["a", "b"], Source::CommandLine),
            Err(SettingError::ExtraArgument(_))
        ));
    }

    #[test]
    fn cmd_args_split_like_a_shell() {
        assert_eq!(
            split_words(r#"--bind=127.0.0.1 -w 3 --access-logformat '%(h)s %(r)s' "a b\"c""#)
                .unwrap(),
            vec![
                "--bind=127.0.0.1",
                "-w",
                "3",
                "--access-logformat",
                "%(h)s %(r)s",
                "a b\"c"
            ]
        );
        assert!(split_words("'open").is_err());
    }

    #[test]
    fn help_and_version_win() {
        assert!(matches!(
            parse(["--help"], Source::CommandLine),
            Ok(Command::Help)
        ));
        assert!(matches!(
            parse(["app", "--version"], Source::CommandLine),
            Ok(Command::Version)
        ));
    }
}
