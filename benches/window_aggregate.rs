//! Window aggregation throughput: the window operator alone on each backend (CPU, and the GPU
//! when an adapter opens) at batch sizes from 64 Ki to 16 Mi rows with state resident across
//! batches, the same query as a polars batch group-by on the same rows (the baseline), and the
//! whole pipeline (transactions generator → 1 s tumbling count/sum by card → discard).
//!
//! Run with `cargo bench --bench window_aggregate`. Inputs are generated before timing starts.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::RecordBatch;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice::job::{BackendChoice, JobFile};
use sluice_engine::operator::{Emitted, Operator, WindowAggregateOperator};
use sluice_engine::prelude::*;

use sluice::bench_input::{batch as input_from, last_ts, schema, spec};

fn input(rows: usize, seed: u64) -> RecordBatch {
    input_from(rows, seed, 0)
}

/// Batch sizes from 64 Ki to 16 Mi rows.
const SIZES: [usize; 4] = [64 * 1024, 1 << 20, 4 << 20, 16 << 20];

/// The backends to measure: the CPU, and the GPU when an adapter opens (lavapipe figures are
/// not performance figures; see docs/benchmarks.md).
fn backends() -> Vec<Arc<dyn Backend>> {
    let mut all: Vec<Arc<dyn Backend>> = vec![Arc::new(CpuBackend::new())];
    match sluice::job::BackendChoice::Gpu.open() {
        Ok(gpu) => all.push(gpu),
        Err(e) => eprintln!("window_aggregate: no GPU benchmark: {e}"),
    }
    all
}

/// The window operator with state resident between batches: consecutive batches of the
/// stream (each `rows` long, 1 s of event time per million rows), each followed by the
/// watermark at its last event, so every batch also closes the windows it completed and reads
/// them back. A fresh operator starts each cycle of pre-generated batches, outside the timing.
fn operator(c: &mut Criterion) {
    for backend in backends() {
        let mut group = c.benchmark_group(format!("window_aggregate/{}", backend.name()));
        group.sample_size(10);
        for rows in SIZES {
            let cycle = ((64usize << 20) / rows).clamp(2, 16);
            let batches: Vec<(RecordBatch, i64)> = (0..cycle)
                .map(|i| {
                    let batch = input_from(rows, 7 + i as u64, (i * rows) as i64);
                    let last = last_ts(((i + 1) * rows) as i64);
                    (batch, last)
                })
                .collect();
            group.throughput(Throughput::Elements(rows as u64));
            group.bench_function(format!("tumbling_1s_count_sum/{rows}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = std::time::Duration::ZERO;
                    let mut op = None;
                    for i in 0..iters as usize {
                        if i % cycle == 0 {
                            op = Some(
                                WindowAggregateOperator::try_new(
                                    &spec(),
                                    schema(),
                                    "ts",
                                    backend.as_ref(),
                                    "bench",
                                )
                                .expect("op"),
                            );
                        }
                        let Some(op) = op.as_mut() else { break };
                        let (batch, watermark) = &batches[i % cycle];
                        let started = std::time::Instant::now();
                        let mut out = Emitted::default();
                        op.process(batch.clone(), &mut out).expect("process");
                        op.on_watermark(*watermark, &mut out).expect("fire");
                        black_box(out.rows());
                        total += started.elapsed();
                    }
                    total
                })
            });
        }
        group.finish();
    }
}

/// The same query in polars: assign 1 s windows, group by (card, window), count and sum.
fn polars_baseline(c: &mut Criterion) {
    use polars::prelude::*;
    let mut group = c.benchmark_group("window_aggregate/polars_batch");
    group.sample_size(10);
    for rows in SIZES {
        let batch = input(rows, 7);
        let column = |i: usize| -> Vec<i64> {
            let array = batch.column(i).to_data();
            array.buffers()[0].typed_data::<i64>()[..rows].to_vec()
        };
        let df = DataFrame::new(
            rows,
            vec![
                Column::new("ts".into(), column(0)),
                Column::new("card_id".into(), column(1)),
                Column::new("amount_cents".into(), column(2)),
            ],
        )
        .expect("frame");
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(format!("tumbling_1s_count_sum/{rows}"), |b| {
            b.iter(|| {
                let out = df
                    .clone()
                    .lazy()
                    .with_column((col("ts") - col("ts") % lit(1_000i64)).alias("window_start"))
                    .group_by([col("card_id"), col("window_start")])
                    .agg([
                        len().alias("n"),
                        col("amount_cents").sum().alias("amount_sum"),
                    ])
                    .collect()
                    .expect("polars");
                black_box(out.height())
            })
        });
    }
    group.finish();
}

const PIPELINE: &str = r#"
[source]
type = "generator"
generator = "transactions"
events = 20_000_000
keys = 10_000
event_time_rate = 1_000_000

[event_time]
column = "ts"
watermark_delay = "0s"

[batching]
max_rows = 1_048_576

[[operators]]
type = "window"
key = "card_id"
window = { type = "tumbling", size = "1s" }
aggregates = [{ fn = "count", as = "n" }, { fn = "sum", column = "amount_cents", as = "amount_sum" }]

[sink]
type = "discard"
"#;

fn pipeline(c: &mut Criterion) {
    let gpu_opens = BackendChoice::Gpu.open().is_ok();
    for (name, choice) in [("cpu", BackendChoice::Cpu), ("gpu", BackendChoice::Gpu)] {
        if choice == BackendChoice::Gpu && !gpu_opens {
            continue;
        }
        let mut group = c.benchmark_group(format!("pipeline/{name}"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(20_000_000));
        group.bench_function("generator_tumbling_1s_count_sum_discard/20M", |b| {
            b.iter_batched(
                || {
                    let job = JobFile::parse(PIPELINE, "bench.toml".as_ref(), &[]).expect("job");
                    job.pipeline(choice).expect("pipeline")
                },
                |pipeline| black_box(pipeline.run_blocking().expect("run").counts.events_in),
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, operator, polars_baseline, pipeline);
criterion_main!(benches);
