//! Window Top-N over raw rows: hand-checked hopping windows with ties and late rows, the
//! drops to `limit` rows against ranking every row by hand, and restore from a checkpoint.

use std::collections::BTreeMap;

use arrow::array::{Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{Int64Type, TimeUnit};

use super::*;
use crate::operator::TopNOrder;

fn input() -> SchemaRef {
    let time = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("ts", time, false),
        Field::new("shop", DataType::Utf8, false),
        Field::new("amount", DataType::Int64, true),
    ]))
}

fn batch(rows: &[(i64, &str, Option<i64>)]) -> RecordBatch {
    RecordBatch::try_new(
        input(),
        vec![
            Arc::new(
                TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.0))
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(rows.iter().map(|r| r.2).collect::<Int64Array>()),
        ],
    )
    .expect("test batch")
}

fn spec(window: WindowSpec, partition_by: &[&str], limit: usize) -> WindowTopNSpec {
    WindowTopNSpec {
        partition_by: partition_by.iter().map(|s| s.to_string()).collect(),
        order_by: vec![TopNOrder {
            column: "amount".into(),
            descending: true,
            nulls_first: false,
        }],
        limit: Some(limit),
        rownum: Some("rownum".into()),
        window: Some(window),
    }
}

/// (window start, window end, rownum, shop, amount) per output row.
type Ranked = (i64, i64, i64, String, Option<i64>);

fn ranked(out: &Emitted) -> Vec<Ranked> {
    let mut rows = Vec::new();
    for batch in &out.batches {
        let column = |name: &str| {
            batch
                .column(batch.schema().index_of(name).expect(name))
                .clone()
        };
        let (shops, amounts) = (column("shop"), column("amount"));
        let (starts, ends, numbers) = (
            column("window_start"),
            column("window_end"),
            column("rownum"),
        );
        let amounts = amounts.as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            rows.push((
                starts.as_primitive::<TimestampMillisecondType>().value(row),
                ends.as_primitive::<TimestampMillisecondType>().value(row),
                numbers.as_primitive::<Int64Type>().value(row),
                shops.as_string::<i32>().value(row).to_string(),
                amounts.is_valid(row).then(|| amounts.value(row)),
            ));
        }
    }
    rows
}

#[test]
fn ranks_raw_rows_in_every_hopping_window_that_holds_them() -> Result<()> {
    let window = WindowSpec::Hopping {
        size: 20,
        slide: 10,
        offset: 0,
    };
    let mut op = WindowTopNOperator::try_new(&spec(window, &[], 2), input(), "ts", "operators[0]")?;
    let mut out = Emitted::default();
    op.process(
        batch(&[
            (3, "a", Some(5)),
            (12, "b", Some(9)),
            (15, "c", Some(7)),
            (18, "d", Some(7)),
        ]),
        &mut out,
    )?;
    op.on_watermark(10, &mut out)?;
    // 5 is still in [0, 20); [-10, 10) has closed.
    op.process(batch(&[(5, "e", Some(100)), (6, "n", None)]), &mut out)?;
    op.on_watermark(20, &mut out)?;
    // Both windows of 9 have closed: late.
    op.process(batch(&[(9, "g", Some(50)), (25, "h", Some(3))]), &mut out)?;
    op.on_watermark(30, &mut out)?;
    op.on_watermark(40, &mut out)?;
    let row = |start, rownum, shop: &str, amount| {
        (start, start + 20, rownum, shop.to_string(), Some(amount))
    };
    assert_eq!(
        ranked(&out),
        vec![
            row(-10, 1, "a", 5),
            row(0, 1, "e", 100),
            row(0, 2, "b", 9),
            row(10, 1, "b", 9),
            // c and d tie on 7: c came first.
            row(10, 2, "c", 7),
            row(20, 1, "h", 3),
        ]
    );
    assert_eq!(out.late_rows(), 1);
    let late = &out.late[0];
    assert_eq!(late.schema(), input(), "late rows are input rows");
    assert_eq!(late.column(1).as_string::<i32>().value(0), "g");
    assert_eq!(op.held_rows(), 0);
    Ok(())
}

/// A deterministic stream: (time, shop, amount) with ties, nulls and disorder.
fn stream(rows: usize) -> Vec<(i64, &'static str, Option<i64>)> {
    let shops = ["a", "b", "c", "d", "e"];
    let mut state = 17u64;
    (0..rows)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = state >> 33;
            let ts = i as i64 / 4 - (r % 40) as i64;
            let amount = (!r.is_multiple_of(23)).then_some(((r >> 8) % 200) as i64);
            (ts, shops[(r >> 16) as usize % shops.len()], amount)
        })
        .collect()
}

/// Per (window start, shop), the first `limit` rows by amount descending, nulls last, ties in
/// arrival order: ranked by hand from every row, skipping rows behind `watermarks` as the
/// operator must.
fn by_hand(
    rows: &[(i64, &'static str, Option<i64>)],
    size: i64,
    limit: usize,
    chunk: usize,
    lag: i64,
) -> Vec<Ranked> {
    // (window start, shop) -> (arrival, amount) of its rows.
    type Held = BTreeMap<(i64, String), Vec<(usize, Option<i64>)>>;
    let mut windows = Held::new();
    let mut watermark = i64::MIN;
    for (c, part) in rows.chunks(chunk).enumerate() {
        for (i, &(ts, shop, amount)) in part.iter().enumerate() {
            let start = ts.div_euclid(size) * size;
            if start + size > watermark {
                windows
                    .entry((start, shop.to_string()))
                    .or_default()
                    .push((c * chunk + i, amount));
            }
        }
        watermark = watermark.max(part.iter().map(|r| r.0).max().unwrap_or(i64::MIN) - lag);
    }
    let mut out = Vec::new();
    for ((start, shop), mut held) in windows {
        held.sort_by(|x, y| match (x.1, y.1) {
            (Some(a), Some(b)) => b.cmp(&a).then(x.0.cmp(&y.0)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => x.0.cmp(&y.0),
        });
        for (n, (_, amount)) in held.into_iter().take(limit).enumerate() {
            out.push((start, start + size, n as i64 + 1, shop.clone(), amount));
        }
    }
    out.sort();
    out
}

/// Feeds `rows` in chunks, the watermark `lag` behind the newest time after each; snapshots
/// and restores into a fresh operator after chunk `restart_after` when given.
fn run(
    rows: &[(i64, &'static str, Option<i64>)],
    top: &WindowTopNSpec,
    chunk: usize,
    lag: i64,
    restart_after: Option<usize>,
) -> Result<(Vec<Ranked>, usize)> {
    let mut op = WindowTopNOperator::try_new(top, input(), "ts", "operators[0]")?;
    let mut out = Emitted::default();
    let mut most_held = 0;
    let mut watermark = i64::MIN;
    for (c, part) in rows.chunks(chunk).enumerate() {
        op.process(batch(part), &mut out)?;
        most_held = most_held.max(op.held_rows());
        watermark = watermark.max(part.iter().map(|r| r.0).max().unwrap_or(i64::MIN) - lag);
        op.on_watermark(watermark, &mut out)?;
        if restart_after == Some(c) {
            let state = op.snapshot()?.expect("raw rows keep state");
            op = WindowTopNOperator::try_new(top, input(), "ts", "operators[0]")?;
            op.restore(&state)?;
        }
    }
    op.on_watermark(i64::MAX, &mut out)?;
    let mut got = ranked(&out);
    got.sort();
    Ok((got, most_held))
}

#[test]
fn dropping_held_rows_to_the_limit_changes_no_answer() -> Result<()> {
    let rows = stream(120_000);
    // Two windows of 80 000 rows each (4 rows per ms), and the start of a third.
    let size = 20_000;
    let tumbling = WindowSpec::Tumbling { size, offset: 0 };
    let top = spec(tumbling, &["shop"], 3);
    let (got, most_held) = run(&rows, &top, 1_000, 30, None)?;
    let want = by_hand(&rows, size, 3, 1_000, 30);
    assert_eq!(
        want.len(),
        3 * 5 * 3,
        "three windows, five shops, three rows each"
    );
    assert_eq!(got, want);
    // Drops keep the rows held near `limit` per partition, not a window's 80 000.
    assert!(most_held < 2 * PRUNE_ROWS + 1_000, "held {most_held}");
    Ok(())
}

#[test]
fn restoring_a_checkpoint_equals_the_uninterrupted_run() -> Result<()> {
    let rows = stream(30_000);
    let tumbling = WindowSpec::Tumbling {
        size: 700,
        offset: 0,
    };
    let top = spec(tumbling, &["shop"], 2);
    let (whole, _) = run(&rows, &top, 900, 25, None)?;
    for restart in [0, 7, 20] {
        let (restored, _) = run(&rows, &top, 900, 25, Some(restart))?;
        assert_eq!(restored, whole, "restarted after chunk {restart}");
    }
    // A checkpoint of another ranking is refused, naming both.
    let mut op = WindowTopNOperator::try_new(&top, input(), "ts", "operators[0]")?;
    op.process(batch(&rows[..100]), &mut Emitted::default())?;
    let state = op.snapshot()?.expect("raw rows keep state");
    let mut other =
        WindowTopNOperator::try_new(&spec(tumbling, &["shop"], 5), input(), "ts", "operators[0]")?;
    let err = other.restore(&state).expect_err("limit changed");
    assert!(
        err.to_string().contains("limit 2") && err.to_string().contains("limit 5"),
        "{err}"
    );
    Ok(())
}

#[test]
fn raw_rows_refuse_sessions_and_window_columns_of_their_own() {
    let session = spec(WindowSpec::Session { gap: 10 }, &[], 1);
    let err =
        WindowTopNOperator::try_new(&session, input(), "ts", "operators[2]").expect_err("sessions");
    assert!(err.to_string().contains("operators[2].window"), "{err}");
    let tumbling = spec(
        WindowSpec::Tumbling {
            size: 10,
            offset: 0,
        },
        &[],
        1,
    );
    let err = WindowTopNOperator::try_new(&tumbling, input(), "at", "operators[2]")
        .expect_err("no such time column");
    assert!(err.to_string().contains("`at`"), "{err}");
    let windowed = Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("window_start", DataType::Int64, false),
        Field::new("amount", DataType::Int64, true),
    ]));
    let err = WindowTopNOperator::try_new(&tumbling, windowed, "ts", "operators[2]")
        .expect_err("window_start clash");
    assert!(err.to_string().contains("`window_start`"), "{err}");
}
