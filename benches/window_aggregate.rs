//! Window aggregation throughput: the window operator alone at several batch sizes, the same
//! query as a polars batch group-by on the same rows (the baseline), and the whole pipeline
//! (transactions generator → 1 s tumbling count/sum by card → discard).
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
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z ^ (z >> 31)
    };
    let ts: Vec<i64> = (0..rows as i64)
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

fn operator(c: &mut Criterion) {
    let mut group = c.benchmark_group("window_aggregate/cpu");
    group.sample_size(10);
    for rows in [64 * 1024, 1 << 20, 4 << 20] {
        let batch = input(rows, 7);
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(format!("tumbling_1s_count_sum/{rows}"), |b| {
            b.iter_batched(
                || {
                    WindowAggregateOperator::try_new(
                        &spec(),
                        schema(),
                        "ts",
                        &CpuBackend::new(),
                        "bench",
                    )
                    .expect("op")
                },
                |mut op| {
                    let mut out = Emitted::default();
                    op.process(batch.clone(), &mut out).expect("process");
                    op.on_watermark(i64::MAX, &mut out).expect("fire");
                    black_box(out.rows())
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// The same query in polars: assign 1 s windows, group by (card, window), count and sum.
fn polars_baseline(c: &mut Criterion) {
    use polars::prelude::*;
    let mut group = c.benchmark_group("window_aggregate/polars_batch");
    group.sample_size(10);
    for rows in [64 * 1024, 1 << 20, 4 << 20] {
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
    let mut group = c.benchmark_group("pipeline/cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(20_000_000));
    group.bench_function("generator_tumbling_1s_count_sum_discard/20M", |b| {
        b.iter_batched(
            || {
                let job = JobFile::parse(PIPELINE, "bench.toml".as_ref(), &[]).expect("job");
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
