//! Accept balance between workers.
//!
//! Workers share their listening sockets, and a keep-alive connection stays
//! with the worker that accepted it. The kernel wakes every worker's epoll for
//! a new connection and whichever runs first drains the backlog, so a burst of
//! connections (a load balancer's pool opening, a client starting) lands
//! mostly on one worker while another idles, and that worker's queue shows up
//! as tail latency.
//!
//! The rule: a worker leaves a new connection to a peer that takes
//! connections (not stopping, not at `worker_connections`) and holds at least
//! two fewer of them. Every worker's epoll is woken by the same connection,
//! so the peer takes it when its loop next turns. The deferring worker looks
//! again every [`DEFER_RETRY`], and takes the connection itself once no peer
//! qualifies, or when it has waited long enough: [`DEFER_LIMIT`] for a peer
//! in its event loop (it only needs a CPU), [`DEFER_LIMIT_BUSY`] for a peer in
//! the app (it may be in a long request).
//!
//! The state is one word per worker in memory the master maps before forking:
//! `(open connections << 2) | availability`, written only by its worker (a
//! store per accept, close, request and turn of the loop), read by the
//! others. The master hands out entries by heartbeat slot number and clears
//! them at reaping.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::heartbeat::SLOTS;

/// How long a connection is left to a less loaded peer in its event loop
/// (on a loaded machine it may wait a while for a CPU).
pub const DEFER_LIMIT: Duration = Duration::from_millis(50);

/// How long a connection is left to a less loaded peer running a request.
pub const DEFER_LIMIT_BUSY: Duration = Duration::from_millis(2);

/// While deferring, look again this often.
pub const DEFER_RETRY: Duration = Duration::from_millis(1);

/// Whether a worker takes new connections now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Stopping, at `worker_connections`, or not serving yet.
    Closed = 0,
    /// Running a request in the app: it accepts when the request ends.
    Busy = 1,
    /// In its event loop: it accepts as soon as it has a CPU.
    Ready = 2,
}

#[repr(C)]
struct Shared {
    /// One past the highest entry ever handed out: readers scan below it.
    high: AtomicUsize,
    load: [AtomicU64; SLOTS],
}

/// The master's shared board of worker loads.
pub struct Board {
    shared: *const Shared,
}

/// One worker's entry on the board: copyable into the forked child.
#[derive(Clone, Copy, Debug)]
pub struct Seat {
    shared: *const Shared,
    index: usize,
}

// SAFETY: both point into a MAP_SHARED mapping that is never unmapped while the
// process runs, and it is only accessed through atomics.
unsafe impl Send for Seat {}

impl Board {
    /// Map the shared board.
    ///
    /// # Errors
    /// mmap(2) failed.
    pub fn new() -> std::io::Result<Board> {
        // SAFETY: an anonymous shared mapping with no file; the result is
        // checked. Zeroed memory is a valid Shared (all atomics).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<Shared>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Board { shared: ptr.cast() })
    }

    fn shared(&self) -> &Shared {
        // SAFETY: see the `Send` impl.
        unsafe { &*self.shared }
    }

    /// The entry for the worker about to be forked into heartbeat slot
    /// `index`, cleared (not waiting, no connections).
    pub fn seat(&self, index: usize) -> Seat {
        let shared = self.shared();
        shared.load[index].store(0, Ordering::Relaxed);
        shared.high.fetch_max(index + 1, Ordering::Relaxed);
        Seat {
            shared: self.shared,
            index,
        }
    }

    /// A reaped worker's entry: nobody defers to it any more.
    pub fn vacate(&self, index: usize) {
        self.shared().load[index].store(0, Ordering::Relaxed);
    }
}

impl Seat {
    fn shared(&self) -> &Shared {
        // SAFETY: see the `Send` impl.
        unsafe { &*self.shared }
    }

    /// Publish our open connections, and whether we take more.
    pub fn publish(&self, open: usize, availability: Availability) {
        let word = ((open as u64) << 2) | availability as u64;
        self.shared().load[self.index].store(word, Ordering::Relaxed);
    }

    /// How long the next connection may be left to a peer that takes
    /// connections and holds at least two fewer than our `open`; None when
    /// no peer qualifies and we should take it.
    pub fn patience(&self, open: usize) -> Option<Duration> {
        let shared = self.shared();
        let high = shared.high.load(Ordering::Relaxed).min(SLOTS);
        let mut patience = None;
        for i in (0..high).filter(|&i| i != self.index) {
            let word = shared.load[i].load(Ordering::Relaxed);
            if ((word >> 2) as usize) + 1 >= open {
                continue;
            }
            match word & 3 {
                2 => return Some(DEFER_LIMIT),
                1 => patience = Some(DEFER_LIMIT_BUSY),
                _ => {}
            }
        }
        patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_peer_with_two_fewer_connections_is_waited_for() {
        let board = Board::new().unwrap();
        let (a, b) = (board.seat(0), board.seat(1));
        b.publish(3, Availability::Ready);
        assert_eq!(a.patience(4), None, "one more than the peer is balanced");
        assert_eq!(a.patience(5), Some(DEFER_LIMIT));
        assert_eq!(b.patience(5), None, "a seat never defers to itself");
    }

    #[test]
    fn a_busy_peer_is_waited_for_briefly_and_a_closed_one_not_at_all() {
        let board = Board::new().unwrap();
        let (a, b, c) = (board.seat(0), board.seat(2), board.seat(3));
        b.publish(0, Availability::Busy);
        c.publish(0, Availability::Closed);
        assert_eq!(a.patience(10), Some(DEFER_LIMIT_BUSY));
        c.publish(0, Availability::Ready);
        assert_eq!(
            a.patience(10),
            Some(DEFER_LIMIT),
            "the readiest peer counts"
        );
        board.vacate(3);
        board.vacate(2);
        assert_eq!(a.patience(10), None);
    }

    #[test]
    fn a_new_seat_starts_closed() {
        let board = Board::new().unwrap();
        let b = board.seat(1);
        b.publish(0, Availability::Ready);
        let a = board.seat(0);
        assert!(a.patience(2).is_some());
        let _reborn = board.seat(1);
        assert_eq!(a.patience(2), None);
    }
}
