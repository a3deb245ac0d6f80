//! Stream joins written in SQL against polars on random inputs: window joins of every kind
//! (INNER, LEFT, RIGHT, FULL OUTER; tumbling and hopping) and an interval join, over two
//! CSV files of random keys (some null) and times, on every backend. The job-file joins have
//! the same check in `stream_joins.rs`; this one goes through the planner's names, sides and
//! swaps.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use polars::prelude::*;
use sluice::job::JobFile;
use sluice_engine::backend::Backend;
use sluice_engine::memory::CollectSink;

use crate::common::backends;
use crate::stream_joins::window_starts;

/// Epoch ms of the first row.
const START: i64 = 1_767_225_600_000;

/// One side's rows: (id, ms after `START`, key).
type Rows = Vec<(i64, i64, Option<i64>)>;

/// `rows` rows in time order, 100 ms apart on average, keys below `keys` (one in ten null).
fn rows(rows: usize, keys: u64, first_id: i64, seed: u64) -> Rows {
    let mut state = seed;
    let mut next = move |below: u64| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        ((z ^ (z >> 31)) % below) as i64
    };
    let mut ts = 0;
    (0..rows)
        .map(|i| {
            ts += next(200);
            let key = (next(10) != 0).then(|| next(keys));
            (first_id + i as i64, ts, key)
        })
        .collect()
}

fn write_csv(path: &Path, id: &str, rows: &Rows) {
    let mut text = format!("ts,k,{id}\n");
    for &(i, ts, key) in rows {
        let time = arrow::temporal_conversions::timestamp_ms_to_datetime(START + ts)
            .expect("a time in range")
            .format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let key = key.map_or(String::new(), |k| k.to_string());
        text.push_str(&format!("{time},{key},{i}\n"));
    }
    std::fs::write(path, text).expect("write csv");
}

fn frame(rows: &Rows, id: &str, window: Option<(i64, i64)>) -> DataFrame {
    let (mut ids, mut ts, mut keys, mut starts) = (vec![], vec![], vec![], vec![]);
    for &(i, t, k) in rows {
        // START is a whole day, so windows aligned to the epoch are aligned to it too.
        let windows = window.map_or(vec![0], |(size, slide)| window_starts(t, size, slide));
        for s in windows {
            ids.push(i);
            ts.push(t);
            keys.push(k);
            starts.push(s);
        }
    }
    let ts_name = format!("{id}_ts");
    df!(id => ids, ts_name.as_str() => ts, "k" => keys, "start" => starts).expect("frame")
}

/// (left id, right id, window start in ms after `START`) of every output row, sorted.
type Pairs = Vec<(Option<i64>, Option<i64>, Option<i64>)>;

fn polars_window_join(left: &Rows, right: &Rows, how: JoinType, size: i64, slide: i64) -> Pairs {
    let l = frame(left, "lid", Some((size, slide))).lazy();
    let r = frame(right, "rid", Some((size, slide))).lazy();
    let joined = l
        .join(
            r,
            [col("k"), col("start")],
            [col("k"), col("start")],
            JoinArgs::new(how).with_coalesce(JoinCoalesce::CoalesceColumns),
        )
        .collect()
        .expect("polars join");
    let column = |name: &str| -> Vec<Option<i64>> {
        joined
            .column(name)
            .expect(name)
            .i64()
            .expect("i64")
            .iter()
            .collect()
    };
    let (lid, rid, start) = (column("lid"), column("rid"), column("start"));
    let mut pairs: Pairs = (0..joined.height())
        .map(|i| (lid[i], rid[i], start[i]))
        .collect();
    pairs.sort();
    pairs
}

/// Every (left, right) pair of a key with `left.ts` in `[right.ts - lower, right.ts + upper]`.
fn nested_loop_interval_join(left: &Rows, right: &Rows, lower: i64, upper: i64) -> Pairs {
    let mut pairs: Pairs = Vec::new();
    for &(l, lt, lk) in left {
        for &(r, rt, rk) in right {
            if lk.is_some() && lk == rk && lt >= rt - lower && lt <= rt + upper {
                pairs.push((Some(l), Some(r), None));
            }
        }
    }
    pairs.sort();
    pairs
}

/// Runs `query` (reading tables `l` and `r` from `dir`) into memory on `backend`.
fn run(dir: &Path, query: &str, backend: Arc<dyn Backend>) -> RecordBatch {
    let table = |name: &str, id: &str| {
        format!(
            "CREATE TABLE {name} (ts TIMESTAMP(3), k BIGINT, {id} BIGINT, \
             WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'filesystem', \
             'path' = '{name}.csv', 'format' = 'csv', 'batch-rows' = '97');\n"
        )
    };
    let script = format!(
        "{}{}CREATE TABLE o WITH ('connector' = 'blackhole');\nINSERT INTO o {query};",
        table("l", "lid"),
        table("r", "rid")
    );
    let job =
        JobFile::from_sql(&script, &dir.join("job.sql"), &[]).unwrap_or_else(|err| panic!("{err}"));
    let builder = job.builder_on(backend).expect("builder");
    let schemas = builder.schemas().expect("schemas");
    let sink = CollectSink::new();
    let pipeline = builder
        .sink(Box::new(sink.clone()))
        .build()
        .expect("pipeline");
    let summary = pipeline.run_blocking().expect("run");
    assert_eq!(summary.counts.late, 0, "in-order inputs have no late rows");
    sink.concat(&schemas.output).expect("output")
}

/// The output's (lid, rid, window_start) rows, sorted.
fn pairs(batch: &RecordBatch, windowed: bool) -> Pairs {
    let int = |name: &str| -> Vec<Option<i64>> {
        let column = batch.column_by_name(name).expect(name);
        match column.as_primitive_opt::<TimestampMillisecondType>() {
            Some(t) => t.iter().map(|v| v.map(|ms| ms - START)).collect(),
            None => column.as_primitive::<Int64Type>().iter().collect(),
        }
    };
    let (lid, rid) = (int("lid"), int("rid"));
    let start = if windowed {
        int("window_start")
    } else {
        vec![None; batch.num_rows()]
    };
    let mut pairs: Pairs = (0..batch.num_rows())
        .map(|i| (lid[i], rid[i], start[i]))
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn sql_stream_joins_equal_polars_on_every_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let left = rows(700, 12, 0, 5);
    let right = rows(400, 12, 1_000_000, 6);
    write_csv(&dir.path().join("l.csv"), "lid", &left);
    write_csv(&dir.path().join("r.csv"), "rid", &right);
    let tvf = |table: &str, window: &str| {
        format!(
            "TABLE({window}(TABLE {table}, DESCRIPTOR(ts), {}))",
            match window {
                "TUMBLE" => "INTERVAL '1' SECOND",
                _ => "INTERVAL '500' MILLISECOND, INTERVAL '1' SECOND",
            }
        )
    };
    let on = "ON a.k = b.k AND a.window_start = b.window_start AND a.window_end = b.window_end";
    let cases = [
        ("JOIN", JoinType::Inner),
        ("LEFT JOIN", JoinType::Left),
        ("RIGHT JOIN", JoinType::Right),
        ("FULL OUTER JOIN", JoinType::Full),
    ];
    for backend in backends() {
        for window in ["TUMBLE", "HOP"] {
            let slide = if window == "TUMBLE" { 1_000 } else { 500 };
            for (join, how) in &cases {
                let query = format!(
                    "SELECT a.lid, b.rid, window_start FROM {} AS a {join} {} AS b {on}",
                    tvf("l", window),
                    tvf("r", window)
                );
                let want = polars_window_join(&left, &right, how.clone(), 1_000, slide);
                assert!(
                    want.iter().any(|p| p.0.is_some() && p.1.is_some()),
                    "{query}: matches"
                );
                let got = pairs(&run(dir.path(), &query, backend.clone()), true);
                assert!(
                    got == want,
                    "{query} on {}: {} rows, polars {}",
                    backend.name(),
                    got.len(),
                    want.len()
                );
            }
        }
        let query = "SELECT a.lid, b.rid FROM l AS a, r AS b WHERE a.k = b.k \
                     AND a.ts BETWEEN b.ts - INTERVAL '1' SECOND AND b.ts + INTERVAL '2' SECOND";
        let got = pairs(&run(dir.path(), query, backend.clone()), false);
        let want = nested_loop_interval_join(&left, &right, 1_000, 2_000);
        assert!(!want.is_empty());
        assert!(
            got == want,
            "interval join on {}: {} rows, {} expected",
            backend.name(),
            got.len(),
            want.len()
        );
    }
}
