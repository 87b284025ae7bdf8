//! Gunicorn-style Python config files (`gunicorn.conf.py`, `python:module`).
//!
//! The file runs in the embedded interpreter, like Gunicorn runs it in its own.
//! Module-level names the registry knows become settings (as text, so the
//! registry's own parsing applies) and callables named after hooks become
//! [`Hooks`]. Other names (imports, helpers) are ignored, except that a plain
//! value whose name is one typo away from a setting, or a name users reach for
//! (`app`, `port`), is an error with "did you mean": `worker = 4` would otherwise
//! be silently ignored. The file setting that setting itself (`port = 8000` with
//! `bind = f"0.0.0.0:{port}"`) makes the name a helper variable instead.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyTuple};

use super::hooks::{Hook, Hooks};
use crate::config::raw::{RawSettings, Source};
use crate::config::{Kind, Setting, SettingError, setting, suggest_key};

/// Why a Python config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// The file raised, or could not be read; carries the traceback.
    #[error("failed to read config file {path}:\n{detail}")]
    Failed {
        /// The file or module.
        path: String,
        /// Traceback or OS error.
        detail: String,
    },
    /// A value or name the registry refuses.
    #[error(transparent)]
    Setting(#[from] SettingError),
}

/// Run the config file at `spec` (a path, or `python:module`) and collect its
/// settings and hooks.
///
/// # Errors
/// [`ConfError`].
pub fn load(py: Python<'_>, spec: &str) -> Result<(RawSettings, Hooks), ConfError> {
    let (namespace, source_text) = match spec.strip_prefix("python:") {
        Some(module) => import_module(py, spec, module)?,
        None => exec_file(py, spec).map(|(ns, text)| (ns, Some(text)))?,
    };
    let mut raw = RawSettings::default();
    let mut hooks = Hooks::default();
    for (name, value) in namespace.iter() {
        let Ok(name) = name.extract::<String>() else {
            continue;
        };
        if name.starts_with('_') {
            continue;
        }
        let source = Source::ConfigFile {
            path: spec.to_owned(),
            line: source_text
                .as_deref()
                .and_then(|t| assignment_line(t, &name)),
        };
        let Some(s) = setting(&name) else {
            // A name near a setting the file also sets is a helper variable
            // (`port = 8000` then `bind = f"0.0.0.0:{port}"`), not a mistake.
            if is_plain_value(&value)
                && let Some(suggestion) = suggest_key(&name)
                && !namespace.contains(suggestion).unwrap_or(false)
            {
                return Err(SettingError::UnknownKey {
                    key: name,
                    suggestion: Some(suggestion),
                    origin: source.to_string(),
                }
                .into());
            }
            continue;
        };
        if value.is_none() {
            continue;
        }
        match s.kind {
            Kind::Hook(arity) => {
                let hook = Hook::from_key(s.key)
                    .ok_or_else(|| failed(spec, format!("unknown hook {name}")))?;
                check_hook(py, &value, hook, arity).map_err(|reason| SettingError::At {
                    error: Box::new(SettingError::Invalid {
                        key: s.key,
                        value: value.to_string(),
                        reason,
                    }),
                    origin: source.to_string(),
                })?;
                let shown = value.repr().map(|r| r.to_string()).unwrap_or_default();
                raw.push(s, shown, source);
                hooks.set(hook, value.unbind());
            }
            _ => {
                push_value(&mut raw, s, &value, source).map_err(|e| failed(spec, e.to_string()))?
            }
        }
    }
    Ok((raw, hooks))
}

fn failed(spec: &str, detail: String) -> ConfError {
    ConfError::Failed {
        path: spec.to_owned(),
        detail,
    }
}

/// `python:module`: import it; its globals are the settings. The source text
/// (for line numbers) is read when the module has a file.
fn import_module<'py>(
    py: Python<'py>,
    spec: &str,
    module: &str,
) -> Result<(Bound<'py, PyDict>, Option<String>), ConfError> {
    let m = py
        .import(module)
        .map_err(|e| failed(spec, super::format_traceback(py, &e)))?;
    let file: Option<String> = m.getattr("__file__").ok().and_then(|f| f.extract().ok());
    let text = file
        .as_deref()
        .and_then(|f| std::fs::read_to_string(f).ok());
    Ok((m.dict(), text))
}

/// A config file path: run it in a fresh namespace, as Gunicorn does; returns
/// that namespace and the file's text.
fn exec_file<'py>(py: Python<'py>, path: &str) -> Result<(Bound<'py, PyDict>, String), ConfError> {
    let text = std::fs::read_to_string(path).map_err(|e| failed(path, e.to_string()))?;
    let ns = PyDict::new(py);
    let prepare = || -> PyResult<()> {
        ns.set_item("__file__", path)?;
        ns.set_item("__name__", "__config__")?;
        ns.set_item("__builtins__", py.import("builtins")?)
    };
    prepare().map_err(|e| failed(path, e.to_string()))?;
    let run = || -> PyResult<()> {
        let builtins = py.import("builtins")?;
        let compiled = builtins
            .getattr("compile")?
            .call1((text.as_str(), path, "exec"))?;
        builtins.getattr("exec")?.call1((compiled, &ns))?;
        Ok(())
    };
    run().map_err(|e| failed(path, super::format_traceback(py, &e)))?;
    Ok((ns, text))
}

/// Add `value` as text for the registry to parse: list settings take one entry
/// per item of a list or tuple, Python booleans are spelled `true`/`false`, an
/// empty dict is empty and other dicts are their repr; the rest is `str()`.
fn push_value(
    raw: &mut RawSettings,
    s: &'static Setting,
    value: &Bound<'_, PyAny>,
    source: Source,
) -> PyResult<()> {
    match s.kind {
        Kind::List => {
            let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = value.cast::<PyList>() {
                list.iter().collect()
            } else if let Ok(tuple) = value.cast::<PyTuple>() {
                tuple.iter().collect()
            } else {
                vec![value.clone()]
            };
            for item in items {
                raw.push(s, item.str()?.to_string(), source.clone());
            }
        }
        Kind::Bool if value.is_instance_of::<PyBool>() => {
            let text = if value.is_truthy().unwrap_or(false) {
                "true"
            } else {
                "false"
            };
            raw.push(s, text, source);
        }
        Kind::Dict => {
            let text = match value.cast::<PyDict>() {
                Ok(d) if d.is_empty() => String::new(),
                _ => value.repr().map(|r| r.to_string()).unwrap_or_default(),
            };
            raw.push(s, text, source);
        }
        _ => raw.push(s, value.str()?.to_string(), source),
    }
    Ok(())
}

/// Gunicorn's arity check: the number of positional parameters must match.
/// post_request also takes the older 2- and 3-argument forms.
fn check_hook(
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
    hook: Hook,
    arity: u8,
) -> Result<(), String> {
    if !value.is_callable() {
        return Err("must be callable".into());
    }
    let count: PyResult<usize> = (|| {
        let inspect = py.import("inspect")?;
        let sig = inspect.getattr("signature")?.call1((value,))?;
        let params = sig.getattr("parameters")?.call_method0("values")?;
        let positional_only = inspect.getattr("Parameter")?.getattr("POSITIONAL_ONLY")?;
        let positional_or_kw = inspect
            .getattr("Parameter")?
            .getattr("POSITIONAL_OR_KEYWORD")?;
        let mut n = 0;
        for p in params.try_iter()? {
            let kind = p?.getattr("kind")?;
            if kind.eq(&positional_only)? || kind.eq(&positional_or_kw)? {
                n += 1;
            }
        }
        Ok(n)
    })();
    let Ok(count) = count else {
        // Builtins without a signature: accept, as Gunicorn does not check them either.
        return Ok(());
    };
    let ok = match hook {
        Hook::PostRequest => (2..=4).contains(&count),
        _ => count == usize::from(arity),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must take {arity} positional arguments, takes {count}"
        ))
    }
}

/// True for ints, strings, bools, lists, tuples, dicts: values, not code.
fn is_plain_value(value: &Bound<'_, PyAny>) -> bool {
    !value.is_callable()
        && !value.hasattr("__path__").unwrap_or(false)
        && !value.hasattr("__spec__").unwrap_or(false)
}

/// The 1-based line of the last top-level `name = ...` or `def name(` in `text`.
fn assignment_line(text: &str, name: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            if let Some(rest) = line.strip_prefix(name) {
                let rest = rest.trim_start();
                return rest.starts_with('=') && !rest.starts_with("==");
            }
            line.strip_prefix("def ")
                .and_then(|r| r.strip_prefix(name))
                .is_some_and(|r| r.trim_start().starts_with('('))
        })
        .map(|(i, _)| i + 1)
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_assignment_and_def_lines() {
        let text = "import os\nworkers = 2\nbind = ['a']\n\ndef post_fork(server, worker):\n    x = 1\nworkers = 3\n";
        assert_eq!(assignment_line(text, "workers"), Some(7));
        assert_eq!(assignment_line(text, "bind"), Some(3));
        assert_eq!(assignment_line(text, "post_fork"), Some(5));
        assert_eq!(assignment_line(text, "x"), None);
    }
}
