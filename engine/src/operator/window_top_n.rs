//! Window Top-N: the first rows of each window by an order, numbered (Flink's window Top-N,
//! `ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY ...) ... WHERE rownum <= N`).
//!
//! Its rows are either a window aggregation's, which all arrive when the watermark passes
//! their window's end, or a window function's raw rows ([`WindowTopNSpec::window`]), which the
//! operator puts into their windows itself and holds, in checkpoints, until the watermark
//! passes each window's end. Either way a window is ranked once, complete. While rows are
//! held, only the first `limit` of each window and partition can still be kept, so the rest
//! are dropped as rows arrive (memory: windows x partitions x `limit`). Rows with equal
//! order values are numbered in arrival order (the window operator makes it the same on every
//! backend), so numbering never depends on the backend. Output: per window and partition, at
//! most `limit` rows in rank order, with `rownum` (`Int64`, from 1) as the last column when
//! asked for.

mod checkpoint;
#[cfg(test)]
mod raw_tests;

use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt32Array, UInt64Array,
};
use arrow::compute::{
    SortColumn, SortOptions, concat_batches, filter_record_batch, lexsort_to_indices, min, not,
    take,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMillisecondType};
use arrow::row::{RowConverter, SortField};
use serde::{Deserialize, Serialize};

use super::window_rows::{assign, take_rows, with_bounds};
use super::{Emitted, Operator};
use crate::error::{Error, Result};
use crate::window::WindowSpec;

/// One `ORDER BY` term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopNOrder {
    /// The column ranked by.
    pub column: String,
    /// Largest first.
    pub descending: bool,
    /// Nulls before every value (default: after, in either direction).
    pub nulls_first: bool,
}

/// What a window Top-N keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowTopNSpec {
    /// Columns that split a window's rows further (beside `window_start` and `window_end`).
    pub partition_by: Vec<String>,
    /// The order within a partition, first term first.
    pub order_by: Vec<TopNOrder>,
    /// Rows kept per partition; `None` keeps every row, numbered.
    pub limit: Option<usize>,
    /// The name of the row-number column, when the output has one.
    pub rownum: Option<String>,
    /// The windows of raw rows (tumbling, hopping or cumulating), which the operator assigns
    /// and adds as `window_start` and `window_end`; `None` when the rows are a window
    /// aggregation's, which have those columns.
    #[serde(default)]
    pub window: Option<WindowSpec>,
}

/// The column that numbers held rows in arrival order (ties are ranked by it).
const ARRIVAL: &str = "__arrival";

/// Held rows are dropped down to the first `limit` per window and partition once there are
/// this many, or twice as many as the last drop kept: the sort costs O(n log n) per drop, so
/// over a window's life it stays a constant factor per row.
const PRUNE_ROWS: usize = 16 * 1024;

/// Ranks each closed window's rows and keeps the first `limit`.
#[derive(Debug)]
pub struct WindowTopNOperator {
    spec: WindowTopNSpec,
    /// In the held rows: `window_end`, `window_start`, then the partition columns.
    partition: Vec<usize>,
    order: Vec<(usize, SortOptions)>,
    end: usize,
    /// The event-time column of raw rows (with [`WindowTopNSpec::window`]).
    time: usize,
    input: SchemaRef,
    /// The input's columns, the window bounds of raw rows, then [`ARRIVAL`].
    held: SchemaRef,
    /// Raw rows in their windows: `held` without [`ARRIVAL`].
    windowed: SchemaRef,
    schema: SchemaRef,
    waiting: Vec<RecordBatch>,
    /// The earliest window end among the held rows (`i64::MAX`: none held).
    earliest_end: i64,
    /// Rows held, and how many make the next drop to `limit` rows per partition.
    held_rows: usize,
    prune_at: usize,
    next_arrival: u64,
    watermark: i64,
}

impl WindowTopNOperator {
    /// Checks `spec` against `input` (a window aggregation's rows, or raw rows with
    /// `spec.window` and their event time in `time_column`); `setting` names the job key in
    /// errors.
    pub fn try_new(
        spec: &WindowTopNSpec,
        input: SchemaRef,
        time_column: &str,
        setting: &str,
    ) -> Result<Self> {
        let (mut held, time): (Vec<Field>, usize) = match &spec.window {
            Some(window) => {
                let (bounded, time) = with_bounds(window, &input, time_column, setting)?;
                (
                    bounded
                        .fields()
                        .iter()
                        .map(|f| f.as_ref().clone())
                        .collect(),
                    time,
                )
            }
            None => (
                input.fields().iter().map(|f| f.as_ref().clone()).collect(),
                0,
            ),
        };
        if input.index_of(ARRIVAL).is_ok() {
            return Err(Error::config(
                setting,
                format!("the rows have a column `{ARRIVAL}`, a name the operator keeps for itself"),
            ));
        }
        let visible = Schema::new(held.clone());
        held.push(Field::new(ARRIVAL, DataType::UInt64, false));
        let held = Arc::new(Schema::new(held));
        let column = |name: &str, key: String| {
            visible.index_of(name).map_err(|_| {
                Error::config(
                    key,
                    format!(
                        "no column `{name}` in the rows ranked; they have: {}",
                        names(&visible)
                    ),
                )
            })
        };
        let end = column("window_end", setting.to_string())
            .and_then(|end| column("window_start", setting.to_string()).map(|start| (end, start)));
        let (end, start) = end.map_err(|_| {
            Error::config(
                setting,
                "a window Top-N ranks the rows of a window aggregation (it needs their \
                 window_start and window_end columns), or a window function's rows with \
                 `window`",
            )
        })?;
        if spec.order_by.is_empty() {
            return Err(Error::config(
                format!("{setting}.order_by"),
                "say which column ranks the rows",
            ));
        }
        if spec.limit == Some(0) {
            return Err(Error::config(
                format!("{setting}.limit"),
                "must be at least 1",
            ));
        }
        let mut partition = vec![end, start];
        for (i, name) in spec.partition_by.iter().enumerate() {
            partition.push(column(name, format!("{setting}.partition_by[{i}]"))?);
        }
        let order = spec
            .order_by
            .iter()
            .enumerate()
            .map(|(i, term)| {
                let index = column(&term.column, format!("{setting}.order_by[{i}].column"))?;
                let options = SortOptions {
                    descending: term.descending,
                    nulls_first: term.nulls_first,
                };
                Ok((index, options))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut fields: Vec<Field> = visible
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        if let Some(rownum) = &spec.rownum {
            if visible.index_of(rownum).is_ok() {
                return Err(Error::config(
                    format!("{setting}.rownum"),
                    format!("the rows already have a column `{rownum}`"),
                ));
            }
            fields.push(Field::new(rownum, DataType::Int64, false));
        }
        Ok(WindowTopNOperator {
            spec: spec.clone(),
            partition,
            order,
            end,
            time,
            schema: Arc::new(Schema::new(fields)),
            input,
            held,
            windowed: Arc::new(visible),
            waiting: Vec::new(),
            earliest_end: i64::MAX,
            held_rows: 0,
            prune_at: PRUNE_ROWS,
            next_arrival: 0,
            watermark: i64::MIN,
        })
    }

    /// The schema of late rows (the input's), when the operator assigns windows itself.
    pub fn late_schema(&self) -> Option<SchemaRef> {
        self.spec.window.map(|_| self.input.clone())
    }

    /// Rows held for windows still open.
    pub fn held_rows(&self) -> usize {
        self.held_rows
    }

    /// Holds `rows` (the held schema but for the arrival column), numbered in arrival order.
    fn hold(&mut self, rows: RecordBatch) -> Result<()> {
        let count = rows.num_rows();
        if count == 0 {
            return Ok(());
        }
        let first = self.next_arrival;
        self.next_arrival += count as u64;
        let mut columns = rows.columns().to_vec();
        columns.push(Arc::new(UInt64Array::from_iter_values(
            first..first + count as u64,
        )));
        let rows = RecordBatch::try_new(self.held.clone(), columns)
            .map_err(Error::arrow("holding window rows"))?;
        self.earliest_end = self.earliest_end.min(earliest_end(&rows, self.end));
        self.held_rows += count;
        self.waiting.push(rows);
        if self.spec.limit.is_some() && self.held_rows >= self.prune_at {
            self.prune()?;
        }
        Ok(())
    }

    /// Drops every held row that can no longer be among the first `limit` of its window and
    /// partition.
    fn prune(&mut self) -> Result<()> {
        let all = concat_batches(&self.held, &self.waiting)
            .map_err(Error::arrow("collecting window rows"))?;
        let (kept, _) = self.top(&all)?;
        let kept = take_rows(&all, &kept)?;
        self.held_rows = kept.num_rows();
        self.prune_at = PRUNE_ROWS.max(2 * self.held_rows);
        self.waiting = vec![kept];
        Ok(())
    }

    /// The rows of `batch` (held rows) that rank within `limit` in their window and
    /// partition, in rank order, with their numbers.
    fn top(&self, batch: &RecordBatch) -> Result<(UInt32Array, Vec<i64>)> {
        let arrow = Error::arrow("ranking window rows");
        let sort_column = |index: usize, options: SortOptions| SortColumn {
            values: batch.column(index).clone(),
            options: Some(options),
        };
        let mut columns: Vec<SortColumn> = self
            .partition
            .iter()
            .map(|&index| sort_column(index, SortOptions::default()))
            .collect();
        columns.extend(
            self.order
                .iter()
                .map(|&(index, options)| sort_column(index, options)),
        );
        // Arrival order last: equal rows keep it, so the numbering is deterministic.
        columns.push(sort_column(batch.num_columns() - 1, SortOptions::default()));
        let order = lexsort_to_indices(&columns, None).map_err(arrow)?;
        let partitions = RowConverter::new(
            self.partition
                .iter()
                .map(|&index| SortField::new(batch.column(index).data_type().clone()))
                .collect(),
        )
        .map_err(Error::arrow("ranking window rows"))?;
        let keys: Vec<ArrayRef> = self
            .partition
            .iter()
            .map(|&index| take(batch.column(index), &order, None))
            .collect::<std::result::Result<_, _>>()
            .map_err(Error::arrow("ranking window rows"))?;
        let keys = partitions
            .convert_columns(&keys)
            .map_err(Error::arrow("ranking window rows"))?;
        let limit = self
            .spec
            .limit
            .map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut kept = Vec::new();
        let mut numbers = Vec::new();
        let mut number = 0i64;
        for (i, &row) in order.values().iter().enumerate() {
            number = if i > 0 && keys.row(i) == keys.row(i - 1) {
                number + 1
            } else {
                1
            };
            if number <= limit {
                kept.push(row);
                numbers.push(number);
            }
        }
        Ok((UInt32Array::from(kept), numbers))
    }

    /// The held rows of closed windows (`batch`) ranked: kept ones in rank order, numbered.
    fn rank(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let (kept, numbers) = self.top(batch)?;
        let ranked = take_rows(batch, &kept)?;
        let mut columns = ranked.columns().to_vec();
        // The arrival column stays inside.
        columns.pop();
        if self.spec.rownum.is_some() {
            columns.push(Arc::new(Int64Array::from(numbers)));
        }
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(Error::arrow("ranking window rows"))
    }
}

/// The earliest `window_end` (column `end`) of `batch`, `i64::MAX` when it has no rows.
fn earliest_end(batch: &RecordBatch, end: usize) -> i64 {
    min(batch.column(end).as_primitive::<TimestampMillisecondType>()).unwrap_or(i64::MAX)
}

fn names(schema: &Schema) -> String {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names.join(", ")
}

impl Operator for WindowTopNOperator {
    fn name(&self) -> &'static str {
        "window top-n"
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&mut self, batch: RecordBatch, out: &mut Emitted) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let Some(window) = self.spec.window else {
            return self.hold(batch);
        };
        let assigned = assign(&window, &batch, self.time, self.watermark, &self.windowed)?;
        if !assigned.late.is_empty() {
            out.late
                .push(take_rows(&batch, &UInt32Array::from(assigned.late))?);
        }
        self.hold(assigned.rows)
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Emitted) -> Result<()> {
        self.watermark = self.watermark.max(watermark);
        if self.earliest_end > watermark {
            return Ok(());
        }
        let all = concat_batches(&self.held, &self.waiting)
            .map_err(Error::arrow("collecting window rows"))?;
        self.waiting.clear();
        // A window is complete once the watermark reaches its end (the window operator
        // emits it then; raw rows of it arriving later are late).
        let ends = all
            .column(self.end)
            .as_primitive::<TimestampMillisecondType>();
        let closed: BooleanArray = ends
            .values()
            .iter()
            .map(|&end| Some(end <= watermark))
            .collect();
        let later = not(&closed).map_err(Error::arrow("collecting window rows"))?;
        let wait =
            filter_record_batch(&all, &later).map_err(Error::arrow("collecting window rows"))?;
        let ready =
            filter_record_batch(&all, &closed).map_err(Error::arrow("collecting window rows"))?;
        self.earliest_end = earliest_end(&wait, self.end);
        self.held_rows = wait.num_rows();
        self.prune_at = PRUNE_ROWS.max(2 * self.held_rows);
        if wait.num_rows() > 0 {
            self.waiting.push(wait);
        }
        if ready.num_rows() > 0 {
            out.batches.push(self.rank(&ready)?);
        }
        Ok(())
    }

    /// Raw rows wait across checkpoints; a window aggregation's rows wait only between a
    /// window's emission and the watermark that follows it in the same step, never across a
    /// checkpoint, so that form keeps no state.
    fn keeps_state(&self) -> bool {
        self.spec.window.is_some()
    }

    fn snapshot(&mut self) -> Result<Option<crate::state::StateSnapshot>> {
        if self.spec.window.is_none() {
            return Ok(None);
        }
        self.save().map(Some)
    }

    fn restore(&mut self, state: &crate::state::StateSnapshot) -> Result<()> {
        self.load(state)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{Int64Type, TimeUnit};

    use super::*;

    fn input() -> SchemaRef {
        let time = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("shop", DataType::Utf8, false),
            Field::new("window_start", time.clone(), false),
            Field::new("window_end", time, false),
            Field::new("total", DataType::Int64, true),
        ]))
    }

    /// Rows (shop, window start, total); windows are 10 ms long.
    fn batch(rows: &[(&str, i64, Option<i64>)]) -> RecordBatch {
        let times = |f: fn(i64) -> i64| {
            Arc::new(
                TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| f(r.1)))
                    .with_timezone("UTC"),
            ) as ArrayRef
        };
        RecordBatch::try_new(
            input(),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                times(|start| start),
                times(|start| start + 10),
                Arc::new(rows.iter().map(|r| r.2).collect::<Int64Array>()),
            ],
        )
        .expect("test batch")
    }

    fn spec(partition_by: &[&str], limit: Option<usize>) -> WindowTopNSpec {
        WindowTopNSpec {
            partition_by: partition_by.iter().map(|s| s.to_string()).collect(),
            order_by: vec![TopNOrder {
                column: "total".into(),
                descending: true,
                nulls_first: false,
            }],
            limit,
            rownum: Some("rownum".into()),
            window: None,
        }
    }

    /// (shop, window start, total, rownum) per output row.
    fn rows(out: &Emitted) -> Vec<(String, i64, Option<i64>, i64)> {
        let mut rows = Vec::new();
        for batch in &out.batches {
            let shops = batch.column(0).as_string::<i32>();
            let starts = batch.column(1).as_primitive::<TimestampMillisecondType>();
            let totals = batch.column(3).as_primitive::<Int64Type>();
            let numbers = batch.column(4).as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                rows.push((
                    shops.value(row).to_string(),
                    starts.value(row),
                    totals.is_valid(row).then(|| totals.value(row)),
                    numbers.value(row),
                ));
            }
        }
        rows
    }

    #[test]
    fn keeps_the_first_rows_of_each_window_ties_in_arrival_order_nulls_last() -> Result<()> {
        let mut op =
            WindowTopNOperator::try_new(&spec(&[], Some(2)), input(), "ts", "operators[1]")?;
        let mut out = Emitted::default();
        op.process(
            batch(&[
                ("a", 0, Some(5)),
                ("b", 0, None),
                ("c", 0, Some(9)),
                ("d", 0, Some(5)),
            ]),
            &mut out,
        )?;
        op.process(
            batch(&[("a", 10, None), ("e", 10, Some(1)), ("f", 20, Some(3))]),
            &mut out,
        )?;
        op.on_watermark(20, &mut out)?;
        let own = |shop: &str, start, total, rownum| (shop.to_string(), start, total, rownum);
        assert_eq!(
            rows(&out),
            vec![
                own("c", 0, Some(9), 1),
                // `a` and `d` tie on 5: `a` came first.
                own("a", 0, Some(5), 2),
                own("e", 10, Some(1), 1),
                own("a", 10, None, 2),
            ],
            "the window [20, 30) waits for its end"
        );
        let mut rest = Emitted::default();
        op.on_watermark(30, &mut rest)?;
        assert_eq!(rows(&rest), vec![own("f", 20, Some(3), 1)]);
        Ok(())
    }

    #[test]
    fn partitions_split_a_window_and_no_limit_numbers_every_row() -> Result<()> {
        let mut op =
            WindowTopNOperator::try_new(&spec(&["shop"], None), input(), "ts", "operators[1]")?;
        let mut out = Emitted::default();
        op.process(
            batch(&[("a", 0, Some(1)), ("b", 0, Some(2)), ("a", 0, Some(3))]),
            &mut out,
        )?;
        op.on_watermark(10, &mut out)?;
        let own = |shop: &str, total, rownum| (shop.to_string(), 0, Some(total), rownum);
        assert_eq!(
            rows(&out),
            vec![own("a", 3, 1), own("a", 1, 2), own("b", 2, 1)]
        );
        Ok(())
    }

    #[test]
    fn mistakes_name_the_setting() {
        let no_window = Arc::new(Schema::new(vec![Field::new(
            "total",
            DataType::Int64,
            true,
        )]));
        let err = WindowTopNOperator::try_new(&spec(&[], Some(1)), no_window, "ts", "operators[0]")
            .expect_err("no window columns");
        assert!(
            err.to_string()
                .contains("ranks the rows of a window aggregation"),
            "{err}"
        );
        let err =
            WindowTopNOperator::try_new(&spec(&["region"], Some(1)), input(), "ts", "operators[1]")
                .expect_err("unknown column");
        assert!(
            err.to_string().contains("operators[1].partition_by[0]")
                && err.to_string().contains("no column `region`"),
            "{err}"
        );
        let err = WindowTopNOperator::try_new(&spec(&[], Some(0)), input(), "ts", "operators[1]")
            .expect_err("zero rows");
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
}
