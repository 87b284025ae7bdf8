//! Worker liveness through shared memory, not files.
//!
//! Before forking, the master maps one anonymous shared page set holding a slot
//! per worker. A worker stores the CLOCK_MONOTONIC time (milliseconds; the clock
//! is system-wide, so both processes read the same timeline) into its slot each
//! turn of its event loop and before each request. The master reads the slots;
//! a worker silent for longer than `timeout` — while booting too — is aborted.
//!
//! A slot also names the request the worker is serving (method, target, start
//! time), so a timeout can say what the worker was stuck on. The worker is the
//! only writer of its slot and the master only reads, so a seqlock is enough:
//! the writer makes the generation odd, writes, makes it even again; a reader
//! retries while it is odd or changed under it. Every byte is an atomic, so a
//! torn read is merely discarded, never undefined behaviour.
//!
//! This is a contract between the two kinds of process, so it lives beside
//! both: the arbiter maps, hands out and reads slots; a worker only writes its
//! own. Neither imports the other to reach it.

use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::Duration;

use crate::tally::Tally;

/// Number of slots: the most workers that can be alive at once.
pub const SLOTS: usize = 1024;

/// Most bytes of "METHOD target" a slot keeps.
pub const REQUEST_TEXT_MAX: usize = 200;

const TEXT_WORDS: usize = REQUEST_TEXT_MAX.div_ceil(8);

/// One slot's shared memory. All-zero bytes are a valid, idle cell.
#[repr(C)]
struct Cell {
    /// CLOCK_MONOTONIC ms of the last beat.
    beat: AtomicU64,
    /// Seqlock generation: odd while the worker rewrites the request fields.
    generation: AtomicU64,
    /// CLOCK_MONOTONIC ms when the current request reached the app; 0 when idle.
    started: AtomicU64,
    /// Valid bytes in `text`.
    len: AtomicU64,
    /// "METHOD target", truncated, packed little-endian into words.
    text: [AtomicU64; TEXT_WORDS],
    /// Requests the worker has dispatched (for the master's req/s in STATUS=).
    served: AtomicU64,
    /// Why the worker stopped taking new work: a [`Drain`] as a number, 0 while
    /// it accepts.
    draining: AtomicU64,
    /// What its requests came to, for `/metrics`.
    tally: Tally,
}

/// Why a worker stopped taking new work, as it wrote into its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// It served its `max_requests`.
    MaxRequests,
    /// Any other graceful stop (TERM, `--reload`).
    Stopping,
}

/// The shared slot array, owned by the master and inherited by workers.
pub struct Heartbeats {
    base: *mut Cell,
    free: Vec<usize>,
}

/// One worker's slot: copyable into the forked child.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    cell: *const Cell,
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
        let len = SLOTS * std::mem::size_of::<Cell>();
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

    /// Take a free slot, stamped with "now" (a booting worker starts its clock)
    /// and with no request (its previous owner may have died mid-request).
    pub fn allocate(&mut self) -> Option<Slot> {
        let index = self.free.pop()?;
        // SAFETY: index < SLOTS, inside the mapping; zeroed memory is a valid Cell
        // (all atomics).
        let cell = unsafe { self.base.add(index) };
        let slot = Slot { cell, index };
        slot.clear_request();
        slot.cell().served.store(0, Ordering::Relaxed);
        slot.cell().draining.store(0, Ordering::Relaxed);
        slot.cell().tally.clear();
        slot.beat();
        Some(slot)
    }

    /// Return a reaped worker's slot.
    pub fn release(&mut self, slot: Slot) {
        self.free.push(slot.index);
    }
}

impl Slot {
    fn cell(&self) -> &Cell {
        // SAFETY: see the `Send` impl: the mapping outlives every Slot, and Cell
        // holds only atomics, so shared references across processes are sound.
        unsafe { &*self.cell }
    }

    /// Record that the worker is alive now.
    pub fn beat(&self) {
        self.cell().beat.store(now_ms(), Ordering::Relaxed);
    }

    /// Worker side: count one more request.
    pub fn count_request(&self) {
        self.cell().served.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests the worker in this slot has dispatched.
    pub fn served(&self) -> u64 {
        self.cell().served.load(Ordering::Relaxed)
    }

    /// The worker's request tally: it records into it, the master reads it.
    pub fn tally(&self) -> &Tally {
        &self.cell().tally
    }

    /// Worker side: it stopped taking new work, for `why`.
    pub fn set_draining(&self, why: Drain) {
        let code = match why {
            Drain::MaxRequests => 1,
            Drain::Stopping => 2,
        };
        self.cell().draining.store(code, Ordering::Relaxed);
    }

    /// Why the worker stopped taking new work; None while it accepts.
    pub fn draining(&self) -> Option<Drain> {
        match self.cell().draining.load(Ordering::Relaxed) {
            0 => None,
            1 => Some(Drain::MaxRequests),
            _ => Some(Drain::Stopping),
        }
    }

    /// How long since the last beat.
    pub fn silence(&self) -> Duration {
        let last = self.cell().beat.load(Ordering::Relaxed);
        Duration::from_millis(now_ms().saturating_sub(last))
    }

    /// Worker side: the app is about to serve `method target`. Only the worker
    /// owning the slot may call this (the seqlock has a single writer).
    pub fn set_request(&self, method: &str, target: &str) {
        let mut text = [0u8; TEXT_WORDS * 8];
        let mut len = 0;
        for part in [method.as_bytes(), b" ", target.as_bytes()] {
            let n = part.len().min(REQUEST_TEXT_MAX - len);
            text[len..len + n].copy_from_slice(&part[..n]);
            len += n;
        }
        self.write(now_ms().max(1), &text, len);
    }

    /// Worker side: the app returned; the worker is between requests.
    pub fn clear_request(&self) {
        self.write(0, &[0u8; TEXT_WORDS * 8], 0);
    }

    fn write(&self, started: u64, text: &[u8; TEXT_WORDS * 8], len: usize) {
        let cell = self.cell();
        let generation = cell.generation.load(Ordering::Relaxed);
        cell.generation
            .store(generation.wrapping_add(1) | 1, Ordering::Relaxed);
        // The odd generation must be visible before any field changes.
        fence(Ordering::Release);
        cell.started.store(started, Ordering::Relaxed);
        cell.len.store(len as u64, Ordering::Relaxed);
        for (word, chunk) in cell.text.iter().zip(text.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        cell.generation
            .store((generation | 1).wrapping_add(1), Ordering::Release);
    }

    /// Master side: the request the worker is serving ("METHOD target", possibly
    /// truncated to [`REQUEST_TEXT_MAX`] bytes) and for how long; None when it is
    /// between requests, or when the slot kept changing while we read it.
    pub fn request(&self) -> Option<(String, Duration)> {
        let cell = self.cell();
        // A worker killed mid-write leaves the generation odd for good: give up
        // after a few tries rather than spin.
        for _ in 0..16 {
            let before = cell.generation.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let started = cell.started.load(Ordering::Relaxed);
            let len = (cell.len.load(Ordering::Relaxed) as usize).min(REQUEST_TEXT_MAX);
            let mut text = [0u8; TEXT_WORDS * 8];
            for (word, chunk) in cell.text.iter().zip(text.chunks_exact_mut(8)) {
                chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
            // The field loads must complete before the generation is re-read.
            fence(Ordering::Acquire);
            if cell.generation.load(Ordering::Relaxed) != before {
                continue;
            }
            if started == 0 {
                return None;
            }
            let what = String::from_utf8_lossy(&text[..len]).into_owned();
            return Some((
                what,
                Duration::from_millis(now_ms().saturating_sub(started)),
            ));
        }
        None
    }
}

/// CLOCK_MONOTONIC in milliseconds.
fn now_ms() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux; should it, 0 reads as "no silence".
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000
    })
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
    fn a_reused_slot_starts_with_an_empty_tally_and_no_drain() {
        let mut hb = Heartbeats::new().unwrap();
        let slot = hb.allocate().unwrap();
        slot.tally().record("GET", 200, Duration::ZERO);
        slot.set_draining(Drain::MaxRequests);
        assert_eq!(slot.draining(), Some(Drain::MaxRequests));
        hb.release(slot);
        let again = hb.allocate().unwrap();
        assert_eq!(again.tally().snapshot().total(), 0);
        assert_eq!(again.draining(), None);
    }

    #[test]
    fn released_slots_are_reused() {
        let mut hb = Heartbeats::new().unwrap();
        let a = hb.allocate().unwrap();
        hb.release(a);
        assert_eq!(hb.allocate().unwrap().index, a.index);
    }

    #[test]
    fn a_request_set_in_a_child_is_read_by_the_parent() {
        let mut hb = Heartbeats::new().unwrap();
        let slot = hb.allocate().unwrap();
        assert_eq!(slot.request(), None);
        // SAFETY: the child only touches the shared slot and _exits.
        match unsafe { libc::fork() } {
            0 => {
                slot.set_request("GET", "/slow?sleep=10");
                unsafe { libc::_exit(0) };
            }
            pid => {
                let mut status = 0;
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
        }
        std::thread::sleep(Duration::from_millis(20));
        let (what, elapsed) = slot.request().unwrap();
        assert_eq!(what, "GET /slow?sleep=10");
        assert!(elapsed >= Duration::from_millis(20));
        slot.clear_request();
        assert_eq!(slot.request(), None);
    }

    #[test]
    fn long_targets_are_truncated() {
        let mut hb = Heartbeats::new().unwrap();
        let slot = hb.allocate().unwrap();
        slot.set_request("POST", &"x".repeat(1000));
        let (what, _) = slot.request().unwrap();
        assert_eq!(what.len(), REQUEST_TEXT_MAX);
        assert!(what.starts_with("POST xxx"));
    }

    #[test]
    fn a_reallocated_slot_forgets_the_dead_workers_request() {
        let mut hb = Heartbeats::new().unwrap();
        let slot = hb.allocate().unwrap();
        slot.set_request("GET", "/");
        hb.release(slot);
        assert_eq!(hb.allocate().unwrap().request(), None);
    }

    #[test]
    fn readers_never_see_a_torn_request() {
        let mut hb = Heartbeats::new().unwrap();
        let slot = hb.allocate().unwrap();
        let writer = std::thread::spawn(move || {
            for i in 0..20_000 {
                if i % 2 == 0 {
                    slot.set_request("GET", &"a".repeat(150));
                } else {
                    slot.set_request("PUT", &"b".repeat(40));
                }
            }
        });
        while !writer.is_finished() {
            if let Some((what, _)) = slot.request() {
                let ok = what == format!("GET {}", "a".repeat(150))
                    || what == format!("PUT {}", "b".repeat(40));
                assert!(ok, "torn read: {what:?}");
            }
        }
        writer.join().unwrap();
    }
}
