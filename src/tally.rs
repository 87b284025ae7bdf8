//! Request tallies in shared memory: what each worker counts as its requests
//! complete, for the master's `/metrics`.
//!
//! A [`Tally`] lives inside a worker's heartbeat slot (see `heartbeat.rs`):
//! the worker is its only writer and adds to relaxed atomics, one `fetch_add`
//! each, so counting costs a few nanoseconds and never a system call. The
//! master reads a [`Counts`] snapshot without asking the worker anything, so a
//! stopped or wedged worker cannot delay a scrape; when a worker is reaped its
//! last counts are folded into the master's own total before the slot is reused.
//!
//! The counters are monotonic, so a snapshot taken while a worker writes is at
//! worst a request behind, never wrong in the Prometheus sense (a histogram's
//! sum and count may disagree by the request in progress).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Method classes: the common methods, and everything else as `other`
/// (a bounded label set, whatever clients send).
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];

/// Status classes, by the first digit.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Upper bounds of the request-duration histogram buckets, in seconds
/// (Prometheus' client defaults); one more bucket counts the rest (`+Inf`).
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const CELLS: usize = METHODS.len() * STATUS_CLASSES.len();

/// One worker's counters in shared memory. All-zero bytes are a valid, empty
/// tally (the mapping is anonymous, hence zeroed).
#[repr(C)]
pub struct Tally {
    /// Requests by method class × status class.
    requests: [AtomicU64; CELLS],
    /// Requests per duration bucket (not cumulative; the last one is `+Inf`).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of request durations, in microseconds.
    duration_us: AtomicU64,
    /// Requests handed to the app that are finished (answered or abandoned).
    finished: AtomicU64,
}

/// Counts read from one or more tallies, added together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests by `[method class][status class]`.
    pub requests: [[u64; STATUS_CLASSES.len()]; METHODS.len()],
    /// Requests per duration bucket, not cumulative; the last is `+Inf`.
    pub buckets: [u64; BUCKETS.len() + 1],
    /// Sum of request durations, in microseconds.
    pub duration_us: u64,
    /// Requests handed to the app that are finished.
    pub finished: u64,
}

/// Index of a method's class in [`METHODS`].
pub fn method_class(method: &str) -> usize {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

/// Index of a status's class in [`STATUS_CLASSES`]; out-of-range codes
/// (which the response writer refuses anyway) count as 5xx.
pub fn status_class(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100 - 1),
        _ => STATUS_CLASSES.len() - 1,
    }
}

/// Index of the histogram bucket a duration falls in.
fn bucket(duration: Duration) -> usize {
    let secs = duration.as_secs_f64();
    BUCKETS
        .iter()
        .position(|le| secs <= *le)
        .unwrap_or(BUCKETS.len())
}

impl Tally {
    /// Worker side: a request was answered with `status` after `duration`.
    pub fn record(&self, method: &str, status: u16, duration: Duration) {
        let cell = method_class(method) * STATUS_CLASSES.len() + status_class(status);
        self.requests[cell].fetch_add(1, Ordering::Relaxed);
        self.buckets[bucket(duration)].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.duration_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Worker side: a request the app was given is over (answered, or its
    /// client went away); in flight = dispatched − finished.
    pub fn finish(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// Zero every counter (a fresh worker in a reused slot).
    pub fn clear(&self) {
        let all = self.requests.iter().chain(&self.buckets);
        for c in all.chain([&self.duration_us, &self.finished]) {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Master side: the counts as they are now.
    pub fn snapshot(&self) -> Counts {
        let mut counts = Counts::default();
        for (i, c) in self.requests.iter().enumerate() {
            counts.requests[i / STATUS_CLASSES.len()][i % STATUS_CLASSES.len()] =
                c.load(Ordering::Relaxed);
        }
        for (out, c) in counts.buckets.iter_mut().zip(&self.buckets) {
            *out = c.load(Ordering::Relaxed);
        }
        counts.duration_us = self.duration_us.load(Ordering::Relaxed);
        counts.finished = self.finished.load(Ordering::Relaxed);
        counts
    }
}

impl Counts {
    /// Add `other` into these counts.
    pub fn add(&mut self, other: &Counts) {
        for (row, other_row) in self.requests.iter_mut().zip(&other.requests) {
            for (a, b) in row.iter_mut().zip(other_row) {
                *a += b;
            }
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.duration_us += other.duration_us;
        self.finished += other.finished;
    }

    /// Requests counted, all classes.
    pub fn total(&self) -> u64 {
        self.requests.iter().flatten().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> Box<Tally> {
        // SAFETY: Tally holds only atomics, for which all-zero bytes are valid.
        unsafe { Box::new(std::mem::zeroed()) }
    }

    #[test]
    fn requests_are_counted_by_method_and_status_class() {
        let t = tally();
        t.record("GET", 200, Duration::from_millis(1));
        t.record("GET", 204, Duration::from_millis(1));
        t.record("BREW", 418, Duration::from_millis(1));
        t.record("POST", 503, Duration::from_millis(1));
        let c = t.snapshot();
        assert_eq!(c.requests[method_class("GET")][1], 2);
        assert_eq!(c.requests[METHODS.len() - 1][3], 1);
        assert_eq!(c.requests[method_class("POST")][4], 1);
        assert_eq!(c.total(), 4);
    }

    #[test]
    fn durations_fall_into_buckets_and_sum_in_microseconds() {
        let t = tally();
        t.record("GET", 200, Duration::from_millis(3));
        t.record("GET", 200, Duration::from_millis(300));
        t.record("GET", 200, Duration::from_secs(60));
        let c = t.snapshot();
        assert_eq!(c.buckets[0], 1);
        assert_eq!(c.buckets[6], 1);
        assert_eq!(c.buckets[BUCKETS.len()], 1);
        assert_eq!(c.duration_us, 60_303_000);
        t.clear();
        assert_eq!(t.snapshot(), Counts::default());
    }

    #[test]
    fn counts_add_up() {
        let t = tally();
        t.record("HEAD", 301, Duration::ZERO);
        t.finish();
        let mut sum = t.snapshot();
        sum.add(&t.snapshot());
        assert_eq!(sum.total(), 2);
        assert_eq!(sum.finished, 2);
        assert_eq!(status_class(99), 4);
        assert_eq!(status_class(100), 0);
    }
}
