//! Registry-driven argv parser.
//!
//! Accepts Gunicorn's spellings: `--flag VALUE`, `--flag=VALUE`, `-b VALUE`,
//! `-bVALUE`, switches without a value, and one positional `APP_MODULE`.

use super::{Arity, Config, SETTINGS, Setting, SettingError};

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Serve with this configuration (env fallbacks not yet applied).
    Run(Box<Config>),
    /// Print `--help` and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
    /// Print generated documentation (`--generate man`) and exit 0.
    Generate(Generated),
}

/// Documents `--generate` can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    /// rgunicorn(1) in roff.
    Man,
}

/// Parse `args` (without argv\[0\]) into a [`Command`].
///
/// # Errors
/// Unknown flags (with a suggestion), missing values and bad values.
pub fn parse<I, S>(args: I) -> Result<Command, SettingError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut config = Config::default();
    let mut args = args.into_iter().map(Into::into);
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-v" | "--version" => return Ok(Command::Version),
            "--generate" => {
                return match args.next().as_deref() {
                    Some("man") => Ok(Command::Generate(Generated::Man)),
                    other => Err(SettingError::Invalid {
                        key: "generate",
                        value: other.unwrap_or("").to_owned(),
                        reason: "expected man".into(),
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
            Arity::Switch => {
                if inline.is_some() {
                    return Err(SettingError::UnexpectedValue { flag });
                }
                config.apply(setting, "true")?;
            }
            Arity::Value { .. } => {
                let value = match inline {
                    Some(v) => v,
                    None => args.next().ok_or(SettingError::MissingValue { flag })?,
                };
                config.apply(setting, &value)?;
            }
        }
    }
    let mut positional = positional.into_iter();
    if let Some(app) = positional.next() {
        config.app_uri = app;
    }
    if let Some(extra) = positional.next() {
        return Err(SettingError::ExtraArgument(extra));
    }
    Ok(Command::Run(Box::new(config)))
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
                suggestion: suggest(&flag),
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
            suggestion: suggest(arg),
            flag: arg.to_owned(),
        })?;
    let inline = (!rest.is_empty()).then(|| rest.trim_start_matches('=').to_owned());
    Ok((setting, flag, inline))
}

/// The declared flag closest to `typed`, when it is plausibly a typo.
fn suggest(typed: &str) -> Option<&'static str> {
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
    use crate::listen::Address;

    fn run(args: &[&str]) -> Config {
        match parse(args.iter().copied()).unwrap() {
            Command::Run(c) => *c,
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
            "pkg.wsgi:create_app(\"prod\")",
        ]);
        assert_eq!(c.workers, 4);
        assert_eq!(c.bind.len(), 2);
        assert_eq!(c.bind[1], Address::parse("unix:/tmp/x.sock").unwrap());
        assert_eq!(c.limits.field_size, 100);
        assert!(c.reuse_port);
        assert_eq!(c.app_uri, "pkg.wsgi:create_app(\"prod\")");
    }

    #[test]
    fn unknown_flag_suggests_the_nearest() {
        let err = parse(["--worker", "2", "app"]).unwrap_err();
        assert_eq!(
            err,
            SettingError::UnknownFlag {
                flag: "--worker".into(),
                suggestion: Some("--workers")
            }
        );
    }

    #[test]
    fn missing_value_and_switch_value_are_errors() {
        assert!(matches!(
            parse(["app", "--workers"]),
            Err(SettingError::MissingValue { .. })
        ));
        assert!(matches!(
            parse(["--reuse-port=yes", "app"]),
            Err(SettingError::UnexpectedValue { .. })
        ));
        assert!(matches!(
            parse(["a", "b"]),
            Err(SettingError::ExtraArgument(_))
        ));
    }

    #[test]
    fn help_and_version_win() {
        assert!(matches!(parse(["--help"]), Ok(Command::Help)));
        assert!(matches!(parse(["app", "--version"]), Ok(Command::Version)));
    }
}
