//! Live counters of a running job and the summary it ends with.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Counters updated by the runtime while a job runs; read from any thread for progress lines.
/// Relaxed ordering is enough: each counter is independent and only ever grows.
#[derive(Debug)]
pub struct Metrics {
    events_in: AtomicU64,
    events_out: AtomicU64,
    late: AtomicU64,
    malformed: AtomicU64,
    batches: AtomicU64,
    watermark: AtomicI64,
    latencies: Mutex<LatencyRing>,
    /// Each partition that reports a backlog (by index): its name and its last backlog.
    backlogs: Mutex<BTreeMap<usize, PartitionLag>>,
}

/// How far one source partition's reading trails its input (Kafka: consumer lag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition's name (`topic/partition`).
    pub partition: String,
    /// Records its input holds beyond what was read, as last reported.
    pub records: u64,
}

/// A point-in-time copy of [`Metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// Rows read from sources with a valid event time.
    pub events_in: u64,
    /// Rows written to the output sink.
    pub events_out: u64,
    /// Rows that arrived after all their windows had fired.
    pub late: u64,
    /// Records rejected as malformed (dead letters).
    pub malformed: u64,
    /// Micro-batches processed.
    pub batches: u64,
    /// The stream's watermark (epoch ms), if it has advanced yet.
    pub watermark: Option<i64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            events_in: AtomicU64::new(0),
            events_out: AtomicU64::new(0),
            late: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
            latencies: Mutex::new(LatencyRing::default()),
            backlogs: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Metrics {
    pub(crate) fn add_in(&self, n: usize) {
        self.events_in.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn add_out(&self, n: usize) {
        self.events_out.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn add_late(&self, n: usize) {
        self.late.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn add_malformed(&self, n: usize) {
        self.malformed.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn add_batch(&self, latency: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut ring) = self.latencies.lock() {
            ring.push(latency);
        }
    }
    /// Starts the counters from a checkpoint's totals (a resumed job continues them).
    pub(crate) fn restore_counts(&self, counts: &crate::checkpoint::Counts) {
        self.events_in.store(counts.events_in, Ordering::Relaxed);
        self.events_out.store(counts.events_out, Ordering::Relaxed);
        self.late.store(counts.late, Ordering::Relaxed);
        self.malformed.store(counts.malformed, Ordering::Relaxed);
    }
    /// Partition `index` (named `name`) holds `records` not read yet.
    pub(crate) fn set_backlog(&self, index: usize, name: &str, records: u64) {
        if let Ok(mut backlogs) = self.backlogs.lock() {
            match backlogs.get_mut(&index) {
                Some(lag) => lag.records = records,
                None => {
                    backlogs.insert(
                        index,
                        PartitionLag {
                            partition: name.to_string(),
                            records,
                        },
                    );
                }
            }
        }
    }

    /// The lag of every partition that reports one, largest first (ties by partition order).
    pub fn lag(&self) -> Vec<PartitionLag> {
        let mut lags: Vec<PartitionLag> = self
            .backlogs
            .lock()
            .map(|b| b.values().cloned().collect())
            .unwrap_or_default();
        lags.sort_by_key(|l| std::cmp::Reverse(l.records));
        lags
    }

    pub(crate) fn set_watermark(&self, w: i64) {
        self.watermark.store(w, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let w = self.watermark.load(Ordering::Relaxed);
        MetricsSnapshot {
            events_in: self.events_in.load(Ordering::Relaxed),
            events_out: self.events_out.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            watermark: (w != i64::MIN).then_some(w),
        }
    }

    /// Percentiles of micro-batch latency (arrival of the oldest row to outputs handed to
    /// the sinks) over the most recent batches.
    pub fn latency(&self) -> LatencySummary {
        self.latencies
            .lock()
            .map(|ring| ring.summary())
            .unwrap_or_default()
    }
}

/// The last 64 Ki micro-batch latencies: enough for stable percentiles, bounded for long jobs.
#[derive(Debug, Default)]
struct LatencyRing {
    samples: Vec<Duration>,
    next: usize,
}

const RING: usize = 64 * 1024;

impl LatencyRing {
    fn push(&mut self, d: Duration) {
        if self.samples.len() < RING {
            self.samples.push(d);
        } else {
            self.samples[self.next] = d;
        }
        self.next = (self.next + 1) % RING;
    }

    fn summary(&self) -> LatencySummary {
        if self.samples.is_empty() {
            return LatencySummary::default();
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        LatencySummary {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// Micro-batch latency percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencySummary {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

/// What a finished (or cancelled) run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The backend that ran the window math.
    pub backend: String,
    /// Final counters.
    pub counts: MetricsSnapshot,
    /// Wall-clock time from start to the last sink closing.
    pub elapsed: Duration,
    /// Micro-batch latency percentiles.
    pub latency: LatencySummary,
    /// Whether the run was stopped before its input ended.
    pub cancelled: bool,
    /// The checkpoint the run resumed from.
    pub resumed_from: Option<u64>,
    /// Events counted by earlier runs, included in `counts` after a resume.
    pub earlier_events: u64,
    /// The last checkpoint known complete when the run ended (the one to resume from).
    pub checkpoint: Option<u64>,
    /// Each partition's lag at the end, largest first, where its source reports one.
    pub lag: Vec<PartitionLag>,
    /// Why the run stopped early to be run again (with `cancelled`, after a checkpoint): its
    /// source's partitions changed, and a new run reads them all.
    pub partitions_changed: Option<String>,
}

impl RunSummary {
    /// Input events of this run per second of its wall-clock time.
    pub fn events_per_second(&self) -> f64 {
        let events = self.counts.events_in.saturating_sub(self.earlier_events);
        events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_latencies() {
        let m = Metrics::default();
        for ms in 1..=100 {
            m.add_batch(Duration::from_millis(ms));
        }
        let l = m.latency();
        assert_eq!(l.p50, Duration::from_millis(51));
        assert_eq!(l.p99, Duration::from_millis(99));
        assert_eq!(l.max, Duration::from_millis(100));
        assert_eq!(m.snapshot().batches, 100);
        assert_eq!(m.snapshot().watermark, None);
    }

    #[test]
    fn lag_keeps_each_partitions_last_report_largest_first() {
        let m = Metrics::default();
        assert!(m.lag().is_empty());
        m.set_backlog(0, "t/0", 500);
        m.set_backlog(1, "t/1", 20);
        m.set_backlog(0, "t/0", 3);
        let lag = |name: &str, records| PartitionLag {
            partition: name.into(),
            records,
        };
        assert_eq!(m.lag(), vec![lag("t/1", 20), lag("t/0", 3)]);
    }
}
