//! SIGHUP and SIGUSR2: new code and configuration without dropping a request.
//!
//! HUP re-reads the configuration (the same way start-up did), starts a new
//! generation of workers, and retires the old generation only once every new
//! worker has loaded the app and serves. Gunicorn kills the old workers at once,
//! so requests fail while the new ones import; and if the new code cannot even
//! be imported, here the reload is abandoned and the old workers serve on.
//!
//! The TLS certificate and key are read again too, for the new generation's
//! connections; connections the old workers hold keep their sessions. Files
//! that cannot be used (a broken key, a certificate that does not match it)
//! leave the previous certificate in use, and the log says why.
//!
//! With preload_app the master itself holds the old code, so HUP starts a new
//! master instead (as USR2 does) and that master retires this one when it is ready.

use std::time::Instant;

use pyo3::Python;

use super::{Arbiter, reexec};
use crate::config::Config;
use crate::python::hooks::{Hook, Hooks};

/// A reload whose new workers are still booting.
pub(super) struct Pending {
    /// The configuration to go back to if the new workers cannot load the app.
    previous: Option<(Config, Hooks, Option<crate::tls::Acceptor>)>,
    /// Listeners bound for the new configuration replaced these.
    listeners_replaced: bool,
    /// When the HUP arrived.
    started: Instant,
}

impl Arbiter {
    /// SIGHUP.
    pub(super) fn reload(&mut self) {
        crate::log::info("Handling signal: hup");
        self.notifier.reloading();
        if self.reload.is_some() {
            crate::log::warning("Reload already in progress; ignoring SIGHUP");
            return;
        }
        if self.config.preload_app {
            self.upgrade(true);
            return;
        }
        let loaded = match self.launch.load() {
            Ok(l) => l,
            Err(e) => {
                crate::log::error(&format!(
                    "Reload failed, keeping the running configuration: {e}"
                ));
                self.notifier.ready(&self.status_line());
                return;
            }
        };
        if let Err(e) = crate::launch::apply_process_settings(&loaded.config) {
            crate::log::error(&format!(
                "Reload failed, keeping the running configuration: {e}"
            ));
            self.notifier.ready(&self.status_line());
            return;
        }
        if let Err(e) = crate::log::reopen() {
            crate::log::warning(&format!("cannot reopen the error log: {e}"));
        }
        let mut listeners_replaced = false;
        if loaded.config.bind != self.config.bind || loaded.config.backlog != self.config.backlog {
            match self.rebind(&loaded.config) {
                Ok(new) => {
                    for l in &new {
                        crate::log::info(&format!("Listening at: {}", l.describe()));
                    }
                    self.retired_listeners = std::mem::replace(&mut self.listeners, new);
                    listeners_replaced = true;
                }
                Err(e) => {
                    crate::log::error(&format!(
                        "Reload failed, keeping the running configuration: {e}"
                    ));
                    self.notifier.ready(&self.status_line());
                    return;
                }
            }
        }
        crate::launch::warn_unfired_hooks(&loaded.hooks);
        let previous_tls = self.reload_tls(&loaded.config);
        for addr in &loaded.config.plain_bind {
            if !self.listeners.iter().any(|l| l.matches(addr)) {
                crate::log::error(&format!(
                    "plain_bind {addr} names no socket being served; every socket serves TLS"
                ));
            }
        }
        let previous_config = std::mem::replace(&mut self.config, loaded.config);
        let previous_hooks = std::mem::replace(&mut self.hooks, loaded.hooks);
        if self.hooks.is_set(Hook::OnReload) {
            Python::attach(|py| self.hooks.on_reload(py, self.view()));
        }
        self.reload = Some(Pending {
            previous: Some((previous_config, previous_hooks, previous_tls)),
            listeners_replaced,
            started: Instant::now(),
        });
        self.generation += 1;
        self.num_workers = self.config.workers;
        self.ready_sent = false;
        crate::log::info(&format!(
            "Reloading: starting {} new worker(s) (generation {})",
            self.num_workers, self.generation
        ));
    }

    /// Read the TLS files `config` names for the next generation; returns the
    /// acceptor they replace. Files that cannot be used keep the current one.
    fn reload_tls(&mut self, config: &Config) -> Option<crate::tls::Acceptor> {
        match self.launch.load_tls(config) {
            Ok(tls) => std::mem::replace(&mut self.tls, tls),
            Err(e) => {
                crate::log::error(&format!(
                    "TLS files not reloaded, new workers keep the previous certificate: {e}"
                ));
                self.tls.clone()
            }
        }
    }

    /// Listeners for a changed `bind`: sockets from systemd (or a previous
    /// master) and addresses still configured are kept, as duplicates, so they
    /// are never closed or re-bound; new addresses are bound.
    fn rebind(
        &mut self,
        config: &Config,
    ) -> Result<Vec<crate::listen::Listener>, crate::listen::BindError> {
        use crate::listen::{Address, Listener};
        let mut new = Vec::new();
        for old in &mut self.listeners {
            let wanted = old.inherited || config.bind.iter().any(|a| old.serves(a));
            if !wanted {
                continue;
            }
            let fd = old
                .fd
                .try_clone()
                .map_err(|source| crate::listen::BindError::Bind {
                    addr: old.describe(),
                    source,
                })?;
            let mut kept = Listener::from_parts(fd, old.kind.clone());
            kept.inherited = old.inherited;
            kept.name = old.name.clone();
            // The path stays in use: only the new copy may remove it at exit.
            for a in &config.bind {
                kept.serves(a);
            }
            old.keep_path();
            new.push(kept);
        }
        for addr in &config.bind {
            if !new.iter_mut().any(|l| l.serves(addr)) {
                new.extend(Listener::bind(addr, config.backlog, config.reuse_port)?);
            }
        }
        if new.is_empty() {
            let default = Address::Tcp {
                host: "127.0.0.1".into(),
                port: 8000,
            };
            new.extend(Listener::bind(&default, config.backlog, config.reuse_port)?);
        }
        Ok(new)
    }

    /// The new generation serves: retire the old one.
    pub(super) fn finish_reload(&mut self) {
        let Some(pending) = self.reload.take() else {
            return;
        };
        let old: Vec<_> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation < self.generation)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in old {
            self.retire(pid);
        }
        crate::log::info(&format!(
            "Reload complete in {:.1}s",
            pending.started.elapsed().as_secs_f64()
        ));
    }

    /// The new workers cannot load the app: stop them, restore the previous
    /// configuration, let the old generation serve on.
    pub(super) fn abort_reload(&mut self) {
        let Some(mut pending) = self.reload.take() else {
            return;
        };
        crate::log::error(
            "Reload failed: the new workers cannot load the application; the previous workers keep serving",
        );
        let new: Vec<_> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation == self.generation)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in new {
            self.retire(pid);
        }
        if let Some((config, hooks, tls)) = pending.previous.take() {
            self.config = config;
            self.hooks = hooks;
            self.tls = tls;
        }
        if pending.listeners_replaced {
            self.listeners = std::mem::take(&mut self.retired_listeners);
            // They are the only copies again: theirs to remove at exit.
            for l in &mut self.listeners {
                for a in &self.config.bind {
                    l.serves(a);
                }
            }
        }
        self.generation -= 1;
        self.num_workers = self.config.workers;
        self.ready_sent = true;
        self.notifier.ready(&self.status_line());
    }

    /// USR2 (and HUP with preload_app): start a new master from the binary on
    /// disk with our sockets. With `takeover`, it stops us once it serves.
    pub(super) fn upgrade(&mut self, takeover: bool) {
        if let Some(child) = self.reexec_child {
            crate::log::warning(&format!(
                "USR2 ignored: a new master (pid:{child}) is already running"
            ));
            return;
        }
        if let Some(parent) = self.parent_master {
            crate::log::warning(&format!(
                "USR2 ignored: the previous master (pid:{parent}) has not exited yet"
            ));
            return;
        }
        if self.hooks.is_set(Hook::PreExec) {
            Python::attach(|py| self.hooks.pre_exec(py, self.view()));
        }
        let env: Vec<(String, String)> = self
            .launch
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match reexec::reexec(
            &self.launch.invocation,
            &env,
            &self.listeners,
            self.scrapes.as_ref().map(super::scrape::Scrapes::listener),
            takeover,
        ) {
            Ok(pid) => {
                crate::log::info(&format!("Started a new master (pid:{pid})"));
                self.reexec_child = Some(pid);
                // The new master serves the same socket files now.
                for l in &mut self.listeners {
                    l.keep_path();
                }
                if let Some(scrapes) = &mut self.scrapes {
                    scrapes.keep_path();
                }
            }
            Err(e) => crate::log::error(&format!("cannot start a new master: {e}")),
        }
    }
}
