//! The `operator` workload: the window operator alone with its state resident, fed
//! pre-generated batches of the core query's stream (generation is not timed), each followed
//! by the watermark at its last event. This is the figure the GPU target of 1 G events/s
//! (10,000 keys, 1 s tumbling, batches of 4 Mi rows or more) speaks of; the pipeline workloads
//! add the generator, the runtime and the sinks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sluice::bench_input::{batch, last_ts, schema, spec};
use sluice_engine::backend::Backend;
use sluice_engine::metrics::{LatencySummary, MetricsSnapshot, RunSummary};
use sluice_engine::operator::{Emitted, Operator, WindowAggregateOperator};

/// Batches generated up front and replayed with advancing event time; memory stays bounded
/// (at most 64 Mi rows held) whatever `--events` asks for.
const MAX_HELD_ROWS: usize = 64 << 20;

/// Runs `events` rows through a fresh operator on `backend` in batches of `batch_rows`.
pub fn run(backend: &Arc<dyn Backend>, events: u64, batch_rows: usize) -> Result<RunSummary> {
    let batches = (events as usize).div_ceil(batch_rows).max(1);
    let held = (MAX_HELD_ROWS / batch_rows).clamp(1, batches);
    let inputs: Vec<_> = (0..held)
        .map(|i| batch(batch_rows, 7 + i as u64, (i * batch_rows) as i64))
        .collect();
    let mut operator =
        WindowAggregateOperator::try_new(&spec(), schema(), "ts", backend.as_ref(), "bench")
            .context("creating the window operator")?;
    let mut latencies = Vec::with_capacity(batches);
    let mut rows_out = 0u64;
    let mut processing = Duration::ZERO;
    // Held batches are replayed shifted by the event time they span, so time keeps advancing.
    let span_ms = (held * batch_rows) as i64 / 1_000;
    for i in 0..batches {
        let (cycle, local) = ((i / held) as i64, i % held);
        let input = if cycle == 0 {
            inputs[local].clone()
        } else {
            shifted(&inputs[local], cycle * span_ms)?
        };
        let watermark = last_ts(((local + 1) * batch_rows) as i64) + cycle * span_ms;
        let begin = Instant::now();
        let mut out = Emitted::default();
        operator.process(input, &mut out)?;
        let processed = Instant::now();
        operator.on_watermark(watermark, &mut out)?;
        rows_out += out.rows() as u64;
        latencies.push(begin.elapsed());
        processing += processed - begin;
    }
    if std::env::var_os("SLUICE_GPU_PROFILE").is_some() {
        let total: Duration = latencies.iter().sum();
        eprintln!(
            "operator profile: process {:.1} ms, watermark {:.1} ms",
            processing.as_secs_f64() * 1e3,
            (total - processing).as_secs_f64() * 1e3
        );
    }
    let begin = Instant::now();
    let mut out = Emitted::default();
    operator.on_watermark(i64::MAX, &mut out)?;
    rows_out += out.rows() as u64;
    // Only the operator's time counts: generating and shifting input is not timed.
    let elapsed = latencies.iter().sum::<Duration>() + begin.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Ok(RunSummary {
        backend: backend.describe(),
        counts: MetricsSnapshot {
            events_in: (batches * batch_rows) as u64,
            events_out: rows_out,
            batches: batches as u64,
            ..MetricsSnapshot::default()
        },
        elapsed,
        latency: LatencySummary {
            p50: at(0.5),
            p99: at(0.99),
            max: latencies.last().copied().unwrap_or(Duration::ZERO),
        },
        cancelled: false,
        resumed_from: None,
        earlier_events: 0,
        checkpoint: None,
        lag: Vec::new(),
        partitions_changed: None,
    })
}

/// `input` with every event time moved `by` ms later.
fn shifted(input: &arrow::array::RecordBatch, by: i64) -> Result<arrow::array::RecordBatch> {
    use arrow::array::{AsArray, TimestampMillisecondArray};
    use arrow::datatypes::TimestampMillisecondType;
    let ts = input.column(0).as_primitive::<TimestampMillisecondType>();
    let moved: TimestampMillisecondArray = ts.unary::<_, TimestampMillisecondType>(|t| t + by);
    let moved = moved.with_timezone_opt(ts.timezone().map(str::to_string));
    let mut columns = input.columns().to_vec();
    columns[0] = Arc::new(moved);
    Ok(arrow::array::RecordBatch::try_new(input.schema(), columns)?)
}
