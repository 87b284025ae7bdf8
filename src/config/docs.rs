//! Text generated from the registry: `--help` (and, later, the man pages).

use std::fmt::Write;

use super::{Arity, SETTINGS, Section};

/// The `--help` text, grouped by section.
pub fn help() -> String {
    let mut out = String::new();
    out.push_str(concat!(
        "rgunicorn ",
        env!("CARGO_PKG_VERSION"),
        " - pre-fork WSGI HTTP server for Python, systemd-native\n\n",
        "Usage: rgunicorn [OPTIONS] APP_MODULE\n\n",
        "APP_MODULE is module[:expression], e.g. myapp:app or 'pkg.wsgi:create_app(\"prod\")';\n",
        "the expression defaults to 'application'.\n"
    ));
    for section in Section::ALL {
        let _ = write!(out, "\n{}:\n", section.title());
        for s in SETTINGS.iter().filter(|s| s.section == section) {
            let mut flags = s.flags.join(", ");
            if let Arity::Value { metavar } = s.arity {
                let _ = write!(flags, " {metavar}");
            }
            let _ = write!(out, "  {flags:<36} {}", s.summary);
            if !s.default.is_empty() && s.arity != Arity::Switch {
                let _ = write!(out, " [{}]", s.default);
            }
            out.push('\n');
        }
    }
    out.push_str(
        "\nOther:\n  -h, --help                           Show this help and exit\n  \
         -v, --version                        Show the version and exit\n\n\
         Exit status: 0 ok, 1 runtime error, 2 usage error, 3 worker boot failure,\n\
         4 application load failure.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_flag() {
        let text = help();
        for s in SETTINGS {
            for f in s.flags {
                assert!(text.contains(f), "{f} missing from --help");
            }
        }
    }
}
