//! Stream joins equal an independent polars computation on random inputs with fixed seeds:
//! interval joins, tumbling and hopping window joins (inner and left outer), with many matches
//! per key, a skewed key holding most rows, null keys (never match), string keys, an empty
//! side, several partitions and disorder below the watermark delay; on every backend, through
//! the whole runtime. Also: windows after a join, and bounded join state on a long run.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::TimestampMillisecondArray;
use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::TimestampMillisecondType;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use polars::prelude::*;
use sluice_engine::memory::{CollectSink, MemorySource};
use sluice_engine::operator::{Emitted, JoinKind, JoinTime, StreamJoinSpec};
use sluice_engine::operator::{JoinInput, JoinSideId, StreamJoinOperator};
use sluice_engine::prelude::*;

use crate::common::{Rng, T0, backends};

/// One side's rows: (id, event time, key), split into partitions.
#[derive(Debug, Clone)]
struct Side {
    rows: Vec<(i64, i64, Option<i64>)>,
    partition: Vec<usize>,
    partitions: usize,
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    rows: usize,
    keys: u64,
    skew: bool,
    /// Event-time step between consecutive rows (ms).
    step: i64,
    /// Event time jitters by up to this much (below the watermark delay).
    disorder: i64,
    partitions: usize,
}

const DELAY: i64 = 500;

fn side(shape: Shape, first_id: i64, seed: u64) -> Side {
    let mut rng = Rng::new(seed);
    let mut rows = Vec::with_capacity(shape.rows);
    let mut partition = Vec::with_capacity(shape.rows);
    for i in 0..shape.rows {
        let key = if rng.below(13) == 0 {
            None
        } else if shape.skew && rng.below(3) != 0 {
            Some(0)
        } else {
            Some(rng.below(shape.keys.max(1)) as i64)
        };
        let ts = T0 + i as i64 * shape.step + rng.below(shape.disorder.max(1) as u64) as i64;
        rows.push((first_id + i as i64, ts, key));
        partition.push(rng.below(shape.partitions.max(1) as u64) as usize);
    }
    Side {
        rows,
        partition,
        partitions: shape.partitions.max(1),
    }
}

fn schema(id: &str, strings: bool) -> SchemaRef {
    let key = if strings {
        DataType::Utf8
    } else {
        DataType::Int64
    };
    Arc::new(Schema::new(vec![
        Field::new(id, DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("key", key, true),
    ]))
}

/// How the rows reach the join: rows per source batch, and how micro-batches are cut.
#[derive(Debug, Clone, Copy)]
struct Cut {
    source_rows: usize,
    batching: BatchingSpec,
}

/// Source batches smaller than micro-batches: most tests' shape.
const CUT: Cut = Cut {
    source_rows: 61,
    batching: BatchingSpec {
        max_rows: 150,
        max_delay: Duration::from_millis(20),
    },
};

fn batches(side: &Side, id: &str, strings: bool, source_rows: usize) -> Vec<Vec<RecordBatch>> {
    let schema = schema(id, strings);
    (0..side.partitions)
        .map(|p| {
            let rows: Vec<&(i64, i64, Option<i64>)> = side
                .rows
                .iter()
                .zip(&side.partition)
                .filter(|(_, q)| **q == p)
                .map(|(r, _)| r)
                .collect();
            rows.chunks(source_rows)
                .map(|chunk| {
                    let keys: ArrayRef = if strings {
                        Arc::new(StringArray::from_iter(
                            chunk.iter().map(|r| r.2.map(|k| format!("k{k}"))),
                        ))
                    } else {
                        Arc::new(Int64Array::from_iter(chunk.iter().map(|r| r.2)))
                    };
                    RecordBatch::try_new(
                        schema.clone(),
                        vec![
                            Arc::new(Int64Array::from_iter_values(chunk.iter().map(|r| r.0))),
                            Arc::new(TimestampMillisecondArray::from_iter_values(
                                chunk.iter().map(|r| r.1),
                            )),
                            keys,
                        ],
                    )
                    .expect("side batch")
                })
                .collect()
        })
        .collect()
}

/// One joined pair as compared: (left id, right id or none, window start or none).
type Pair = (Option<i64>, Option<i64>, Option<i64>);

fn spec(kind: JoinKind, time: JoinTime) -> StreamJoinSpec {
    StreamJoinSpec {
        left: "l".into(),
        right: "r".into(),
        on: vec!["key".into()],
        right_on: vec!["key".into()],
        kind,
        time,
    }
}

fn input(name: &str, side: &Side, id: &str, strings: bool, source_rows: usize) -> InputStream {
    InputStream::new(
        name,
        Box::new(MemorySource::new(
            schema(id, strings),
            batches(side, id, strings, source_rows),
        )),
        EventTimeSpec::new("ts", DELAY),
    )
}

/// Runs the join through the runtime and returns its pairs (sorted), checking each row's
/// event time against its own columns on the way.
fn engine(
    left: &Side,
    right: &Side,
    join: &StreamJoinSpec,
    strings: bool,
    backend: Arc<dyn Backend>,
) -> Vec<Pair> {
    engine_cut(left, right, join, strings, backend, CUT)
}

/// [`engine`] with the rows batched as `cut` says.
fn engine_cut(
    left: &Side,
    right: &Side,
    join: &StreamJoinSpec,
    strings: bool,
    backend: Arc<dyn Backend>,
    cut: Cut,
) -> Vec<Pair> {
    let sink = CollectSink::new();
    let builder = Pipeline::join(
        input("l", left, "lid", strings, cut.source_rows),
        input("r", right, "rid", strings, cut.source_rows),
        join.clone(),
    )
    .backend(backend)
    .batching(cut.batching);
    let output = builder.schemas().expect("schemas").output;
    let summary = builder
        .sink(Box::new(sink.clone()))
        .build()
        .expect("pipeline")
        .run_blocking()
        .expect("run");
    assert_eq!(summary.counts.late, 0, "disorder stays below the delay");
    let out = sink.concat(&output).expect("output");
    let int = |name: &str| -> Vec<Option<i64>> {
        let column = out
            .column_by_name(name)
            .unwrap_or_else(|| panic!("column {name}"));
        match column.as_primitive_opt::<TimestampMillisecondType>() {
            Some(t) => t.iter().collect(),
            None => column.as_primitive::<Int64Type>().iter().collect(),
        }
    };
    let (lid, rid, time) = (int("lid"), int("rid"), int("ts"));
    let (lts, rts) = (int("l.ts"), int("r.ts"));
    let starts = match join.time {
        JoinTime::Window(_) => int("window_start"),
        JoinTime::Interval { .. } => vec![None; out.num_rows()],
    };
    let mut pairs = Vec::with_capacity(out.num_rows());
    for i in 0..out.num_rows() {
        let expected_time = match join.time {
            JoinTime::Window(w) => starts[i].map(|s| s + w.size().unwrap_or(0) - 1),
            JoinTime::Interval { .. } => lts[i].max(rts[i]),
        };
        assert_eq!(
            time[i], expected_time,
            "the joined row's event time, row {i}"
        );
        pairs.push((lid[i], rid[i], starts[i]));
    }
    pairs.sort();
    pairs
}

/// The windows (starts) containing `ts`, computed independently of the engine.
pub(crate) fn window_starts(ts: i64, size: i64, slide: i64) -> Vec<i64> {
    let last = ts - ts.rem_euclid(slide);
    (0..)
        .map(|k| last - k * slide)
        .take_while(|s| s + size > ts)
        .collect()
}

fn frame(side: &Side, id: &str, windows: Option<(i64, i64)>) -> DataFrame {
    let mut ids = Vec::new();
    let mut ts = Vec::new();
    let mut keys = Vec::new();
    let mut starts = Vec::new();
    for &(i, t, k) in &side.rows {
        let mut push = |start: i64| {
            ids.push(i);
            ts.push(t);
            keys.push(k);
            starts.push(start);
        };
        match windows {
            Some((size, slide)) => window_starts(t, size, slide).into_iter().for_each(push),
            None => push(0),
        }
    }
    let ts_name = format!("{id}_ts");
    df!(id => ids, ts_name.as_str() => ts, "key" => keys, "start" => starts).expect("frame")
}

/// The same join computed by polars.
fn oracle(left: &Side, right: &Side, join: &StreamJoinSpec) -> Vec<Pair> {
    let windows = match join.time {
        JoinTime::Window(w) => Some((w.size().unwrap_or(1), w.slide().unwrap_or(1))),
        JoinTime::Interval { .. } => None,
    };
    let l = frame(left, "lid", windows).lazy();
    let r = frame(right, "rid", windows).lazy();
    let how = match join.kind {
        JoinKind::Inner => JoinType::Inner,
        JoinKind::Left => JoinType::Left,
        JoinKind::Full => JoinType::Full,
    };
    let joined = match join.time {
        JoinTime::Interval { lower, upper } => l
            .join(
                r,
                [col("key")],
                [col("key")],
                JoinArgs::new(JoinType::Inner),
            )
            .filter(
                col("lid_ts")
                    .gt_eq(col("rid_ts") - lit(lower))
                    .and(col("lid_ts").lt_eq(col("rid_ts") + lit(upper))),
            ),
        JoinTime::Window(_) => l.join(
            r,
            [col("key"), col("start")],
            [col("key"), col("start")],
            // A full join's rows of one side keep their own window start.
            JoinArgs::new(how).with_coalesce(JoinCoalesce::CoalesceColumns),
        ),
    }
    .collect()
    .expect("polars join");
    let lid = joined.column("lid").expect("lid").i64().expect("i64");
    let rid = joined.column("rid").expect("rid").i64().expect("i64");
    let start = joined.column("start").expect("start").i64().expect("i64");
    let mut pairs: Vec<Pair> = lid
        .iter()
        .zip(rid.iter())
        .zip(start.iter())
        .map(|((l, r), s)| (l, r, windows.and(s)))
        .collect();
    pairs.sort();
    pairs
}

fn cases() -> Vec<(Shape, Shape, u64)> {
    let shape = |rows, keys, skew, step, partitions| Shape {
        rows,
        keys,
        skew,
        step,
        disorder: 400,
        partitions,
    };
    vec![
        // Many rows per key in each bound: many-to-many.
        (
            shape(1_500, 20, false, 7, 1),
            shape(1_000, 20, false, 11, 2),
            1,
        ),
        // One key holds most rows on both sides.
        (
            shape(1_200, 50, true, 9, 2),
            shape(1_200, 50, true, 9, 1),
            2,
        ),
        // Sparse: most keys meet nothing.
        (
            shape(800, 400, false, 13, 1),
            shape(300, 400, false, 29, 1),
            3,
        ),
    ]
}

fn check(join: &StreamJoinSpec, strings_too: bool) {
    for (l, r, seed) in cases() {
        let left = side(l, 0, seed);
        let right = side(r, 1_000_000, seed + 100);
        let want = oracle(&left, &right, join);
        assert!(
            want.iter().any(|p| p.1.is_some()),
            "seed {seed}: the case has matches"
        );
        for strings in [false, true].into_iter().take(1 + strings_too as usize) {
            for backend in backends() {
                let got = engine(&left, &right, join, strings, backend.clone());
                assert!(
                    got == want,
                    "{:?} {:?} seed {seed} strings {strings} on {}: {} rows, polars {}",
                    join.kind,
                    join.time,
                    backend.name(),
                    got.len(),
                    want.len()
                );
            }
        }
    }
}

#[test]
fn interval_joins_equal_polars() {
    check(
        &spec(
            JoinKind::Inner,
            JoinTime::Interval {
                lower: 300,
                upper: 200,
            },
        ),
        true,
    );
    // Asymmetric and shifted: the left row 100-400 ms after the right one.
    check(
        &spec(
            JoinKind::Inner,
            JoinTime::Interval {
                lower: -100,
                upper: 400,
            },
        ),
        false,
    );
}

#[test]
fn tumbling_window_joins_equal_polars() {
    let window = JoinTime::Window(WindowSpec::Tumbling {
        size: 1_000,
        offset: 0,
    });
    check(&spec(JoinKind::Inner, window), true);
    check(&spec(JoinKind::Left, window), false);
    check(&spec(JoinKind::Full, window), true);
}

#[test]
fn hopping_window_joins_equal_polars() {
    let window = JoinTime::Window(WindowSpec::Hopping {
        size: 1_500,
        slide: 500,
        offset: 0,
    });
    check(&spec(JoinKind::Inner, window), false);
    check(&spec(JoinKind::Left, window), true);
    check(&spec(JoinKind::Full, window), false);
}

/// Issue 12: batching cannot change a join's result. The same two streams, in order and
/// disordered within the delay, over one and three partitions, through every combination of
/// source batch size, micro-batch rows and delay, on every backend: the pairs polars finds,
/// and no late row. (Source batches larger than micro-batches lost on-time rows as late.)
fn invariant_under_batching(join: &StreamJoinSpec) {
    for (disorder, partitions, seed) in [(0, 1, 41), (0, 3, 42), (400, 1, 43), (400, 3, 44)] {
        let shape = |rows, step| Shape {
            rows,
            keys: 8,
            skew: false,
            step,
            disorder,
            partitions,
        };
        let left = side(shape(240, 5), 0, seed);
        let right = side(shape(120, 10), 1_000_000, seed + 100);
        let want = oracle(&left, &right, join);
        assert!(want.iter().any(|p| p.1.is_some()), "seed {seed}: matches");
        for backend in backends() {
            for source_rows in [1, 7, 50, 100_000] {
                for max_rows in [1, 6, 64, 100_000] {
                    for max_delay in [Duration::ZERO, Duration::from_secs(60)] {
                        let cut = Cut {
                            source_rows,
                            batching: BatchingSpec {
                                max_rows,
                                max_delay,
                            },
                        };
                        let got = engine_cut(&left, &right, join, false, backend.clone(), cut);
                        assert!(
                            got == want,
                            "{:?} {:?}, disorder {disorder}, {partitions} partitions, {cut:?} \
                             on {}: {} rows, polars {}",
                            join.kind,
                            join.time,
                            backend.name(),
                            got.len(),
                            want.len()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn interval_joins_do_not_depend_on_batching() {
    let bounds = JoinTime::Interval {
        lower: 100,
        upper: 60,
    };
    invariant_under_batching(&spec(JoinKind::Inner, bounds));
}

#[test]
fn window_joins_do_not_depend_on_batching() {
    let tumbling = JoinTime::Window(WindowSpec::Tumbling {
        size: 200,
        offset: 0,
    });
    invariant_under_batching(&spec(JoinKind::Inner, tumbling));
    let hopping = JoinTime::Window(WindowSpec::Hopping {
        size: 300,
        slide: 100,
        offset: 0,
    });
    invariant_under_batching(&spec(JoinKind::Left, hopping));
}

#[test]
fn an_empty_side_joins_nothing_or_keeps_every_left_row() {
    let rows = side(
        Shape {
            rows: 400,
            keys: 10,
            skew: false,
            step: 10,
            disorder: 100,
            partitions: 2,
        },
        0,
        9,
    );
    let empty = Side {
        rows: Vec::new(),
        partition: Vec::new(),
        partitions: 1,
    };
    let window = JoinTime::Window(WindowSpec::Tumbling {
        size: 1_000,
        offset: 0,
    });
    for backend in backends() {
        let interval = spec(
            JoinKind::Inner,
            JoinTime::Interval {
                lower: 50,
                upper: 50,
            },
        );
        assert!(engine(&rows, &empty, &interval, false, backend.clone()).is_empty());
        assert!(engine(&empty, &rows, &interval, false, backend.clone()).is_empty());
        let outer = spec(JoinKind::Left, window);
        let got = engine(&rows, &empty, &outer, false, backend.clone());
        assert_eq!(got.len(), rows.rows.len(), "every left row once, unmatched");
        assert_eq!(got, oracle(&rows, &empty, &outer));
        let full = spec(JoinKind::Full, window);
        let got = engine(&empty, &rows, &full, false, backend.clone());
        assert_eq!(
            got.len(),
            rows.rows.len(),
            "every right row once, unmatched"
        );
        assert!(got.iter().all(|p| p.0.is_none()));
        assert_eq!(got, oracle(&empty, &rows, &full));
    }
}

#[test]
fn a_window_after_an_interval_join_counts_matches_per_key_and_minute() {
    let left = side(
        Shape {
            rows: 3_000,
            keys: 30,
            skew: false,
            step: 40,
            disorder: 300,
            partitions: 2,
        },
        0,
        21,
    );
    let right = side(
        Shape {
            rows: 600,
            keys: 30,
            skew: false,
            step: 200,
            disorder: 300,
            partitions: 1,
        },
        1_000_000,
        22,
    );
    let join = spec(
        JoinKind::Inner,
        JoinTime::Interval {
            lower: 5_000,
            upper: 5_000,
        },
    );
    // polars: matches per (key, minute of the later row's time).
    let pairs = frame(&left, "lid", None)
        .lazy()
        .join(
            frame(&right, "rid", None).lazy(),
            [col("key")],
            [col("key")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(
            col("lid_ts")
                .gt_eq(col("rid_ts") - lit(5_000i64))
                .and(col("lid_ts").lt_eq(col("rid_ts") + lit(5_000i64))),
        )
        .with_column(
            when(col("lid_ts").gt(col("rid_ts")))
                .then(col("lid_ts"))
                .otherwise(col("rid_ts"))
                .alias("t"),
        )
        .with_column((col("t") - col("t") % lit(60_000i64)).alias("minute"))
        .group_by([col("key"), col("minute")])
        .agg([len().alias("n")])
        .collect()
        .expect("polars");
    let mut want: Vec<(i64, i64, i64)> = (0..pairs.height())
        .map(|i| {
            let get = |c: &str| {
                pairs
                    .column(c)
                    .expect(c)
                    .get(i)
                    .expect("value")
                    .try_extract::<i64>()
                    .expect("i64")
            };
            (get("key"), get("minute"), get("n"))
        })
        .collect();
    want.sort();
    assert!(want.len() > 10);
    for backend in backends() {
        let sink = CollectSink::new();
        let builder = Pipeline::join(
            input("l", &left, "lid", false, CUT.source_rows),
            input("r", &right, "rid", false, CUT.source_rows),
            join.clone(),
        )
        .backend(backend.clone())
        .window(WindowAggregateSpec {
            keys: vec!["key".into()],
            window: WindowSpec::Tumbling {
                size: 60_000,
                offset: 0,
            },
            aggregates: vec![AggregateSpec::count("n")],
        });
        let output = builder.schemas().expect("schemas").output;
        let summary = builder
            .sink(Box::new(sink.clone()))
            .build()
            .expect("pipeline")
            .run_blocking()
            .expect("run");
        assert_eq!(summary.counts.late, 0);
        let out = sink.concat(&output).expect("output");
        let key = out
            .column_by_name("key")
            .expect("key")
            .as_primitive::<Int64Type>();
        let start = out
            .column_by_name("window_start")
            .expect("start")
            .as_primitive::<TimestampMillisecondType>();
        let n = out
            .column_by_name("n")
            .expect("n")
            .as_primitive::<Int64Type>();
        let mut got: Vec<(i64, i64, i64)> = (0..out.num_rows())
            .map(|i| (key.value(i), start.value(i), n.value(i)))
            .collect();
        got.sort();
        assert_eq!(got, want, "on {}", backend.name());
    }
}

#[test]
fn interval_join_state_stays_bounded_on_a_long_run() {
    let schema = schema("id", false);
    let input = |name: &str| JoinInput {
        name: name.into(),
        schema: schema.clone(),
        time_column: "ts".into(),
    };
    let join = spec(
        JoinKind::Inner,
        JoinTime::Interval {
            lower: 1_000,
            upper: 1_000,
        },
    );
    for backend in backends() {
        let mut op = StreamJoinOperator::try_new(&join, input("l"), input("r"), &backend, "join")
            .expect("join");
        let mut rng = Rng::new(5);
        let mut joined = 0;
        let mut most = (0, 0);
        // 200 batches of 500 rows a side, 10 ms apart in event time: 1,000 s in all; only
        // rows within ~1 s of the watermark can still match.
        for b in 0..200i64 {
            for (side, first) in [(JoinSideId::Left, 0), (JoinSideId::Right, 10_000_000)] {
                let ts: Vec<i64> = (0..500)
                    .map(|i| T0 + (b * 500 + i) * 10 + rng.below(50) as i64)
                    .collect();
                let keys: Vec<i64> = (0..500).map(|_| rng.below(100) as i64).collect();
                let ids: Vec<i64> = (0..500).map(|i| first + b * 500 + i).collect();
                let batch = RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(ids)),
                        Arc::new(TimestampMillisecondArray::from(ts)),
                        Arc::new(Int64Array::from(keys)),
                    ],
                )
                .expect("batch");
                let mut out = Emitted::default();
                op.process(side, batch, &mut out).expect("process");
                joined += out.rows();
            }
            let mut out = Emitted::default();
            op.on_watermark(T0 + (b + 1) * 5_000 - 100, &mut out)
                .expect("watermark");
            let (l, r) = op.buffered_rows();
            most = (most.0.max(l), most.1.max(r));
        }
        assert!(joined > 100_000, "{joined} pairs");
        // A side buffers what arrived since the watermark minus the bound: ~1.1 s of event
        // time, a batch (5 s) at most, plus the batch in flight.
        assert!(
            most.0 <= 1_000 && most.1 <= 1_000,
            "buffered at most {most:?} rows on {}",
            backend.name()
        );
    }
}

#[test]
fn the_late_sink_gets_late_rows_of_both_streams_as_json() {
    // The right stream is 10 s ahead: once its watermark passes, old left rows are late.
    let left: Vec<Vec<RecordBatch>> = vec![vec![
        batch_of(&[(1, T0 + 20_000, Some(1))]),
        batch_of(&[(2, T0, Some(1))]),
    ]];
    let right = vec![vec![batch_of(&[(3, T0 + 20_000, Some(1))])]];
    let late = CollectSink::new();
    let out = CollectSink::new();
    let builder = Pipeline::join(
        InputStream::new(
            "l",
            Box::new(MemorySource::new(schema("id", false), left)),
            EventTimeSpec::new("ts", 0),
        ),
        InputStream::new(
            "r",
            Box::new(MemorySource::new(schema("id", false), right)),
            EventTimeSpec::new("ts", 0),
        ),
        spec(JoinKind::Inner, JoinTime::Interval { lower: 0, upper: 0 }),
    );
    let schemas = builder.schemas().expect("schemas");
    let summary = builder
        .sink(Box::new(out.clone()))
        .late_sink(Box::new(late.clone()))
        .build()
        .expect("pipeline")
        .run_blocking()
        .expect("run");
    let late_rows = late
        .concat(&schemas.late.expect("late schema"))
        .expect("late");
    assert_eq!(summary.counts.late as usize, late_rows.num_rows());
    if late_rows.num_rows() > 0 {
        assert_eq!(late_rows.column(0).as_string::<i32>().value(0), "l");
        assert!(
            late_rows
                .column(2)
                .as_string::<i32>()
                .value(0)
                .contains("\"id\":2")
        );
    }
    let joined = out.concat(&schemas.output).expect("out");
    assert_eq!(joined.num_rows(), 1, "1 and 3 meet");
}

fn batch_of(rows: &[(i64, i64, Option<i64>)]) -> RecordBatch {
    RecordBatch::try_new(
        schema("id", false),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.1),
            )),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.2))),
        ],
    )
    .expect("batch")
}
