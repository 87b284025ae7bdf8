//! Worker memory: sampled from `/proc/PID/smaps_rollup` once a second, for
//! `/metrics` and for `max_worker_memory`.
//!
//! The master reads the kernel's accounting of each worker; it never asks the
//! worker. smaps_rollup (Linux 4.14+) gives RSS and PSS in one read. A worker
//! over `max_worker_memory` (PSS; the setting's doc says why) is retired the
//! way TTOU retires one — SIGTERM, a graceful drain while its replacement boots
//! — so no request is lost, and the restart is counted with reason `memory`.
//! Scrapes report the last sample, so a scrape costs no `/proc` reads. (The
//! read takes the worker's mmap lock for reading, as `ps` does; it does not
//! wait for the worker to run, so a stopped worker is measured all the same.)

use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::Arbiter;
use super::metrics::Restart;

/// How often workers are measured.
pub(super) const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// One worker's memory, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Memory {
    /// Resident set size.
    pub(super) rss: u64,
    /// Proportional set size: shared pages divided among their sharers.
    pub(super) pss: u64,
}

impl Memory {
    /// Read `pid`'s memory; None when the process is gone or /proc says nothing.
    pub(super) fn of(pid: Pid) -> Option<Memory> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
        Memory::parse(&text)
    }

    /// Parse smaps_rollup's `Rss:` and `Pss:` lines (values in kB).
    fn parse(text: &str) -> Option<Memory> {
        let field = |name: &str| {
            text.lines().find_map(|l| {
                let rest = l.strip_prefix(name)?.strip_prefix(':')?;
                rest.split_whitespace().next()?.parse::<u64>().ok()
            })
        };
        Some(Memory {
            rss: field("Rss")? * 1024,
            pss: field("Pss")? * 1024,
        })
    }
}

impl Arbiter {
    /// Once a second, when metrics or `max_worker_memory` want it: measure
    /// every worker, and retire those over the limit.
    pub(super) fn check_memory(&mut self) {
        let limit = self.config.max_worker_memory_bytes();
        if limit.is_none() && self.scrapes.is_none() {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.last_memory_check) < SAMPLE_EVERY {
            return;
        }
        self.last_memory_check = now;
        let mut over = Vec::new();
        for (pid, w) in self.workers.iter_mut() {
            w.memory = Memory::of(*pid);
            let Some((limit, memory)) = limit.zip(w.memory) else {
                continue;
            };
            let draining = w.retiring || w.slot.draining().is_some();
            if memory.pss > limit && !draining && w.aborted_at.is_none() {
                over.push((*pid, memory.pss, limit));
            }
        }
        for (pid, pss, limit) in over {
            crate::log::warning(&format!(
                "Worker (pid:{pid}) uses {:.1} MiB (PSS), over max_worker_memory {} MiB; retiring it",
                mebibytes(pss),
                limit >> 20
            ));
            if let Some(w) = self.workers.get_mut(&pid) {
                w.recycle = Some(Restart::Memory);
            }
            self.retire(pid);
        }
    }
}

fn mebibytes(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaps_rollup_gives_rss_and_pss_in_bytes() {
        let text = "55d0c0a00000-7ffd4e3f6000 ---p 00000000 00:00 0   [rollup]\n\
                    Rss:               20480 kB\n\
                    Pss:                9216 kB\n\
                    Pss_Anon:           4096 kB\n";
        let m = Memory::parse(text).unwrap();
        assert_eq!(m.rss, 20480 * 1024);
        assert_eq!(m.pss, 9216 * 1024);
        assert_eq!(Memory::parse("Rss: 1 kB\n"), None);
    }

    #[test]
    fn this_process_can_be_measured() {
        let m = Memory::of(nix::unistd::getpid()).unwrap();
        assert!(m.rss > 0 && m.pss > 0 && m.pss <= m.rss);
    }
}
