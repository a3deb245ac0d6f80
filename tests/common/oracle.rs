//! The independent answer: the same windowed aggregation computed as a polars batch query.
//!
//! Windows are assigned with polars expressions (tumbling and hopping by arithmetic on `ts`,
//! sessions by sorting and a running count of gaps), then grouped and aggregated by polars.
//! Nothing here calls the engine.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType};
use polars::prelude::DataType as PlType;
use polars::prelude::*;
use sluice_engine::window::WindowSpec;

use super::{Events, KeyKind};

/// How a null key is written in a [`Table`].
const NULL_KEY: &str = "<null>";

/// One aggregate value, as either side computed it.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    Int(Option<i64>),
    Float(Option<f64>),
}

/// (key text, window start) → (window end, aggregates in `all_aggregates` order).
pub type Table = BTreeMap<(String, i64), (i64, Vec<Value>)>;

fn frame(events: &Events, kind: KeyKind, rows: &[usize]) -> DataFrame {
    let mut columns = vec![Column::new(
        "ts".into(),
        rows.iter().map(|&r| events.ts[r]).collect::<Vec<i64>>(),
    )];
    match kind {
        KeyKind::Int => columns.push(Column::new(
            "k".into(),
            rows.iter().map(|&r| events.key[r]).collect::<Vec<i64>>(),
        )),
        KeyKind::Str => columns.push(Column::new(
            "k".into(),
            rows.iter()
                .map(|&r| super::string_key(events.key[r]))
                .collect::<Vec<Option<String>>>(),
        )),
        KeyKind::Multi => {
            columns.push(Column::new(
                "k".into(),
                rows.iter()
                    .map(|&r| events.key[r] % 50)
                    .collect::<Vec<i64>>(),
            ));
            columns.push(Column::new(
                "region".into(),
                rows.iter()
                    .map(|&r| events.region[r].clone())
                    .collect::<Vec<String>>(),
            ));
        }
    }
    columns.push(Column::new(
        "v_int".into(),
        rows.iter()
            .map(|&r| events.v_int[r])
            .collect::<Vec<Option<i64>>>(),
    ));
    columns.push(Column::new(
        "v_float".into(),
        rows.iter()
            .map(|&r| events.v_float[r])
            .collect::<Vec<Option<f64>>>(),
    ));
    DataFrame::new(rows.len(), columns).expect("polars frame")
}

fn keys(kind: KeyKind) -> Vec<Expr> {
    match kind {
        KeyKind::Multi => vec![col("k"), col("region")],
        _ => vec![col("k")],
    }
}

/// Rows with a `ws` (window start) column: one row per (event, window containing it).
fn assign_windows(lf: LazyFrame, kind: KeyKind, window: WindowSpec) -> LazyFrame {
    match window {
        WindowSpec::Tumbling { size, offset } => {
            lf.with_column((col("ts") - ((col("ts") - lit(offset)) % lit(size))).alias("ws"))
        }
        WindowSpec::Hopping {
            size,
            slide,
            offset,
        } => {
            let last = col("ts") - ((col("ts") - lit(offset)) % lit(slide));
            let copies = (size + slide - 1) / slide;
            let frames: Vec<LazyFrame> = (0..copies)
                .map(|k| {
                    lf.clone()
                        .with_column((last.clone() - lit(k * slide)).alias("ws"))
                        .filter((col("ws") + lit(size)).gt(col("ts")))
                })
                .collect();
            concat(frames, UnionArgs::default()).expect("concat")
        }
        WindowSpec::Session { gap } => {
            let mut by: Vec<PlSmallStr> = match kind {
                KeyKind::Multi => vec!["k".into(), "region".into()],
                _ => vec!["k".into()],
            };
            by.push("ts".into());
            let mut new_session = (col("ts") - col("ts").shift(lit(1))).gt(lit(gap));
            for key in keys(kind) {
                new_session = new_session.or(key.clone().neq_missing(key.shift(lit(1))));
            }
            lf.sort(by, SortMultipleOptions::default()).with_column(
                new_session
                    .fill_null(lit(true))
                    .cast(PlType::Int64)
                    .cum_sum(false)
                    .alias("session"),
            )
        }
        WindowSpec::Cumulate { .. } => panic!("cumulating windows have their own oracle"),
    }
}

/// The expected output for `rows` of `events` (all of them, usually).
pub fn expected(events: &Events, kind: KeyKind, window: WindowSpec, rows: &[usize]) -> Table {
    let lf = assign_windows(frame(events, kind, rows).lazy(), kind, window);
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
        aggs.push(
            col(c)
                .drop_nulls()
                .n_unique()
                .cast(PlType::Int64)
                .alias(format!("count_distinct_{c}")),
        );
    }
    let (group, lf) = match window {
        WindowSpec::Session { gap } => {
            aggs.push(col("ts").min().alias("ws"));
            aggs.push((col("ts").max() + lit(gap)).alias("we"));
            let mut g = keys(kind);
            g.push(col("session"));
            (g, lf)
        }
        _ => {
            let size = window.size().expect("aligned");
            let mut g = keys(kind);
            g.push(col("ws"));
            (g, lf.with_column((col("ws") + lit(size)).alias("we")))
        }
    };
    if !matches!(window, WindowSpec::Session { .. }) {
        aggs.push(col("we").first().alias("we"));
    }
    let df = lf
        .group_by(group)
        .agg(aggs)
        .collect()
        .expect("polars query");
    let mut table = Table::new();
    for row in 0..df.height() {
        let key = match kind {
            KeyKind::Int => df
                .column("k")
                .expect("k")
                .i64()
                .expect("i64")
                .get(row)
                .expect("key")
                .to_string(),
            KeyKind::Str => df
                .column("k")
                .expect("k")
                .str()
                .expect("str")
                .get(row)
                .unwrap_or(NULL_KEY)
                .to_string(),
            KeyKind::Multi => format!(
                "{}|{}",
                df.column("k")
                    .expect("k")
                    .i64()
                    .expect("i64")
                    .get(row)
                    .expect("key"),
                df.column("region")
                    .expect("region")
                    .str()
                    .expect("str")
                    .get(row)
                    .expect("key")
            ),
        };
        let int = |name: &str| df.column(name).expect(name).i64().expect("i64").get(row);
        let float = |name: &str| df.column(name).expect(name).f64().expect("f64").get(row);
        let mut values = vec![Value::Int(int("n"))];
        for (c, is_int) in [("v_int", true), ("v_float", false)] {
            let count = int(&format!("count_{c}"));
            values.push(Value::Int(count));
            // polars sums an all-null group to 0; SQL (and sluice) say null.
            let nonempty = count.unwrap_or(0) > 0;
            for f in ["sum", "min", "max"] {
                let name = format!("{f}_{c}");
                values.push(if is_int {
                    Value::Int(int(&name).filter(|_| nonempty))
                } else {
                    Value::Float(float(&name).filter(|_| nonempty))
                });
            }
            values.push(Value::Float(float(&format!("avg_{c}"))));
            values.push(Value::Int(int(&format!("count_distinct_{c}"))));
        }
        let ws = int("ws").expect("ws");
        table.insert((key, ws), (int("we").expect("we"), values));
    }
    table
}

/// The engine's output in the same shape as [`expected`].
pub fn actual(output: &RecordBatch, kind: KeyKind) -> Table {
    let schema = output.schema();
    let column = |name: &str| output.column(schema.index_of(name).expect(name)).clone();
    let mut table = Table::new();
    let key_text = |row: usize| -> String {
        let k = column("k");
        let first = match k.data_type() {
            DataType::Utf8 if k.is_null(row) => NULL_KEY.to_string(),
            DataType::Utf8 => k.as_string::<i32>().value(row).to_string(),
            _ => k.as_primitive::<Int64Type>().value(row).to_string(),
        };
        match kind {
            KeyKind::Multi => format!("{first}|{}", column("region").as_string::<i32>().value(row)),
            _ => first,
        }
    };
    let names: Vec<String> = super::all_aggregates()
        .iter()
        .map(|a| a.alias.clone())
        .collect();
    for row in 0..output.num_rows() {
        let ws = column("window_start")
            .as_primitive::<TimestampMillisecondType>()
            .value(row);
        let we = column("window_end")
            .as_primitive::<TimestampMillisecondType>()
            .value(row);
        let values = names
            .iter()
            .map(|name| {
                let c = column(name);
                let valid = c.is_valid(row);
                match c.data_type() {
                    DataType::Float64 => {
                        Value::Float(valid.then(|| c.as_primitive::<Float64Type>().value(row)))
                    }
                    _ => Value::Int(valid.then(|| c.as_primitive::<Int64Type>().value(row))),
                }
            })
            .collect();
        let previous = table.insert((key_text(row), ws), (we, values));
        assert!(
            previous.is_none(),
            "window ({}, {ws}) emitted twice",
            key_text(row)
        );
    }
    table
}

/// Asserts two tables are equal: integers exactly, floats within 1e-9 relative.
pub fn assert_same(actual: &Table, expected: &Table, context: &str) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{context}: number of (key, window) rows"
    );
    let names: Vec<String> = super::all_aggregates()
        .iter()
        .map(|a| a.alias.clone())
        .collect();
    for ((key, ws), (we, want)) in expected {
        let (got_we, got) = actual
            .get(&(key.clone(), *ws))
            .unwrap_or_else(|| panic!("{context}: missing window ({key}, {ws})"));
        assert_eq!(got_we, we, "{context}: window_end of ({key}, {ws})");
        for ((g, w), name) in got.iter().zip(want).zip(&names) {
            match (g, w) {
                (Value::Int(g), Value::Int(w)) => {
                    assert_eq!(g, w, "{context}: {name} of ({key}, {ws})")
                }
                (Value::Float(Some(g)), Value::Float(Some(w))) => {
                    let tolerance = 1e-9 * w.abs().max(1e-300);
                    assert!(
                        (g - w).abs() <= tolerance,
                        "{context}: {name} of ({key}, {ws}): {g} vs {w}"
                    );
                }
                (Value::Float(g), Value::Float(w)) => {
                    assert_eq!(g, w, "{context}: {name} of ({key}, {ws})")
                }
                (g, w) => {
                    panic!("{context}: {name} of ({key}, {ws}): types differ: {g:?} vs {w:?}")
                }
            }
        }
    }
}
