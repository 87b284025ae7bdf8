//! `logconfig_json`, `logconfig_dict` and `logconfig`: Gunicorn's loggers
//! mapped onto rgunicorn's logs, what does not map warned about, what Python
//! refuses an error.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::{Server, TempDir, run_cli_in};

fn wait_contains(path: &std::path::Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} holds:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn logconfig_json_maps_gunicorn_error_onto_the_error_log() {
    let dir = TempDir::new("logjson");
    let error = dir.path().join("error.log");
    let conf = dir.path().join("log.json");
    let json = format!(
        r#"{{"version": 1, "disable_existing_loggers": false,
            "formatters": {{"plain": {{"format": "%(levelname)s %(message)s"}}}},
            "handlers": {{"err": {{"class": "logging.FileHandler", "filename": "{}",
                                   "formatter": "plain"}}}},
            "loggers": {{"gunicorn.error": {{"level": "WARNING", "handlers": ["err"]}}}}}}"#,
        error.display()
    );
    fs::write(&conf, json).unwrap();
    let srv = Server::start("ops:app", &["--log-config-json", conf.to_str().unwrap()]);
    assert_eq!(srv.get("/log?msg=mapped-warning").status, 200);
    let text = wait_contains(&error, "[WARNING] mapped-warning");
    assert!(!text.contains("[INFO]"), "{text}");
    assert!(
        srv.stderr()
            .contains("logconfig_json: gunicorn.error: formatters are not mapped"),
        "{}",
        srv.stderr()
    );
}

#[test]
fn logconfig_ini_configures_app_loggers_and_the_access_log() {
    let dir = TempDir::new("logini");
    let access = dir.path().join("access.log");
    let conf = dir.path().join("log.ini");
    fs::write(
        &conf,
        format!(
            "[loggers]\nkeys=root,access\n\n[handlers]\nkeys=file\n\n[formatters]\nkeys=\n\n\
             [logger_root]\nlevel=INFO\nhandlers=\n\n\
             [logger_access]\nqualname=gunicorn.access\nhandlers=file\npropagate=0\n\n\
             [handler_file]\nclass=FileHandler\nargs=({:?},)\n",
            access.display().to_string()
        ),
    )
    .unwrap();
    let srv = Server::start("ops:app", &["--log-config", conf.to_str().unwrap()]);
    assert_eq!(srv.get("/ini-probe").status, 200);
    wait_contains(&access, "\"GET /ini-probe HTTP/1.1\" 200");
}

#[test]
fn a_logconfig_dict_python_refuses_is_a_usage_error() {
    let dir = TempDir::new("logdict");
    fs::write(
        dir.path().join("conf.py"),
        "logconfig_dict = {'version': 1, 'handlers': {'h': {'class': 'no.such.Handler'}},\n\
         'loggers': {'gunicorn.error': {'handlers': ['h']}}}\n",
    )
    .unwrap();
    let out = run_cli_in(
        dir.path(),
        &["-c", "conf.py", "--check-config", "hello:app"],
        &[],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("logconfig_dict: "), "{stderr}");
}
