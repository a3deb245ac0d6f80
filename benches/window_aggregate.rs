//! Window aggregation throughput: the window operator alone on each backend (CPU, and the GPU
//! when an adapter opens) at batch sizes from 64 Ki to 16 Mi rows with state resident across
//! batches, the same query as a polars batch group-by on the same rows (the baseline), and the
//! whole pipeline (transactions generator → 1 s tumbling count/sum by card → discard).
//!
//! Run with `cargo bench --bench window_aggregate`. Inputs are generated before timing starts.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice::job::{BackendChoice, JobFile};
use sluice_engine::operator::{Emitted, Operator, WindowAggregateOperator};
use sluice_engine::prelude::*;

const KEYS: u64 = 10_000;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("card_id", DataType::Int64, false),
        Field::new("amount_cents", DataType::Int64, false),
    ]))
}

/// `rows` events over about one second of event time per million rows, 10 k uniform keys.
fn input(rows: usize, seed: u64) -> RecordBatch {
    input_from(rows, seed, 0)
}

/// As `input`, for the stream's rows from `first` on.
fn input_from(rows: usize, seed: u64, first: i64) -> RecordBatch {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z ^ (z >> 31)
    };
    let ts: Vec<i64> = (first..first + rows as i64)
        .map(|i| 1_700_000_000_000 + i / 1_000)
        .collect();
    let keys: Vec<i64> = (0..rows)
        .map(|_| ((next() as u128 * KEYS as u128) >> 64) as i64)
        .collect();
    let amounts: Vec<i64> = (0..rows).map(|_| (next() % 50_000) as i64).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")) as ArrayRef,
            Arc::new(Int64Array::from(keys)),
            Arc::new(Int64Array::from(amounts)),
        ],
    )
    .expect("bench batch")
}

fn spec() -> WindowAggregateSpec {
    WindowAggregateSpec {
        keys: vec!["card_id".into()],
        window: WindowSpec::Tumbling {
            size: 1_000,
            offset: 0,
        },
        aggregates: vec![
            AggregateSpec::count("n"),
            AggregateSpec::new(AggregateFunction::Sum, "amount_cents", "amount_sum"),
        ],
    }
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
                    let last = 1_700_000_000_000 + ((i + 1) * rows) as i64 / 1_000 - 1;
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
