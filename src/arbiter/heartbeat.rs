//! Worker liveness through shared memory, not files.
//!
//! Before forking, the master maps one anonymous shared page set holding a slot
//! per worker. A worker stores the CLOCK_MONOTONIC time (milliseconds; the clock
//! is system-wide, so both processes read the same timeline) into its slot each
//! turn of its event loop and before each request. The master reads the slots;
//! a worker silent for longer than `timeout` — while booting too — is aborted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Number of slots: the most workers that can be alive at once.
pub const SLOTS: usize = 1024;

/// The shared slot array, owned by the master and inherited by workers.
pub struct Heartbeats {
    base: *mut AtomicU64,
    free: Vec<usize>,
}

/// One worker's slot: copyable into the forked child.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    cell: *const AtomicU64,
    /// Slot number, to give it back when the worker is reaped.
    pub index: usize,
}

// SAFETY: a Slot points into a MAP_SHARED mapping that lives for the whole process
// (never unmapped while workers run) and is only accessed through atomics.
unsafe impl Send for Slot {}

impl Heartbeats {
    /// Map the shared slots.
    ///
    /// # Errors
    /// mmap(2) failed.
    pub fn new() -> std::io::Result<Heartbeats> {
        let len = SLOTS * std::mem::size_of::<AtomicU64>();
        // SAFETY: an anonymous shared mapping with no file; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Heartbeats {
            base: ptr.cast(),
            free: (0..SLOTS).rev().collect(),
        })
    }

    /// Take a free slot, stamped with "now" (a booting worker starts its clock).
    pub fn allocate(&mut self) -> Option<Slot> {
        let index = self.free.pop()?;
        // SAFETY: index < SLOTS, inside the mapping; zeroed memory is a valid AtomicU64.
        let cell = unsafe { self.base.add(index) };
        let slot = Slot { cell, index };
        slot.beat();
        Some(slot)
    }

    /// Return a reaped worker's slot.
    pub fn release(&mut self, slot: Slot) {
        self.free.push(slot.index);
    }
}

impl Slot {
    /// Record that the worker is alive now.
    pub fn beat(&self) {
        // SAFETY: see the `Send` impl: the mapping outlives every Slot.
        unsafe { &*self.cell }.store(now_ms(), Ordering::Relaxed);
    }

    /// How long since the last beat.
    pub fn silence(&self) -> Duration {
        // SAFETY: as in `beat`.
        let last = unsafe { &*self.cell }.load(Ordering::Relaxed);
        Duration::from_millis(now_ms().saturating_sub(last))
    }
}

/// CLOCK_MONOTONIC in milliseconds.
fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_in_a_child_is_seen_by_the_parent() {
        let mut hb = Heartbeats::new().unwrap();
        let slot = hb.allocate().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(slot.silence() >= Duration::from_millis(30));
        // SAFETY: the child only touches the shared slot and _exits.
        match unsafe { libc::fork() } {
            0 => {
                slot.beat();
                unsafe { libc::_exit(0) };
            }
            pid => {
                let mut status = 0;
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
        }
        assert!(slot.silence() < Duration::from_millis(30));
    }

    #[test]
    fn released_slots_are_reused() {
        let mut hb = Heartbeats::new().unwrap();
        let a = hb.allocate().unwrap();
        hb.release(a);
        assert_eq!(hb.allocate().unwrap().index, a.index);
    }
}
