//! The live progress line and the end-of-run summary, formatted for people.

use std::time::Duration;

use sluice_engine::metrics::{MetricsSnapshot, PartitionLag, RunSummary};

/// Partitions the summary names one by one; more are counted.
const LAG_LISTED: usize = 8;

/// `12.3M in (4.1M ev/s) | 1.2k out | late 0 | malformed 0 | watermark 2026-01-01T00:01:00Z`,
/// then `| lag 1.2k (max t/3 900)` when sources report their lag (`lag` largest first).
pub fn progress_line(counts: &MetricsSnapshot, lag: &[PartitionLag], elapsed: Duration) -> String {
    let rate = counts.events_in as f64 / elapsed.as_secs_f64().max(1e-3);
    let lag = match lag.first() {
        None => String::new(),
        Some(max) => format!(
            " | lag {} (max {} {})",
            human(lag.iter().map(|l| l.records as f64).sum()),
            max.partition,
            human(max.records as f64)
        ),
    };
    format!(
        "{} in ({}/s) | {} out | late {} | malformed {} | watermark {}{lag}",
        human(counts.events_in as f64),
        human(rate),
        human(counts.events_out as f64),
        counts.late,
        counts.malformed,
        watermark(counts.watermark),
    )
}

/// The multi-line summary printed when a run ends.
pub fn format_summary(summary: &RunSummary) -> String {
    let c = &summary.counts;
    format!(
        "{status} in {elapsed:.2?}\n  backend     {backend}\n  events in   {events_in}  ({rate}/s)\n  rows out    {out}\n  late        {late}\n  malformed   {malformed}\n  batches     {batches}  (latency p50 {p50:.1?}, p99 {p99:.1?})\n  watermark   {watermark}",
        status = if summary.cancelled {
            "stopped"
        } else {
            "finished"
        },
        elapsed = summary.elapsed,
        backend = summary.backend,
        events_in = c.events_in,
        rate = human(summary.events_per_second()),
        out = c.events_out,
        late = c.late,
        malformed = c.malformed,
        batches = c.batches,
        p50 = summary.latency.p50,
        p99 = summary.latency.p99,
        watermark = watermark(c.watermark),
    ) + &checkpoints(summary)
        + &lag(&summary.lag)
}

/// `lag  1200 (t/3 900, t/0 300, ... 4 more at 0)`, for sources that report their lag.
fn lag(lags: &[PartitionLag]) -> String {
    if lags.is_empty() {
        return String::new();
    }
    let total: u64 = lags.iter().map(|l| l.records).sum();
    let mut listed: Vec<String> = lags
        .iter()
        .take(LAG_LISTED)
        .map(|l| format!("{} {}", l.partition, l.records))
        .collect();
    if lags.len() > LAG_LISTED {
        listed.push(format!("{} more", lags.len() - LAG_LISTED));
    }
    format!("\n  lag         {total}  ({})", listed.join(", "))
}

fn checkpoints(summary: &RunSummary) -> String {
    match (summary.resumed_from, summary.checkpoint) {
        (None, None) => String::new(),
        (from, last) => {
            let id = |c: Option<u64>| c.map_or_else(|| "-".to_string(), |c| c.to_string());
            format!(
                "\n  checkpoint  resumed from {}, last {} (counts include earlier runs; events/s is this run's)",
                id(from),
                id(last)
            )
        }
    }
}

fn watermark(w: Option<i64>) -> String {
    match w {
        None => "-".into(),
        Some(i64::MAX) => "end of input".into(),
        Some(ms) => arrow::temporal_conversions::timestamp_ms_to_datetime(ms)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_else(|| ms.to_string()),
    }
}

fn human(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2}G", v / 1e9),
        v if v >= 1e6 => format!("{:.2}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_names_every_counter() {
        let counts = MetricsSnapshot {
            events_in: 2_500_000,
            events_out: 1_200,
            late: 3,
            malformed: 1,
            batches: 10,
            watermark: Some(1_767_225_660_000),
        };
        let line = progress_line(&counts, &[], Duration::from_secs(2));
        assert_eq!(
            line,
            "2.50M in (1.25M/s) | 1.2k out | late 3 | malformed 1 | watermark 2026-01-01T00:01:00.000Z"
        );
        let lags: Vec<PartitionLag> = (0..10)
            .map(|i| PartitionLag {
                partition: format!("t/{i}"),
                records: 1_000 - i * 100,
            })
            .collect();
        let line = progress_line(&counts, &lags, Duration::from_secs(2));
        assert!(line.ends_with(" | lag 5.5k (max t/0 1.0k)"), "{line}");
        assert_eq!(
            lag(&lags),
            "\n  lag         5500  (t/0 1000, t/1 900, t/2 800, t/3 700, t/4 600, t/5 500, \
             t/6 400, t/7 300, 2 more)"
        );
    }
}
