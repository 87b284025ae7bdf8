//! Pins the embedded CPython: the binary must load the libpython it was built
//! against, and must tell that interpreter where it lives.
//!
//! pyo3 links `-lpython3.X` but adds no rpath, so a shared libpython outside the
//! loader's default path (a pyenv or /opt build) would be silently replaced at run
//! time by whatever `libpython3.X.so` the loader finds first. We add the rpath here,
//! and export the interpreter's path and version so `python::interp` can set
//! `PyConfig.executable` and refuse virtualenvs made by another Python.
//!
//! Choose the interpreter at build time with `PYO3_PYTHON=/path/to/python3`.

fn main() {
    let config = pyo3_build_config::get();
    pyo3_build_config::add_libpython_rpath_link_args();
    let executable = config
        .executable()
        .map(str::to_owned)
        .unwrap_or_else(|| "/usr/bin/python3".to_owned());
    println!("cargo:rustc-env=RGUNICORN_PYTHON={executable}");
    println!(
        "cargo:rustc-env=RGUNICORN_PYTHON_VERSION={}.{}",
        config.version().major,
        config.version().minor
    );
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    pyo3_build_config::use_pyo3_cfgs();
}
