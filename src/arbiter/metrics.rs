//! What `/metrics`, `/healthz` and `/readyz` say, from the master's state and
//! the workers' shared-memory slots; the exposition itself is
//! `prometheus-client`'s text encoder (OpenMetrics 1.0, which Prometheus reads).
//!
//! A scrape takes a [`Snapshot`] — plain numbers, copied out of the slots and
//! the master's own counters without a system call — and encodes it through a
//! [`Collector`]. Counts of workers that have exited are folded into
//! `Arbiter::gone` when they are reaped, so totals never go backwards when a
//! worker is recycled. Per-worker series carry `worker` (its slot number,
//! reused by its replacement, so the label set stays bounded) and `pid`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::memory::Memory;
use super::scrape::{Answer, Route};
use super::{Arbiter, Life, WorkerState};
use crate::heartbeat::Drain;
use crate::listen::Listener;
use crate::tally::{BUCKETS, Counts, METHODS, STATUS_CLASSES};

/// Content-Type of the exposition.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why a worker was replaced, for `rgunicorn_worker_restarts_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Restart {
    /// It exited or died unasked.
    Exit,
    /// It was aborted for silence (`timeout`).
    Timeout,
    /// It served its `max_requests`.
    MaxRequests,
    /// It grew past `max_worker_memory`.
    Memory,
}

impl Restart {
    pub(super) const ALL: [Restart; 4] = [
        Restart::Exit,
        Restart::Timeout,
        Restart::MaxRequests,
        Restart::Memory,
    ];

    fn label(self) -> &'static str {
        match self {
            Restart::Exit => "exit",
            Restart::Timeout => "timeout",
            Restart::MaxRequests => "max_requests",
            Restart::Memory => "memory",
        }
    }
}

/// Where a worker is in its life, as `/metrics` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WorkerPhase {
    /// Forked, app not loaded yet.
    Booting,
    /// Serving, no request in the app.
    Idle,
    /// A request is in the app (or its response is being resumed).
    Busy,
    /// Stopped accepting (retired, max_requests, memory, stopping).
    Draining,
}

impl WorkerPhase {
    const ALL: [WorkerPhase; 4] = [
        WorkerPhase::Booting,
        WorkerPhase::Idle,
        WorkerPhase::Busy,
        WorkerPhase::Draining,
    ];

    fn label(self) -> &'static str {
        match self {
            WorkerPhase::Booting => "booting",
            WorkerPhase::Idle => "idle",
            WorkerPhase::Busy => "busy",
            WorkerPhase::Draining => "draining",
        }
    }
}

/// One worker's row.
#[derive(Debug)]
struct WorkerRow {
    slot: usize,
    pid: i32,
    phase: WorkerPhase,
    served: u64,
    heartbeat_age: f64,
    memory: Option<Memory>,
}

/// Everything one scrape reports, copied out at once.
#[derive(Debug)]
pub(super) struct Snapshot {
    workers: Vec<WorkerRow>,
    counts: Counts,
    in_flight: u64,
    restarts: [u64; Restart::ALL.len()],
    /// Listener description, and its accept queue (length, limit) when known.
    queues: Vec<(String, Option<(u32, u32)>)>,
    wanted: usize,
    ready: bool,
}

impl Arbiter {
    /// The answer to one request on the metrics listener.
    pub(super) fn answer(&self, route: Route) -> Answer {
        match route {
            Route::Health => Answer::text(200, "ok\n"),
            Route::Ready if self.ready() => Answer::text(200, "ready\n"),
            Route::Ready => Answer::text(503, &format!("not ready: {}\n", self.status_line())),
            Route::Metrics => {
                let mut registry = prometheus_client::registry::Registry::default();
                registry.register_collector(Box::new(self.snapshot()));
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &registry) {
                    Ok(()) => Answer {
                        status: 200,
                        content_type: OPENMETRICS,
                        body,
                    },
                    Err(_) => Answer::text(500, "cannot encode metrics\n"),
                }
            }
        }
    }

    /// Answer whatever the metrics listener has ready (a no-op without one).
    pub(super) fn serve_scrapes(&mut self) {
        if let Some(mut scrapes) = self.scrapes.take() {
            scrapes.serve(|route| self.answer(route));
            self.scrapes = Some(scrapes);
        }
    }

    /// `gunicorn.workers` to statsD once a second, as Gunicorn's arbiter does
    /// (a no-op without `statsd_host`).
    pub(super) fn send_statsd_gauge(&mut self) {
        if self.config.statsd_host.is_none()
            || self.last_statsd_gauge.elapsed() < std::time::Duration::from_secs(1)
        {
            return;
        }
        self.last_statsd_gauge = std::time::Instant::now();
        crate::log::statsd::workers(self.workers.len());
    }

    /// A worker was reaped: keep its request counts, and count its restart
    /// by reason (`expected`: retired or stopping, so no restart unless a
    /// reason says otherwise).
    pub(super) fn account_exit(&mut self, w: &WorkerState, expected: bool) {
        self.gone.add(&w.slot.tally().snapshot());
        let reason = if w.aborted_at.is_some() {
            Some(Restart::Timeout)
        } else if w.recycle.is_some() {
            w.recycle
        } else if w.slot.draining() == Some(Drain::MaxRequests) {
            Some(Restart::MaxRequests)
        } else {
            (!expected).then_some(Restart::Exit)
        };
        if let Some(reason) = reason
            && let Some(i) = Restart::ALL.iter().position(|r| *r == reason)
        {
            self.restarts[i] += 1;
        }
    }

    /// `/readyz`: running, not in a shutdown delay or a reload, and at least
    /// `ready_min_workers` (default: all) workers serving.
    pub(super) fn ready(&self) -> bool {
        self.phase == Life::Running
            && self.shutdown_at.is_none()
            && self.reload.is_none()
            && self.accepting() >= self.config.ready_workers(self.num_workers).max(1)
    }

    /// Workers of the current generation that have loaded the app and still
    /// accept: neither retired by the master nor draining on their own
    /// (max_requests, --reload).
    fn accepting(&self) -> usize {
        self.workers
            .values()
            .filter(|w| w.booted && !w.retiring && w.generation == self.generation)
            .filter(|w| w.slot.draining().is_none())
            .count()
    }

    /// Copy out what a scrape reports.
    fn snapshot(&self) -> Snapshot {
        let mut counts = self.gone.clone();
        let mut in_flight = 0;
        let mut workers = Vec::with_capacity(self.workers.len());
        for (pid, w) in &self.workers {
            let tally = w.slot.tally().snapshot();
            let served = w.slot.served();
            let own_in_flight = served.saturating_sub(tally.finished);
            in_flight += own_in_flight;
            counts.add(&tally);
            let phase = if w.retiring || w.slot.draining().is_some() {
                WorkerPhase::Draining
            } else if !w.booted {
                WorkerPhase::Booting
            } else if own_in_flight > 0 || w.slot.request().is_some() {
                WorkerPhase::Busy
            } else {
                WorkerPhase::Idle
            };
            workers.push(WorkerRow {
                slot: w.slot.index,
                pid: pid.as_raw(),
                phase,
                served,
                heartbeat_age: w.slot.silence().as_secs_f64(),
                memory: w.memory,
            });
        }
        workers.sort_by_key(|w| w.slot);
        Snapshot {
            workers,
            counts,
            in_flight,
            restarts: self.restarts,
            queues: self.listeners.iter().map(queue).collect(),
            wanted: self.num_workers,
            ready: self.ready(),
        }
    }
}

/// A listener's description and its accept queue, from the kernel.
fn queue(l: &Listener) -> (String, Option<(u32, u32)>) {
    (l.describe(), super::queue::depth(l))
}

type Labels = Vec<(&'static str, String)>;

fn worker_labels(w: &WorkerRow) -> Labels {
    vec![("worker", w.slot.to_string()), ("pid", w.pid.to_string())]
}

/// Encode one gauge family.
fn gauges(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, f64)>,
) -> std::fmt::Result {
    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        m.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

/// Encode one counter family (the encoder adds `_total`).
fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) -> std::fmt::Result {
    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        m.encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        self.encode_workers(&mut e)?;
        self.encode_requests(&mut e)?;
        let restarts = Restart::ALL
            .iter()
            .zip(self.restarts)
            .map(|(r, n)| (vec![("reason", r.label().to_owned())], n));
        counters(
            &mut e,
            "rgunicorn_worker_restarts",
            "Workers replaced, by reason",
            restarts,
        )?;
        let known = self.queues.iter().filter_map(|(l, q)| Some((l, (*q)?)));
        let depth = known
            .clone()
            .map(|(l, (n, _))| (vec![("listener", l.clone())], f64::from(n)));
        gauges(
            &mut e,
            "rgunicorn_listen_queue_length",
            "Connections waiting in the listener's accept queue",
            depth,
        )?;
        let limit = known.map(|(l, (_, max))| (vec![("listener", l.clone())], f64::from(max)));
        gauges(
            &mut e,
            "rgunicorn_listen_queue_limit",
            "The listener's accept queue limit (its backlog)",
            limit,
        )
    }
}

impl Snapshot {
    fn encode_workers(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let one = |v: bool| if v { 1.0 } else { 0.0 };
        gauges(
            e,
            "rgunicorn_ready",
            "1 while /readyz answers 200",
            [(Vec::new(), one(self.ready))],
        )?;
        gauges(
            e,
            "rgunicorn_workers_wanted",
            "Workers the master keeps (workers, TTIN/TTOU)",
            [(Vec::new(), self.wanted as f64)],
        )?;
        let by_phase = WorkerPhase::ALL.iter().map(|p| {
            let n = self.workers.iter().filter(|w| w.phase == *p).count();
            (vec![("state", p.label().to_owned())], n as f64)
        });
        gauges(e, "rgunicorn_workers", "Workers by state", by_phase)?;
        let states = self.workers.iter().flat_map(|w| {
            WorkerPhase::ALL.iter().map(move |p| {
                let mut labels = worker_labels(w);
                labels.push(("state", p.label().to_owned()));
                (labels, one(w.phase == *p))
            })
        });
        gauges(
            e,
            "rgunicorn_worker_state",
            "1 for the state each worker is in: booting, idle, busy, draining",
            states,
        )?;
        let served = self.workers.iter().map(|w| (worker_labels(w), w.served));
        counters(
            e,
            "rgunicorn_worker_requests",
            "Requests each worker has handed to the app",
            served,
        )?;
        let age = self
            .workers
            .iter()
            .map(|w| (worker_labels(w), w.heartbeat_age));
        gauges(
            e,
            "rgunicorn_worker_heartbeat_age_seconds",
            "Seconds since each worker's last heartbeat",
            age,
        )?;
        self.encode_memory(e)
    }

    fn encode_memory(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let measured = self.workers.iter().filter_map(|w| Some((w, w.memory?)));
        let rss = measured
            .clone()
            .map(|(w, m)| (worker_labels(w), m.rss as f64));
        gauges(
            e,
            "rgunicorn_worker_rss_bytes",
            "Each worker's resident set size (sampled every second)",
            rss,
        )?;
        let pss = measured.map(|(w, m)| (worker_labels(w), m.pss as f64));
        gauges(
            e,
            "rgunicorn_worker_pss_bytes",
            "Each worker's proportional set size (sampled every second)",
            pss,
        )
    }

    fn encode_requests(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut rows = Vec::new();
        for (m, row) in METHODS.iter().zip(&self.counts.requests) {
            for (s, n) in STATUS_CLASSES.iter().zip(row) {
                if *n > 0 {
                    let labels = vec![("method", (*m).to_owned()), ("status", (*s).to_owned())];
                    rows.push((labels, *n));
                }
            }
        }
        counters(
            e,
            "rgunicorn_requests",
            "Requests answered, by method and status class",
            rows,
        )?;
        gauges(
            e,
            "rgunicorn_requests_in_flight",
            "Requests handed to the app and not finished",
            [(Vec::new(), self.in_flight as f64)],
        )?;
        // The encoder sums the buckets up itself; the last one is +Inf.
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.buckets)
            .collect();
        let count = self.counts.buckets.iter().sum();
        let sum = self.counts.duration_us as f64 / 1e6;
        let mut m = e.encode_descriptor(
            "rgunicorn_request_duration_seconds",
            "Time from a request reaching the app to its response being complete",
            None,
            MetricType::Histogram,
        )?;
        m.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}
