//! OVER aggregation throughput: the OVER operator alone on the CPU (per card, the count, sum
//! and max of the amounts over the last hour, 10,000 cards, 1,000 events per second of event
//! time, so a frame holds ~360 rows per card) with state resident across batches, and the
//! same per-row features as a polars rolling group-by over the same rows (the baseline), and
//! the whole job of `examples/over_bench.toml`.
//!
//! Run with `cargo bench --bench over_aggregate`. Inputs are generated before timing starts.

use arrow::array::RecordBatch;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice::bench_input::{START_MS, batch_at_rate, schema};
use sluice::job::{BackendChoice, JobFile};
use sluice_engine::frame::OverFrame;
use sluice_engine::operator::{
    Emitted, Operator, OverAggregate, OverAggregateOperator, OverAggregateSpec,
};
use sluice_engine::prelude::*;
use std::hint::black_box;

/// Batch sizes.
const SIZES: [usize; 2] = [64 * 1024, 1 << 20];
/// Events per second of event time.
const RATE: i64 = 1_000;
const HOUR_MS: i64 = 3_600_000;

/// Rows `first..first + rows`: `RATE` events per second, uniform cards, amounts below 50,000.
fn input(rows: usize, seed: u64, first: i64) -> RecordBatch {
    batch_at_rate(rows, seed, first, RATE)
}

fn spec() -> OverAggregateSpec {
    let frame = OverFrame::Range { preceding: HOUR_MS };
    let over = |aggregate| OverAggregate { aggregate, frame };
    OverAggregateSpec {
        partition_by: vec!["card_id".into()],
        aggregates: vec![
            over(AggregateSpec::count("txn_1h")),
            over(AggregateSpec::new(
                AggregateFunction::Sum,
                "amount_cents",
                "total_1h",
            )),
            over(AggregateSpec::new(
                AggregateFunction::Max,
                "amount_cents",
                "max_1h",
            )),
        ],
    }
}

/// The OVER operator with state resident between batches: consecutive batches, each followed
/// by the watermark at its last event (every row but the last millisecond's goes out). A
/// fresh operator starts each cycle, after the first hour of events has filled the frames
/// (outside the timing), so each timed batch sees full one-hour frames.
fn operator(c: &mut Criterion) {
    let backend = CpuBackend::new();
    let mut group = c.benchmark_group("over_aggregate/cpu");
    group.sample_size(10);
    let warm_rows = (HOUR_MS * RATE / 1_000) as usize;
    for rows in SIZES {
        let cycle = ((16usize << 20) / rows).clamp(2, 64);
        let batches: Vec<(RecordBatch, i64)> = (0..cycle)
            .map(|i| {
                let first = (warm_rows + i * rows) as i64;
                let batch = input(rows, 7 + i as u64, first);
                let last = START_MS + (first + rows as i64 - 1) * 1_000 / RATE;
                (batch, last)
            })
            .collect();
        let warm = input(warm_rows, 3, 0);
        let warm_end = START_MS + (warm_rows as i64 - 1) * 1_000 / RATE;
        let fresh = || {
            let mut op = OverAggregateOperator::try_new(&spec(), schema(), "ts", &backend, "bench")
                .expect("op");
            let mut out = Emitted::default();
            op.process(warm.clone(), &mut out).expect("warm");
            op.on_watermark(warm_end, &mut out).expect("warm");
            op
        };
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(format!("range_1h_count_sum_max/{rows}"), |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                let mut op = None;
                for i in 0..iters as usize {
                    if i % cycle == 0 {
                        op = Some(fresh());
                    }
                    let Some(op) = op.as_mut() else { break };
                    let (batch, watermark) = &batches[i % cycle];
                    let started = std::time::Instant::now();
                    let mut out = Emitted::default();
                    op.process(batch.clone(), &mut out).expect("process");
                    op.on_watermark(*watermark, &mut out).expect("release");
                    black_box(out.rows());
                    total += started.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

/// The same features in polars: a rolling group-by over one hour per card, closed on both
/// ends, over the hour of history plus a batch; it answers every one of those rows, so the
/// throughput counts them all.
fn polars_baseline(c: &mut Criterion) {
    use polars::prelude::*;
    use polars_time::{ClosedWindow, Duration};
    let mut group = c.benchmark_group("over_aggregate/polars_rolling");
    group.sample_size(10);
    let warm_rows = (HOUR_MS * RATE / 1_000) as usize;
    for rows in SIZES {
        let batch = input(warm_rows + rows, 7, 0);
        let column = |i: usize| -> Vec<i64> {
            let array = batch.column(i).to_data();
            array.buffers()[0].typed_data::<i64>()[..warm_rows + rows].to_vec()
        };
        let df = DataFrame::new(
            warm_rows + rows,
            vec![
                Column::new("ts".into(), column(0)),
                Column::new("card_id".into(), column(1)),
                Column::new("amount_cents".into(), column(2)),
            ],
        )
        .expect("frame");
        group.throughput(Throughput::Elements((warm_rows + rows) as u64));
        group.bench_function(
            format!("range_1h_count_sum_max/{}", warm_rows + rows),
            |b| {
                b.iter(|| {
                    let out = df
                        .clone()
                        .lazy()
                        .rolling(
                            col("ts"),
                            [col("card_id")],
                            RollingGroupOptions {
                                index_column: "ts".into(),
                                period: Duration::parse(&format!("{HOUR_MS}i")),
                                offset: Duration::parse(&format!("-{HOUR_MS}i")),
                                closed_window: ClosedWindow::Both,
                            },
                        )
                        .agg([
                            len().alias("txn_1h"),
                            col("amount_cents").sum().alias("total_1h"),
                            col("amount_cents").max().alias("max_1h"),
                        ])
                        .collect()
                        .expect("polars");
                    black_box(out.height())
                })
            },
        );
    }
    group.finish();
}

/// The whole job: `examples/over_bench.toml` (an unthrottled transactions generator →
/// one-hour OVER count/sum/max per card → discard), with 20 M events.
fn pipeline(c: &mut Criterion) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/over_bench.toml");
    let events = 20_000_000u64;
    let mut group = c.benchmark_group("pipeline/cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    group.bench_function("generator_over_1h_count_sum_max_discard/20M", |b| {
        b.iter_batched(
            || {
                let overrides = [format!("source.events={events}")];
                let job = JobFile::load(&path, &overrides).expect("job");
                job.pipeline(BackendChoice::Cpu).expect("pipeline")
            },
            |pipeline| black_box(pipeline.run_blocking().expect("run").counts.events_in),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, operator, polars_baseline, pipeline);
criterion_main!(benches);
