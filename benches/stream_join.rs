//! Stream join throughput: the join operator alone (key encoding, buffering, probing, building
//! the joined rows, expiry) on each backend (CPU, and the GPU when an adapter opens), interval
//! and window joins, at several batch sizes, with state resident across batches.
//!
//! The input is that of `sluice bench --workloads interval-join,window-join`: transactions of
//! 10,000 cards (10,000 per second of event time) and logins of the same cards (1,000 per
//! second), each stream's `ts` and `card_id`. One step is a batch of logins, the batch of
//! transactions covering the same event time (ten times as many rows), then the watermark at
//! its end. Inputs are generated before timing starts; a fresh operator starts each cycle of
//! pre-generated steps, outside the timing.
//!
//! Run with `cargo bench --bench stream_join`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_connectors::{GeneratorKind, GeneratorSource, GeneratorSpec};
use sluice_engine::event_time::event_time_values;
use sluice_engine::operator::{Emitted, JoinInput, JoinSideId, StreamJoinOperator};
use sluice_engine::prelude::*;

/// Transactions per step; each step also has a tenth as many logins.
const SIZES: [usize; 3] = [64 * 1024, 1 << 20, 4 << 20];

/// The backends to measure: the CPU, and the GPU when an adapter opens (lavapipe figures are
/// not performance figures; see docs/benchmarks.md).
fn backends() -> Vec<Arc<dyn Backend>> {
    let mut all: Vec<Arc<dyn Backend>> = vec![Arc::new(CpuBackend::new())];
    match sluice::job::BackendChoice::Gpu.open() {
        Ok(gpu) => all.push(gpu),
        Err(e) => eprintln!("stream_join: no GPU benchmark: {e}"),
    }
    all
}

/// `events` events of a generator, in batches of `batch_rows`, projected to `ts, card_id`.
fn generate(kind: GeneratorKind, events: u64, rate: u64, batch_rows: usize) -> Vec<RecordBatch> {
    let spec = GeneratorSpec {
        events: Some(events),
        keys: Some(10_000),
        event_time_rate: rate,
        ..GeneratorSpec::new(kind)
    };
    let source = Box::new(GeneratorSource::new(&spec).expect("valid generator"));
    let partitions = source
        .open(&SourceContext {
            batch_rows,
            projection: Some(vec![0, 1]),
        })
        .expect("open the generator");
    partitions
        .into_iter()
        .flat_map(|mut p| std::iter::from_fn(move || p.next_batch().expect("generate")))
        .map(|b| b.batch)
        .collect()
}

/// One step of the stream: logins, the transactions of the same event time, the watermark.
struct Step {
    logins: RecordBatch,
    transactions: RecordBatch,
    watermark: i64,
}

fn steps(rows: usize, cycle: usize) -> Vec<Step> {
    let total = (rows * cycle) as u64;
    let transactions = generate(GeneratorKind::Transactions, total, 10_000, rows);
    let logins = generate(GeneratorKind::Logins, total / 10, 1_000, rows / 10);
    transactions
        .into_iter()
        .zip(logins)
        .map(|(transactions, logins)| {
            let last = |b: &RecordBatch| {
                event_time_values(b.column(0))
                    .expect("timestamps")
                    .last()
                    .copied()
                    .unwrap_or(i64::MIN)
            };
            let watermark = last(&transactions).min(last(&logins));
            Step {
                logins,
                transactions,
                watermark,
            }
        })
        .collect()
}

fn join(time: JoinTime, backend: &Arc<dyn Backend>, schema: &Step) -> StreamJoinOperator {
    let spec = StreamJoinSpec {
        left: "transactions".into(),
        right: "logins".into(),
        on: vec!["card_id".into()],
        right_on: vec!["card_id".into()],
        kind: JoinKind::Inner,
        time,
    };
    let input = |name: &str, batch: &RecordBatch| JoinInput {
        name: name.into(),
        schema: batch.schema(),
        time_column: "ts".into(),
    };
    StreamJoinOperator::try_new(
        &spec,
        input("transactions", &schema.transactions),
        input("logins", &schema.logins),
        backend,
        "bench",
    )
    .expect("join operator")
}

fn stream_join(c: &mut Criterion) {
    let kinds = [
        (
            "interval_5s",
            JoinTime::Interval {
                lower: 5_000,
                upper: 5_000,
            },
        ),
        (
            "window_10s",
            JoinTime::Window(WindowSpec::Tumbling {
                size: 10_000,
                offset: 0,
            }),
        ),
    ];
    let inputs: Vec<(usize, Vec<Step>)> = SIZES
        .iter()
        .map(|&rows| {
            let cycle = ((16usize << 20) / rows).clamp(2, 16);
            (rows, steps(rows, cycle))
        })
        .collect();
    for backend in backends() {
        for (name, time) in kinds {
            let mut group = c.benchmark_group(format!("stream_join/{}/{name}", backend.name()));
            group.sample_size(10);
            for (rows, steps) in &inputs {
                let events = steps[0].transactions.num_rows() + steps[0].logins.num_rows();
                group.throughput(Throughput::Elements(events as u64));
                group.bench_function(format!("{rows}"), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        let mut op = None;
                        for i in 0..iters as usize {
                            if i % steps.len() == 0 {
                                op = Some(join(time, &backend, &steps[0]));
                            }
                            let Some(op) = op.as_mut() else { break };
                            let step = &steps[i % steps.len()];
                            let started = Instant::now();
                            let mut out = Emitted::default();
                            op.process(JoinSideId::Right, step.logins.clone(), &mut out)
                                .expect("logins");
                            op.process(JoinSideId::Left, step.transactions.clone(), &mut out)
                                .expect("transactions");
                            op.on_watermark(step.watermark, &mut out)
                                .expect("watermark");
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
}

criterion_group!(benches, stream_join);
criterion_main!(benches);
