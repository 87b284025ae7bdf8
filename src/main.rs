//! `rgunicorn`: argv → Config → run → exit code. Nothing else.

use std::collections::HashMap;
use std::process::ExitCode;

use rgunicorn::config::cli::{self, Command, Generated};
use rgunicorn::error::EXIT_USAGE;

fn main() -> ExitCode {
    // Snapshot the environment, then remove the activation variables before any
    // thread or the interpreter exists, so the app never sees (or re-adopts) them.
    let env: HashMap<String, String> = std::env::vars().collect();
    for var in rgunicorn::systemd::activation::VARIABLES {
        // SAFETY: single-threaded here: no other thread can read the environment.
        unsafe { std::env::remove_var(var) };
    }
    let lookup = |k: &str| env.get(k).cloned();

    let mut args: Vec<String> = std::env::args().skip(1).collect();
    for var in ["RGUNICORN_CMD_ARGS", "GUNICORN_CMD_ARGS"] {
        if let Some(extra) = lookup(var) {
            // Command-line arguments win: they come after the env ones.
            let mut words: Vec<String> = extra.split_whitespace().map(str::to_owned).collect();
            words.append(&mut args);
            args = words;
            break;
        }
    }
    let config = match cli::parse(args) {
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
        Ok(Command::Run(config)) => config.finish(&lookup),
        Err(e) => Err(e),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rgunicorn: error: {e}");
            eprintln!("Try 'rgunicorn --help' for more information.");
            return ExitCode::from(EXIT_USAGE as u8);
        }
    };
    ExitCode::from(rgunicorn::run(config, &lookup) as u8)
}
