//! The independent answer for OVER aggregations: polars' rolling computations over the same
//! rows. RANGE frames are a rolling group-by on the event time (`[t - preceding, t]`, closed
//! on both ends, so ties share a window); ROWS frames are fixed-length rolling windows over
//! each key's rows in (time, arrival) order. Nothing here calls the engine.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType};
use polars::prelude::DataType as PlType;
use polars::prelude::*;
use polars_time::{ClosedWindow, Duration};
use sluice_engine::frame::OverFrame;

use super::{Events, KeyKind};

/// One output row as text and numbers: key, time, (for ROWS) the row's own values, then
/// `n, count_v_int, sum_v_int, min_v_int, max_v_int, avg_v_int` and the same for `v_float`.
pub type OverRow = (String, i64, String, Vec<Option<f64>>);

/// The aggregate columns every OVER oracle case computes, in order.
pub const AGGREGATES: [&str; 11] = [
    "n",
    "count_v_int",
    "sum_v_int",
    "min_v_int",
    "max_v_int",
    "avg_v_int",
    "count_v_float",
    "sum_v_float",
    "min_v_float",
    "max_v_float",
    "avg_v_float",
];

fn key_columns(kind: KeyKind) -> Vec<&'static str> {
    match kind {
        KeyKind::Multi => vec!["k", "region"],
        _ => vec!["k"],
    }
}

/// `rows` of `events` (in arrival order) as a polars frame with an `arrival` index.
fn frame(events: &Events, kind: KeyKind, rows: &[usize]) -> DataFrame {
    let batch = events.to_batch(kind, rows);
    let mut columns = vec![Column::new(
        "arrival".into(),
        (0..rows.len() as i64).collect::<Vec<i64>>(),
    )];
    for field in batch.schema().fields() {
        let array = batch.column_by_name(field.name()).expect("column");
        let name = field.name().as_str().into();
        columns.push(match array.data_type() {
            DataType::Timestamp(..) => Column::new(
                name,
                array
                    .as_primitive::<TimestampMillisecondType>()
                    .values()
                    .to_vec(),
            ),
            DataType::Int64 => Column::new(
                name,
                array.as_primitive::<Int64Type>().iter().collect::<Vec<_>>(),
            ),
            DataType::Float64 => Column::new(
                name,
                array
                    .as_primitive::<Float64Type>()
                    .iter()
                    .collect::<Vec<_>>(),
            ),
            _ => Column::new(
                name,
                array
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.map(str::to_string))
                    .collect::<Vec<Option<String>>>(),
            ),
        });
    }
    DataFrame::new(rows.len(), columns).expect("polars frame")
}

/// The expected OVER output for `rows` of `events` with every aggregate over `frame`,
/// partitioned by the key columns.
pub fn expected(
    events: &Events,
    kind: KeyKind,
    frame_spec: OverFrame,
    rows: &[usize],
) -> Vec<OverRow> {
    let keys: Vec<Expr> = key_columns(kind).into_iter().map(col).collect();
    // Stable: ties keep their arrival order, which ROWS frames depend on.
    let sorted = frame(events, kind, rows)
        .lazy()
        .sort(["ts", "arrival"], SortMultipleOptions::default());
    let count = |e: Expr| e.is_not_null().cast(PlType::Int64);
    // An unbounded frame is a bounded one longer than every key's rows: polars' rolling
    // computations have no unbounded form.
    let bounded = match frame_spec {
        OverFrame::RangeUnbounded => OverFrame::Range { preceding: 1 << 50 },
        OverFrame::RowsUnbounded => OverFrame::Rows {
            preceding: rows.len() as u64,
        },
        other => other,
    };
    let df = match bounded {
        OverFrame::Range { preceding } => {
            let mut aggs = vec![len().cast(PlType::Int64).alias("n")];
            for c in ["v_int", "v_float"] {
                aggs.push(
                    col(c)
                        .count()
                        .cast(PlType::Int64)
                        .alias(format!("count_{c}")),
                );
                aggs.push(col(c).sum().alias(format!("sum_{c}")));
                aggs.push(col(c).min().alias(format!("min_{c}")));
                aggs.push(col(c).max().alias(format!("max_{c}")));
                aggs.push(col(c).mean().alias(format!("avg_{c}")));
            }
            let period = Duration::parse(&format!("{preceding}i"));
            let offset = Duration::parse(&format!("-{preceding}i"));
            sorted
                .rolling(
                    col("ts"),
                    keys,
                    RollingGroupOptions {
                        index_column: "ts".into(),
                        period,
                        offset,
                        closed_window: ClosedWindow::Both,
                    },
                )
                .agg(aggs)
        }
        OverFrame::RangeUnbounded | OverFrame::RowsUnbounded => {
            unreachable!("unbounded frames were given a bound above")
        }
        OverFrame::Rows { preceding } => {
            let window = RollingOptionsFixedWindow {
                window_size: preceding as usize + 1,
                min_periods: 1,
                ..Default::default()
            };
            let over = |e: Expr| e.over(keys.clone()).expect("over");
            let mut columns = vec![over(count(col("ts")).rolling_sum(window.clone())).alias("n")];
            for c in ["v_int", "v_float"] {
                columns.push(
                    over(count(col(c)).rolling_sum(window.clone())).alias(format!("count_{c}")),
                );
                columns.push(over(col(c).rolling_sum(window.clone())).alias(format!("sum_{c}")));
                columns.push(over(col(c).rolling_min(window.clone())).alias(format!("min_{c}")));
                columns.push(over(col(c).rolling_max(window.clone())).alias(format!("max_{c}")));
                columns.push(over(col(c).rolling_mean(window.clone())).alias(format!("avg_{c}")));
            }
            sorted.with_columns(columns)
        }
    }
    .collect()
    .expect("polars rolling query");
    let with_values = matches!(bounded, OverFrame::Rows { .. });
    let text = |name: &str, row: usize| -> String {
        let column = df.column(name).expect(name);
        match column.get(row).expect("cell") {
            AnyValue::Null => "<null>".to_string(),
            AnyValue::String(s) => s.to_string(),
            AnyValue::StringOwned(s) => s.to_string(),
            other => other.to_string(),
        }
    };
    let number = |name: &str, row: usize| -> Option<f64> {
        let column = df
            .column(name)
            .expect(name)
            .cast(&PlType::Float64)
            .expect("cast");
        column.f64().expect("f64").get(row)
    };
    (0..df.height())
        .map(|row| {
            let key = key_columns(kind)
                .iter()
                .map(|k| text(k, row))
                .collect::<Vec<_>>()
                .join("|");
            let ts = df
                .column("ts")
                .expect("ts")
                .i64()
                .expect("i64")
                .get(row)
                .expect("ts");
            let values = if with_values {
                format!("{}|{}", text("v_int", row), text("v_float", row))
            } else {
                String::new()
            };
            let mut aggregates: Vec<Option<f64>> =
                AGGREGATES.iter().map(|a| number(a, row)).collect();
            // polars sums an all-null window to 0; SQL (and sluice) say null.
            for (count, sum) in [(1, 2), (6, 7)] {
                if aggregates[count] == Some(0.0) {
                    aggregates[sum] = None;
                }
            }
            (key, ts, values, aggregates)
        })
        .collect()
}

/// The engine's OVER output in the shape of [`expected`] (`with_values` for ROWS frames).
pub fn actual(output: &RecordBatch, kind: KeyKind, with_values: bool) -> Vec<OverRow> {
    let column = |name: &str| {
        output
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let text = |name: &str, row: usize| -> String {
        let c = column(name);
        if c.is_null(row) {
            return "<null>".to_string();
        }
        match c.data_type() {
            DataType::Utf8 => c.as_string::<i32>().value(row).to_string(),
            // As polars writes a float: `702.0`.
            DataType::Float64 => format!("{:?}", c.as_primitive::<Float64Type>().value(row)),
            _ => c.as_primitive::<Int64Type>().value(row).to_string(),
        }
    };
    let number = |name: &str, row: usize| -> Option<f64> {
        let c = column(name);
        c.is_valid(row).then(|| match c.data_type() {
            DataType::Float64 => c.as_primitive::<Float64Type>().value(row),
            _ => c.as_primitive::<Int64Type>().value(row) as f64,
        })
    };
    let ts = column("ts").as_primitive::<TimestampMillisecondType>();
    (0..output.num_rows())
        .map(|row| {
            let key = key_columns(kind)
                .iter()
                .map(|k| text(k, row))
                .collect::<Vec<_>>()
                .join("|");
            let values = if with_values {
                format!("{}|{}", text("v_int", row), text("v_float", row))
            } else {
                String::new()
            };
            (
                key,
                ts.value(row),
                values,
                AGGREGATES.iter().map(|a| number(a, row)).collect(),
            )
        })
        .collect()
}

/// Asserts both sides hold the same rows (as multisets): counts and integers exactly, floats
/// within 1e-9 relative.
pub fn assert_same(mut actual: Vec<OverRow>, mut expected: Vec<OverRow>, context: &str) {
    let order = |a: &OverRow, b: &OverRow| {
        (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2)).then_with(|| {
            let key = |r: &OverRow| r.3.iter().map(|v| v.map(f64::to_bits)).collect::<Vec<_>>();
            key(a).cmp(&key(b))
        })
    };
    actual.sort_by(order);
    expected.sort_by(order);
    assert_eq!(actual.len(), expected.len(), "{context}: number of rows");
    for (got, want) in actual.iter().zip(&expected) {
        assert_eq!(
            (&got.0, got.1, &got.2),
            (&want.0, want.1, &want.2),
            "{context}: row identity"
        );
        for ((g, w), name) in got.3.iter().zip(&want.3).zip(AGGREGATES) {
            let same = match (g, w) {
                (Some(g), Some(w)) => (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                (None, None) => true,
                _ => false,
            };
            assert!(
                same,
                "{context}: {name} of {} at {}: {g:?} vs {w:?}",
                got.0, got.1
            );
        }
    }
}
