//! `rgunicorn`: argv → settings → run → exit code. Nothing else.

use std::collections::HashMap;
use std::process::ExitCode;

use rgunicorn::config::cli::{self, Command, Generated};
use rgunicorn::config::raw::Source;
use rgunicorn::error::ExitStatus;

fn main() -> ExitCode {
    // Before any thread or the interpreter exists: it moves the environment.
    rgunicorn::proctitle::init();
    let invocation = rgunicorn::launch::Invocation::capture();
    // Snapshot the environment, then remove the activation variables before any
    // thread or the interpreter exists, so the app never sees (or re-adopts) them.
    let env: HashMap<String, String> = std::env::vars().collect();
    for var in rgunicorn::systemd::activation::VARIABLES {
        // SAFETY: single-threaded here: no other thread can read the environment.
        unsafe { std::env::remove_var(var) };
    }
    let lookup = |k: &str| env.get(k).cloned();

    let mut raw = match cli::parse(std::env::args().skip(1), Source::CommandLine) {
        Ok(Command::Run(raw)) => raw,
        Ok(Command::Help) => {
            print!("{}", rgunicorn::config::docs::help());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("rgunicorn (version {})", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Generate(Generated::Man)) => {
            print!("{}", rgunicorn::config::docs::man_page());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Generate(Generated::ConfMan)) => {
            print!("{}", rgunicorn::config::docs::conf_man_page());
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_error(&e),
    };
    // RGUNICORN_CMD_ARGS (else GUNICORN_CMD_ARGS): below the command line, above
    // the config file.
    for var in ["RGUNICORN_CMD_ARGS", "GUNICORN_CMD_ARGS"] {
        let Some(text) = lookup(var) else { continue };
        let words = match cli::split_words(&text) {
            Ok(w) => w,
            Err(e) => return usage_error(&e),
        };
        match cli::parse(words, Source::CmdArgsEnv(var)) {
            Ok(Command::Run(env_raw)) => raw.extend(env_raw),
            Ok(_) => {}
            Err(e) => return usage_error(&e),
        }
        break;
    }
    ExitCode::from(rgunicorn::run(raw, env, invocation) as u8)
}

fn usage_error(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("rgunicorn: error: {e}");
    eprintln!("Try 'rgunicorn --help' for more information.");
    ExitCode::from(ExitStatus::Usage)
}
