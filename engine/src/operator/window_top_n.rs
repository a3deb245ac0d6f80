//! Window Top-N: the first rows of each window by an order, numbered (Flink's window Top-N,
//! `ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY ...) ... WHERE rownum <= N`).
//!
//! It follows a window aggregation, whose rows for one window all arrive before the watermark
//! passes the window's end: rows wait in the operator until then, and each window's are ranked
//! once, complete. Rows with equal order values are numbered in arrival order, which the window
//! operator makes the same on every backend, so numbering never depends on the backend.
//! Output: per window and partition, at most `limit` rows in rank order, with `rownum`
//! (`Int64`, from 1) as the last column when asked for.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{
    SortColumn, SortOptions, concat_batches, filter_record_batch, lexsort_to_indices, not, take,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMillisecondType};
use arrow::row::{RowConverter, SortField};
use serde::{Deserialize, Serialize};

use super::{Emitted, Operator};
use crate::error::{Error, Result};

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
}

/// Ranks each closed window's rows and keeps the first `limit`.
#[derive(Debug)]
pub struct WindowTopNOperator {
    spec: WindowTopNSpec,
    /// `window_end`, `window_start`, then the partition columns.
    partition: Vec<usize>,
    order: Vec<(usize, SortOptions)>,
    end: usize,
    input: SchemaRef,
    schema: SchemaRef,
    waiting: Vec<RecordBatch>,
}

impl WindowTopNOperator {
    /// Checks `spec` against `input` (a window aggregation's rows); `setting` names the job
    /// key in errors.
    pub fn try_new(spec: &WindowTopNSpec, input: SchemaRef, setting: &str) -> Result<Self> {
        let column = |name: &str, key: String| {
            input.index_of(name).map_err(|_| {
                Error::config(
                    key,
                    format!(
                        "no column `{name}` in the rows ranked; they have: {}",
                        names(&input)
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
                 window_start and window_end columns)",
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
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        if let Some(rownum) = &spec.rownum {
            if input.index_of(rownum).is_ok() {
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
            schema: Arc::new(Schema::new(fields)),
            input,
            waiting: Vec::new(),
        })
    }

    /// The rows of `batch` (all of closed windows) ranked: kept ones in rank order, numbered.
    fn rank(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let arrow = Error::arrow("ranking window rows");
        let rows = batch.num_rows();
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
        let arrival: ArrayRef = Arc::new(UInt32Array::from_iter_values(0..rows as u32));
        columns.push(SortColumn {
            values: arrival,
            options: None,
        });
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
        let kept = UInt32Array::from(kept);
        let mut columns = batch
            .columns()
            .iter()
            .map(|column| take(column, &kept, None))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(Error::arrow("ranking window rows"))?;
        if self.spec.rownum.is_some() {
            columns.push(Arc::new(Int64Array::from(numbers)));
        }
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(Error::arrow("ranking window rows"))
    }
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

    fn process(&mut self, batch: RecordBatch, _out: &mut Emitted) -> Result<()> {
        if batch.num_rows() > 0 {
            self.waiting.push(batch);
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Emitted) -> Result<()> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        let all = concat_batches(&self.input, &self.waiting)
            .map_err(Error::arrow("collecting window rows"))?;
        self.waiting.clear();
        // Every row is of a window that closed at or before this watermark (the window
        // operator emits a window when the watermark passes its end); a row of a later window
        // would wait, but none arrives.
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
        if wait.num_rows() > 0 {
            self.waiting.push(wait);
        }
        if ready.num_rows() > 0 {
            out.batches.push(self.rank(&ready)?);
        }
        Ok(())
    }

    // The rows wait only between a window's emission and the watermark that follows it in
    // the same step, never across a checkpoint, so the operator keeps no state of its own.
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
        let mut op = WindowTopNOperator::try_new(&spec(&[], Some(2)), input(), "operators[1]")?;
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
        let mut op = WindowTopNOperator::try_new(&spec(&["shop"], None), input(), "operators[1]")?;
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
        let err = WindowTopNOperator::try_new(&spec(&[], Some(1)), no_window, "operators[0]")
            .expect_err("no window columns");
        assert!(
            err.to_string()
                .contains("ranks the rows of a window aggregation"),
            "{err}"
        );
        let err = WindowTopNOperator::try_new(&spec(&["region"], Some(1)), input(), "operators[1]")
            .expect_err("unknown column");
        assert!(
            err.to_string().contains("operators[1].partition_by[0]")
                && err.to_string().contains("no column `region`"),
            "{err}"
        );
        let err = WindowTopNOperator::try_new(&spec(&[], Some(0)), input(), "operators[1]")
            .expect_err("zero rows");
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
}
