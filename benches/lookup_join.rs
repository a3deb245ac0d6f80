//! Lookup join throughput: the lookup join operator alone (key encoding, probing the table's
//! index, gathering the joined rows) on each backend (CPU, and the GPU when an adapter
//! opens), inner and left outer, at several batch sizes.
//!
//! The stream is the `transactions` generator's `ts, card_id, merchant_id, amount_cents`
//! (1,000 merchants); the table has 800 of those merchants (ids 1..=800, so a fifth of the
//! rows find no match) with a category and a risk score. Inputs and the table's index are
//! built before timing starts.
//!
//! Run with `cargo bench --bench lookup_join`.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_connectors::{GeneratorKind, GeneratorSource, GeneratorSpec};
use sluice_engine::operator::{Emitted, LookupJoinOperator, LookupJoinSpec, Operator};
use sluice_engine::prelude::*;

/// Stream rows per batch.
const SIZES: [usize; 3] = [64 * 1024, 1 << 20, 4 << 20];
/// Merchants in the table (the stream has 1,000).
const MERCHANTS: i64 = 800;

/// The backends to measure: the CPU, and the GPU when an adapter opens (lavapipe figures are
/// not performance figures; see docs/benchmarks.md).
fn backends() -> Vec<Arc<dyn Backend>> {
    let mut all: Vec<Arc<dyn Backend>> = vec![Arc::new(CpuBackend::new())];
    match sluice::job::BackendChoice::Gpu.open() {
        Ok(gpu) => all.push(gpu),
        Err(e) => eprintln!("lookup_join: no GPU benchmark: {e}"),
    }
    all
}

/// One batch of `rows` transactions: `ts, card_id, merchant_id, amount_cents`.
fn transactions(rows: usize) -> RecordBatch {
    let spec = GeneratorSpec {
        events: Some(rows as u64),
        ..GeneratorSpec::new(GeneratorKind::Transactions)
    };
    let source = Box::new(GeneratorSource::new(&spec).expect("valid generator"));
    let mut partitions = source
        .open(&SourceContext {
            batch_rows: rows,
            projection: Some(vec![0, 1, 2, 3]),
        })
        .expect("open the generator");
    partitions[0]
        .next_batch()
        .expect("generate")
        .expect("one batch")
        .batch
}

/// `merchant_id, category, risk` for merchants `1..=MERCHANTS`.
fn merchants() -> RecordBatch {
    let ids: Vec<i64> = (1..=MERCHANTS).collect();
    let categories = ["grocery", "fuel", "travel", "online", "restaurant"];
    let category: StringArray = ids
        .iter()
        .map(|i| Some(categories[*i as usize % categories.len()]))
        .collect();
    let risk: Int64Array = ids.iter().map(|i| Some(i * 37 % 100)).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("merchant_id", DataType::Int64, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("risk", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(category),
        Arc::new(risk),
    ];
    RecordBatch::try_new(schema, columns).expect("the columns match the schema")
}

fn lookup_join(c: &mut Criterion) {
    let table = merchants();
    let inputs: Vec<RecordBatch> = SIZES.iter().map(|&rows| transactions(rows)).collect();
    for backend in backends() {
        for kind in [JoinKind::Inner, JoinKind::Left] {
            let name = match kind {
                JoinKind::Inner => "inner",
                JoinKind::Left => "left",
                JoinKind::Full => "full",
            };
            let spec = LookupJoinSpec {
                name: "merchants".into(),
                table: table.clone(),
                on: vec!["merchant_id".into()],
                table_on: vec!["merchant_id".into()],
                kind,
                reload: None,
            };
            let mut group = c.benchmark_group(format!("lookup_join/{}/{name}", backend.name()));
            group.sample_size(10);
            for batch in &inputs {
                let mut op = LookupJoinOperator::try_new(&spec, batch.schema(), &backend, "bench")
                    .expect("lookup join operator");
                group.throughput(Throughput::Elements(batch.num_rows() as u64));
                group.bench_function(format!("{}", batch.num_rows()), |b| {
                    b.iter(|| {
                        let mut out = Emitted::default();
                        op.process(batch.clone(), &mut out).expect("join");
                        black_box(out.rows())
                    })
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, lookup_join);
criterion_main!(benches);
