//! Hand-checked stream join cases: interval and window joins, inner and left outer, late rows,
//! expiry, clashing names and restore from a snapshot.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimestampMillisecondType};

use super::*;
use crate::backend::CpuBackend;
use crate::event_time::event_time_type;
use crate::operator::Emitted;

type Row = (Option<i64>, i64, i64);

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, true),
        Field::new("ts", event_time_type(), false),
        Field::new("v", DataType::Int64, false),
    ]))
}

fn batch(rows: &[Row]) -> Result<RecordBatch> {
    let key: Int64Array = rows.iter().map(|r| r.0).collect();
    let ts = TimestampMillisecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
        .with_timezone("UTC");
    let v: Int64Array = rows.iter().map(|r| Some(r.2)).collect();
    RecordBatch::try_new(schema(), vec![Arc::new(key), Arc::new(ts), Arc::new(v)])
        .map_err(Error::arrow("test batch"))
}

fn input(name: &str) -> JoinInput {
    JoinInput {
        name: name.into(),
        schema: schema(),
        time_column: "ts".into(),
    }
}

fn join(time: JoinTime, kind: JoinKind) -> Result<StreamJoinOperator> {
    let spec = StreamJoinSpec {
        left: "l".into(),
        right: "r".into(),
        on: vec!["key".into()],
        right_on: vec!["key".into()],
        kind,
        time,
    };
    let backend: Arc<dyn Backend> = Arc::new(CpuBackend::new());
    StreamJoinOperator::try_new(&spec, input("l"), input("r"), &backend, "join")
}

/// Output rows as (key, [window start,] l.ts, l.v, r.ts, r.v, ts) with nulls as `None`.
fn rows(out: &Emitted) -> Vec<Vec<Option<i64>>> {
    let mut all = Vec::new();
    for b in &out.batches {
        for r in 0..b.num_rows() {
            let row = (0..b.num_columns())
                .filter(|&c| b.schema().field(c).name() != "window_end")
                .map(|c| {
                    let col = b.column(c);
                    if col.is_null(r) {
                        None
                    } else if let Some(t) = col.as_primitive_opt::<TimestampMillisecondType>() {
                        Some(t.value(r))
                    } else {
                        Some(col.as_primitive::<Int64Type>().value(r))
                    }
                })
                .collect();
            all.push(row);
        }
    }
    all
}

fn some(values: &[i64]) -> Vec<Option<i64>> {
    values.iter().map(|&v| Some(v)).collect()
}

#[test]
fn names_clashing_columns_by_stream() -> Result<()> {
    let op = join(JoinTime::Interval { lower: 0, upper: 0 }, JoinKind::Inner)?;
    let names: Vec<String> = op
        .output_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["key", "l.ts", "l.v", "r.ts", "r.v", "ts"]);
    let window = join(
        JoinTime::Window(WindowSpec::Tumbling {
            size: 10,
            offset: 0,
        }),
        JoinKind::Left,
    )?;
    let schema = window.output_schema();
    assert_eq!(schema.field(1).name(), "window_start");
    assert!(
        schema
            .field_with_name("r.v")
            .map_err(Error::arrow("field"))?
            .is_nullable()
    );
    Ok(())
}

#[test]
fn interval_join_pairs_rows_within_the_bounds_once() -> Result<()> {
    // left.ts BETWEEN right.ts - 2 AND right.ts + 3.
    let left = batch(&[
        (Some(1), 10, 100),
        (Some(1), 20, 101),
        (Some(2), 10, 102),
        (None, 10, 103),
    ])?;
    let right = batch(&[
        (Some(1), 8, 200),  // left ts in [6, 11]: 10
        (Some(1), 12, 201), // [10, 15]: 10
        (Some(1), 17, 202), // [15, 20]: 20
        (Some(2), 14, 203), // [12, 17]: none
        (None, 10, 204),    // a null key never matches
    ])?;
    let expected = vec![
        some(&[1, 10, 100, 8, 200, 10]),
        some(&[1, 10, 100, 12, 201, 12]),
        some(&[1, 20, 101, 17, 202, 20]),
    ];
    let time = JoinTime::Interval { lower: 2, upper: 3 };
    let mut op = join(time, JoinKind::Inner)?;
    let mut out = Emitted::default();
    op.process(JoinSideId::Left, left.clone(), &mut out)?;
    assert!(out.batches.is_empty());
    op.process(JoinSideId::Right, right.clone(), &mut out)?;
    assert_eq!(rows(&out), expected);

    // The other arrival order finds the same pairs, in left-row order.
    let mut op = join(time, JoinKind::Inner)?;
    let mut out = Emitted::default();
    op.process(JoinSideId::Right, right, &mut out)?;
    op.process(JoinSideId::Left, left, &mut out)?;
    let mut got = rows(&out);
    got.sort();
    let mut want = expected;
    want.sort();
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn interval_join_expires_rows_and_reports_late_ones() -> Result<()> {
    let mut op = join(JoinTime::Interval { lower: 2, upper: 3 }, JoinKind::Inner)?;
    let mut out = Emitted::default();
    op.process(
        JoinSideId::Right,
        batch(&[(Some(1), 12, 200), (Some(1), 30, 201)])?,
        &mut out,
    )?;
    op.on_watermark(15, &mut out)?;
    // A right row stays while ts + 3 >= watermark: 12 can still meet left rows from 15.
    op.process(
        JoinSideId::Left,
        batch(&[(Some(1), 15, 100), (Some(1), 14, 101)])?,
        &mut out,
    )?;
    assert_eq!(rows(&out), vec![some(&[1, 15, 100, 12, 200, 15])]);
    assert_eq!(out.late_rows(), 1);
    let late = &out.late[0];
    assert_eq!(late.column(0).as_string::<i32>().value(0), "l");
    assert!(
        late.column(2)
            .as_string::<i32>()
            .value(0)
            .contains("\"v\":101")
    );
    op.on_watermark(i64::MAX, &mut out)?;
    assert_eq!(op.buffered_rows(), (0, 0));
    Ok(())
}

#[test]
fn tumbling_window_join_inner_left_and_full_outer() -> Result<()> {
    let window = JoinTime::Window(WindowSpec::Tumbling {
        size: 10,
        offset: 0,
    });
    let left = batch(&[
        (Some(1), 3, 100),
        (Some(1), 7, 101),
        (Some(2), 5, 102),
        (None, 6, 103),
        (Some(3), 12, 104),
    ])?;
    let right = batch(&[
        (Some(1), 9, 200),
        (Some(1), 11, 201),
        (Some(2), 5, 202),
        (Some(2), 8, 203),
    ])?;
    // (key, window_start, l.ts, l.v, r.ts, r.v, ts = window end - 1)
    let inner_first = vec![
        some(&[1, 0, 3, 100, 9, 200, 9]),
        some(&[1, 0, 7, 101, 9, 200, 9]),
        some(&[2, 0, 5, 102, 5, 202, 9]),
        some(&[2, 0, 5, 102, 8, 203, 9]),
    ];
    for kind in [JoinKind::Inner, JoinKind::Left, JoinKind::Full] {
        let mut op = join(window, kind)?;
        let mut out = Emitted::default();
        op.process(JoinSideId::Left, left.clone(), &mut out)?;
        op.process(JoinSideId::Right, right.clone(), &mut out)?;
        op.on_watermark(9, &mut out)?;
        assert!(out.batches.is_empty(), "[0, 10) is still open at 9");
        op.on_watermark(10, &mut out)?;
        let mut want = inner_first.clone();
        if kind != JoinKind::Inner {
            // Every right row of [0, 10) matched: a full join adds nothing there.
            want.push(vec![None, Some(0), Some(6), Some(103), None, None, Some(9)]);
        }
        assert_eq!(rows(&out), want, "{kind:?}");
        // Every window containing ts 4 has closed: late. ts 10 is on time.
        let mut more = Emitted::default();
        op.process(JoinSideId::Left, batch(&[(Some(1), 4, 105)])?, &mut more)?;
        assert_eq!(more.late_rows(), 1);
        op.on_watermark(i64::MAX, &mut more)?;
        let left_alone = vec![Some(3), Some(10), Some(12), Some(104), None, None, Some(19)];
        // Key 1's right row at 11 meets no left row of [10, 20): its key from its own side.
        let right_alone = vec![Some(1), Some(10), None, None, Some(11), Some(201), Some(19)];
        let want: Vec<Vec<Option<i64>>> = match kind {
            JoinKind::Inner => vec![],
            JoinKind::Left => vec![left_alone],
            JoinKind::Full => vec![left_alone, right_alone],
        };
        assert_eq!(rows(&more), want, "{kind:?}");
        assert_eq!(op.buffered_rows(), (0, 0));
    }
    Ok(())
}

#[test]
fn hopping_window_join_pairs_once_per_shared_window() -> Result<()> {
    let window = JoinTime::Window(WindowSpec::Hopping {
        size: 10,
        slide: 5,
        offset: 0,
    });
    let mut op = join(window, JoinKind::Inner)?;
    let mut out = Emitted::default();
    op.process(JoinSideId::Left, batch(&[(Some(1), 7, 100)])?, &mut out)?;
    op.process(
        JoinSideId::Right,
        batch(&[(Some(1), 9, 200), (Some(1), 12, 201)])?,
        &mut out,
    )?;
    op.on_watermark(i64::MAX, &mut out)?;
    // 7 and 9 share [0, 10) and [5, 15); 7 and 12 share [5, 15).
    assert_eq!(
        rows(&out),
        vec![
            some(&[1, 0, 7, 100, 9, 200, 9]),
            some(&[1, 5, 7, 100, 9, 200, 14]),
            some(&[1, 5, 7, 100, 12, 201, 14]),
        ]
    );
    Ok(())
}

/// Issue 12: windows closing in one watermark step came out interleaved in left-arrival
/// order; they are grouped by window end, as window aggregation emits them, and keep left
/// arrival order within a window.
#[test]
fn windows_closing_together_come_out_grouped_by_window() -> Result<()> {
    let window = JoinTime::Window(WindowSpec::Tumbling {
        size: 10,
        offset: 0,
    });
    let mut op = join(window, JoinKind::Inner)?;
    let mut out = Emitted::default();
    let left = batch(&[
        (Some(1), 15, 100),
        (Some(1), 3, 101),
        (Some(2), 12, 102),
        (Some(2), 5, 103),
    ])?;
    op.process(JoinSideId::Left, left, &mut out)?;
    let right = batch(&[
        (Some(1), 17, 200),
        (Some(1), 1, 201),
        (Some(2), 9, 202),
        (Some(2), 11, 203),
    ])?;
    op.process(JoinSideId::Right, right, &mut out)?;
    op.on_watermark(30, &mut out)?;
    assert_eq!(
        rows(&out),
        vec![
            some(&[1, 0, 3, 101, 1, 201, 9]),
            some(&[2, 0, 5, 103, 9, 202, 9]),
            some(&[1, 10, 15, 100, 17, 200, 19]),
            some(&[2, 10, 12, 102, 11, 203, 19]),
        ]
    );
    Ok(())
}

#[test]
fn restored_join_continues_like_an_uninterrupted_one() -> Result<()> {
    let cases = [
        (JoinTime::Interval { lower: 5, upper: 5 }, JoinKind::Inner),
        (
            JoinTime::Window(WindowSpec::Hopping {
                size: 20,
                slide: 10,
                offset: 0,
            }),
            JoinKind::Left,
        ),
        (
            JoinTime::Window(WindowSpec::Tumbling {
                size: 10,
                offset: 0,
            }),
            JoinKind::Full,
        ),
    ];
    let steps: Vec<(JoinSideId, Vec<Row>, i64)> = vec![
        (
            JoinSideId::Left,
            vec![(Some(1), 3, 1), (Some(2), 4, 2), (None, 5, 3)],
            0,
        ),
        (
            JoinSideId::Right,
            vec![(Some(1), 6, 4), (Some(2), 9, 5), (None, 7, 13)],
            2,
        ),
        (
            JoinSideId::Left,
            vec![(Some(1), 12, 6), (Some(1), 14, 7)],
            8,
        ),
        (
            JoinSideId::Right,
            vec![(Some(1), 13, 8), (Some(1), 25, 9), (Some(2), 3, 10)],
            20,
        ),
        (
            JoinSideId::Left,
            vec![(Some(1), 24, 11), (Some(2), 30, 12)],
            26,
        ),
    ];
    for (time, kind) in cases {
        let run = |cut: Option<usize>| -> Result<(Vec<Vec<Option<i64>>>, usize)> {
            let mut op = join(time, kind)?;
            let mut out = Emitted::default();
            for (i, (side, rows, watermark)) in steps.iter().enumerate() {
                if cut == Some(i) {
                    let saved = op.snapshot()?;
                    op = join(time, kind)?;
                    op.restore(&saved)?;
                }
                op.process(*side, batch(rows)?, &mut out)?;
                op.on_watermark(*watermark, &mut out)?;
            }
            op.on_watermark(i64::MAX, &mut out)?;
            Ok((rows(&out), out.late_rows()))
        };
        let whole = run(None)?;
        assert!(!whole.0.is_empty());
        for cut in 0..steps.len() {
            assert_eq!(
                run(Some(cut))?,
                whole,
                "{time:?} restored before step {cut}"
            );
        }
    }
    Ok(())
}

#[test]
fn rejects_bad_settings_naming_them() {
    let err = |time, kind| {
        join(time, kind)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(err(JoinTime::Interval { lower: 1, upper: 1 }, JoinKind::Left).contains("join.kind"));
    assert!(err(JoinTime::Interval { lower: 1, upper: 1 }, JoinKind::Full).contains("join.kind"));
    assert!(
        err(
            JoinTime::Interval {
                lower: -5,
                upper: 1
            },
            JoinKind::Inner
        )
        .contains("join.lower")
    );
    assert!(
        err(
            JoinTime::Window(WindowSpec::Session { gap: 5 }),
            JoinKind::Inner
        )
        .contains("join.window")
    );
}

#[test]
fn a_restore_into_a_changed_join_is_refused_saying_what_differs() -> Result<()> {
    let mut op = join(JoinTime::Interval { lower: 5, upper: 5 }, JoinKind::Inner)?;
    let mut out = Emitted::default();
    op.process(JoinSideId::Left, batch(&[(Some(1), 3, 1)])?, &mut out)?;
    let saved = op.snapshot()?;
    let mut changed = join(JoinTime::Interval { lower: 5, upper: 9 }, JoinKind::Inner)?;
    let message = changed
        .restore(&saved)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("the saved join had condition Interval { lower: 5, upper: 5 }"),
        "{message}"
    );
    let mut window = join(
        JoinTime::Window(WindowSpec::Tumbling {
            size: 10,
            offset: 0,
        }),
        JoinKind::Inner,
    )?;
    assert!(window.restore(&saved).is_err());
    // The same join takes the state, on a fresh operator.
    let mut same = join(JoinTime::Interval { lower: 5, upper: 5 }, JoinKind::Inner)?;
    same.restore(&saved)?;
    assert_eq!(same.buffered_rows(), (1, 0));
    Ok(())
}

#[test]
fn several_key_columns_of_other_integer_widths_match_pairwise() -> Result<()> {
    use arrow::array::{Int32Array, StringArray};
    let left_schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
        Field::new("ts", event_time_type(), false),
    ]));
    let right_schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Int64, true),
        Field::new("y", DataType::Utf8, true),
        Field::new("ts", event_time_type(), false),
    ]));
    let ts = |v: Vec<i64>| Arc::new(TimestampMillisecondArray::from(v).with_timezone("UTC"));
    let left = RecordBatch::try_new(
        left_schema.clone(),
        vec![
            Arc::new(Int32Array::from(vec![Some(1), Some(1), Some(2)])),
            Arc::new(StringArray::from(vec![Some("p"), Some("q"), Some("p")])),
            ts(vec![10, 10, 10]),
        ],
    )
    .map_err(Error::arrow("left"))?;
    let right = RecordBatch::try_new(
        right_schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![Some(1), Some(1), Some(2), None])),
            Arc::new(StringArray::from(vec![
                Some("p"),
                Some("q"),
                Some("q"),
                Some("p"),
            ])),
            ts(vec![11, 12, 10, 10]),
        ],
    )
    .map_err(Error::arrow("right"))?;
    let spec = StreamJoinSpec {
        left: "l".into(),
        right: "r".into(),
        on: vec!["a".into(), "b".into()],
        right_on: vec!["x".into(), "y".into()],
        kind: JoinKind::Inner,
        time: JoinTime::Interval { lower: 5, upper: 5 },
    };
    let backend: Arc<dyn Backend> = Arc::new(CpuBackend::new());
    let input = |name: &str, schema: &SchemaRef| JoinInput {
        name: name.into(),
        schema: schema.clone(),
        time_column: "ts".into(),
    };
    let mut op = StreamJoinOperator::try_new(
        &spec,
        input("l", &left_schema),
        input("r", &right_schema),
        &backend,
        "join",
    )?;
    let names: Vec<String> = op
        .output_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["a", "b", "l.ts", "r.ts", "ts"]);
    let mut out = Emitted::default();
    op.process(JoinSideId::Left, left, &mut out)?;
    op.process(JoinSideId::Right, right, &mut out)?;
    // (1, p) meets (1, p) at 11 and (1, q) meets (1, q) at 12; (2, p) has no partner, and a
    // null key matches nothing.
    let joined = &out.batches[0];
    let a = joined
        .column(0)
        .as_primitive::<arrow::datatypes::Int32Type>();
    let b = joined.column(1).as_string::<i32>();
    let r_ts = joined.column(3).as_primitive::<TimestampMillisecondType>();
    let got: Vec<(i32, String, i64)> = (0..joined.num_rows())
        .map(|i| (a.value(i), b.value(i).to_string(), r_ts.value(i)))
        .collect();
    assert_eq!(got, vec![(1, "p".into(), 11), (1, "q".into(), 12)]);
    Ok(())
}
