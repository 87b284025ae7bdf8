//! `--virtualenv DIR` puts the venv's site-packages on the path before the
//! app is imported.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::{Server, TempDir, python};

/// `python -m venv --without-pip DIR/venv`; returns (venv, site-packages).
fn make_venv(dir: &TempDir) -> (PathBuf, PathBuf) {
    let venv = dir.path().join("venv");
    let out = Command::new(python())
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .env_remove("VIRTUAL_ENV")
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .output()
        .unwrap_or_else(|e| panic!("run {} -m venv: {e}", python()));
    assert!(
        out.status.success(),
        "{} -m venv failed: {}",
        python(),
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = venv.join("lib");
    let site = fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("read {}: {e}", lib.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("no lib/python3*/site-packages in {}", venv.display()));
    (venv, site)
}

#[test]
fn virtualenv_site_packages_are_importable() {
    let dir = TempDir::new("venv");
    let (venv, site) = make_venv(&dir);
    fs::write(
        site.join("only_in_venv.py"),
        "VALUE = 'imported from the venv'\n",
    )
    .expect("write module");
    let srv = Server::builder("venv_app:app")
        .arg("--virtualenv")
        .arg(&venv)
        .in_dir(dir)
        .start();
    srv.assert_get("/", "imported from the venv");
}

#[test]
fn without_virtualenv_the_same_app_fails_to_load() {
    let mut srv = Server::builder("venv_app:app").spawn();
    let status = srv.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(4), "exit status {status}");
    let stderr = srv.stderr();
    assert!(stderr.contains("ModuleNotFoundError"), "{stderr}");
    assert!(stderr.contains("only_in_venv"), "{stderr}");
}
