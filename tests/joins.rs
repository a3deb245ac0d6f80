//! Lookup joins equal an independent polars join on random inputs with fixed seeds: integer
//! and string keys, several matches per key, a skewed key holding most stream rows, null keys
//! on both sides (they never match), unknown keys, an empty table; inner and left outer; on
//! every backend, through the whole runtime.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use polars::prelude::*;
use sluice_engine::memory::{CollectSink, MemorySource};
use sluice_engine::operator::{JoinKind, LookupJoinSpec};
use sluice_engine::prelude::*;

use crate::common::{Rng, T0, backends};

/// A stream of `rows` (sid, ts, key) and a table of (tid, key, weight): keys below `keys`,
/// each table key repeated 0-3 times, some nulls; with `skew`, most stream rows on key 0.
struct Input {
    stream: Vec<(i64, Option<i64>)>,
    table: Vec<(i64, Option<i64>)>,
}

fn input(rows: usize, keys: u64, skew: bool, seed: u64) -> Input {
    let mut rng = Rng::new(seed);
    let key = |rng: &mut Rng| -> Option<i64> {
        if rng.below(17) == 0 {
            None
        } else if skew && rng.below(4) != 0 {
            Some(0)
        } else {
            // Some keys beyond the table's range: they find nothing.
            Some(rng.below(keys + keys / 5 + 1) as i64)
        }
    };
    let stream = (0..rows as i64).map(|sid| (sid, key(&mut rng))).collect();
    let mut table = Vec::new();
    for k in 0..keys as i64 {
        for _ in 0..rng.below(4) {
            table.push((table.len() as i64, Some(k)));
        }
    }
    for _ in 0..3 {
        table.push((table.len() as i64, None));
    }
    Input { stream, table }
}

fn key_array(keys: &[Option<i64>], strings: bool) -> ArrayRef {
    if strings {
        Arc::new(StringArray::from_iter(
            keys.iter().map(|k| k.map(|k| format!("k{k}"))),
        ))
    } else {
        Arc::new(Int64Array::from(keys.to_vec()))
    }
}

/// (sid, tid) pairs the engine emits, sorted.
fn engine(
    input: &Input,
    strings: bool,
    kind: JoinKind,
    backend: Arc<dyn Backend>,
) -> Vec<(i64, Option<i64>)> {
    let key_type = if strings {
        DataType::Utf8
    } else {
        DataType::Int64
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("sid", DataType::Int64, false),
        Field::new("key", key_type.clone(), true),
    ]));
    let batches: Vec<RecordBatch> = input
        .stream
        .chunks(97)
        .map(|chunk| {
            let ts: Vec<i64> = chunk.iter().map(|(sid, _)| T0 + sid).collect();
            let sids: Vec<i64> = chunk.iter().map(|(sid, _)| *sid).collect();
            let keys: Vec<Option<i64>> = chunk.iter().map(|(_, k)| *k).collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(TimestampMillisecondArray::from(ts)),
                    Arc::new(Int64Array::from(sids)),
                    key_array(&keys, strings),
                ],
            )
            .expect("stream batch")
        })
        .collect();
    let tids: Vec<i64> = input.table.iter().map(|(t, _)| *t).collect();
    let tkeys: Vec<Option<i64>> = input.table.iter().map(|(_, k)| *k).collect();
    let table = RecordBatch::try_from_iter([
        ("tid", Arc::new(Int64Array::from(tids)) as ArrayRef),
        ("merchant", key_array(&tkeys, strings)),
    ])
    .expect("table");
    let sink = CollectSink::new();
    let builder = Pipeline::builder(
        Box::new(MemorySource::new(schema, vec![batches])),
        EventTimeSpec::new("ts", 0),
    )
    .backend(backend)
    .lookup_join(LookupJoinSpec {
        name: "merchants".into(),
        table,
        on: vec!["key".into()],
        table_on: vec!["merchant".into()],
        kind,
        reload: None,
    });
    let output = builder.schemas().expect("schemas").output;
    builder
        .sink(Box::new(sink.clone()))
        .build()
        .expect("pipeline")
        .run_blocking()
        .expect("run");
    let out = sink.concat(&output).expect("output");
    let sid = out
        .column_by_name("sid")
        .expect("sid")
        .as_primitive::<Int64Type>();
    let tid = out
        .column_by_name("tid")
        .expect("tid")
        .as_primitive::<Int64Type>();
    let mut pairs: Vec<(i64, Option<i64>)> = sid.values().iter().copied().zip(tid.iter()).collect();
    pairs.sort();
    pairs
}

/// (sid, tid) pairs of the same join computed by polars, sorted.
fn oracle(input: &Input, kind: JoinKind) -> Vec<(i64, Option<i64>)> {
    let stream = df!(
        "sid" => input.stream.iter().map(|(s, _)| *s).collect::<Vec<i64>>(),
        "key" => input.stream.iter().map(|(_, k)| *k).collect::<Vec<Option<i64>>>(),
    )
    .expect("stream frame");
    let table = df!(
        "tid" => input.table.iter().map(|(t, _)| *t).collect::<Vec<i64>>(),
        "key" => input.table.iter().map(|(_, k)| *k).collect::<Vec<Option<i64>>>(),
    )
    .expect("table frame");
    let how = match kind {
        JoinKind::Inner => JoinType::Inner,
        JoinKind::Left => JoinType::Left,
        JoinKind::Full => unreachable!("lookup joins refuse full outer joins"),
    };
    let joined = stream
        .lazy()
        .join(table.lazy(), [col("key")], [col("key")], JoinArgs::new(how))
        .collect()
        .expect("polars join");
    let sid = joined.column("sid").expect("sid").i64().expect("i64");
    let tid = joined.column("tid").expect("tid").i64().expect("i64");
    let mut pairs: Vec<(i64, Option<i64>)> = sid
        .iter()
        .zip(tid.iter())
        .map(|(s, t)| (s.expect("sid"), t))
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn lookup_joins_equal_a_polars_join() {
    let cases = [
        (2_000, 50, false, 1),
        (3_000, 200, true, 2),
        (500, 3, false, 3),
        (700, 0, false, 4),
    ];
    for (rows, keys, skew, seed) in cases {
        let input = input(rows, keys, skew, seed);
        for kind in [JoinKind::Inner, JoinKind::Left] {
            let want = oracle(&input, kind);
            if keys > 0 {
                assert!(
                    want.iter().any(|(_, t)| t.is_some()),
                    "the case has matches"
                );
            }
            for strings in [false, true] {
                for backend in backends() {
                    let got = engine(&input, strings, kind, backend.clone());
                    assert!(
                        got == want,
                        "{kind:?} keys {keys} skew {skew} strings {strings} on {}: {} pairs, polars {}",
                        backend.name(),
                        got.len(),
                        want.len()
                    );
                }
            }
        }
    }
}
