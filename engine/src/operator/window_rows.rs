//! A window function's rows (`FROM TABLE(TUMBLE | HOP | CUMULATE (...))`): each row once per
//! window it falls in, with the window's bounds.
//!
//! On their own (`SELECT * FROM TABLE(HOP(...))`, job-file `assign_windows`) the rows leave at
//! once, as Flink's window table function emits them; the window Top-N over raw rows
//! ([`super::WindowTopNOperator`]) assigns them with [`assign`] and holds them instead. A row
//! is repeated for every window that holds it (hopping and cumulating windows overlap);
//! windows the watermark has already closed are skipped, and a row with no open window left is
//! late.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use super::{Emitted, Operator};

use crate::error::{Error, Result};
use crate::event_time::event_time_values;
use crate::state::StateSnapshot;
use crate::window::WindowSpec;

/// The rows of a batch in their windows, and the rows that were late.
#[derive(Debug)]
pub(crate) struct Assigned {
    /// The input's columns, then `window_start` and `window_end`, in `schema`.
    pub(crate) rows: RecordBatch,
    /// Input rows whose every window had closed.
    pub(crate) late: Vec<u32>,
}

/// Puts each row of `batch` (time in column `time`) into its windows of `window` (tumbling,
/// hopping or cumulating) that end after `watermark`; `schema` is the input's plus the bounds.
pub(crate) fn assign(
    window: &WindowSpec,
    batch: &RecordBatch,
    time: usize,
    watermark: i64,
    schema: &SchemaRef,
) -> Result<Assigned> {
    let ts = event_time_values(batch.column(time))?;
    let mut rows: Vec<u32> = Vec::with_capacity(ts.len());
    let mut starts: Vec<i64> = Vec::with_capacity(ts.len());
    let mut ends: Vec<i64> = Vec::with_capacity(ts.len());
    let mut late = Vec::new();
    for (row, &t) in ts.iter().enumerate() {
        let before = rows.len();
        for_each_window(window, t, |start, end| {
            if end > watermark {
                rows.push(row as u32);
                starts.push(start);
                ends.push(end);
            }
        });
        if rows.len() == before {
            late.push(row as u32);
        }
    }
    let mut columns = take_rows(batch, &UInt32Array::from(rows))?
        .columns()
        .to_vec();
    let bound = |values: Vec<i64>| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
    };
    columns.push(bound(starts));
    columns.push(bound(ends));
    let rows = RecordBatch::try_new(schema.clone(), columns)
        .map_err(Error::arrow("repeating rows into their windows"))?;
    Ok(Assigned { rows, late })
}

/// The rows of a window function, each in its open windows, emitted at once.
#[derive(Debug)]
pub struct WindowRowsOperator {
    window: WindowSpec,
    time: usize,
    input: SchemaRef,
    schema: SchemaRef,
    watermark: i64,
}

/// The layout of the operator's state: the watermark that judges rows late.
const STATE_FORMAT: &str = "window-rows/1";

#[derive(Debug, Serialize, Deserialize)]
struct WindowRowsMeta {
    window: WindowSpec,
    watermark: i64,
}

impl WindowRowsOperator {
    /// Checks `window` (tumbling, hopping or cumulating) against `input`, whose event time
    /// is `time_column`; `setting` names the job key in errors.
    pub fn try_new(
        window: WindowSpec,
        input: SchemaRef,
        time_column: &str,
        setting: &str,
    ) -> Result<Self> {
        let (schema, time) = with_bounds(&window, &input, time_column, setting)?;
        Ok(WindowRowsOperator {
            window,
            time,
            input,
            schema,
            watermark: i64::MIN,
        })
    }

    /// The schema of late rows (the input's).
    pub fn late_schema(&self) -> SchemaRef {
        self.input.clone()
    }
}

/// `input`'s schema with `window_start` and `window_end` after its columns, and the index of
/// its event-time column; refuses sessions and inputs that already have the bounds.
pub(crate) fn with_bounds(
    window: &WindowSpec,
    input: &SchemaRef,
    time_column: &str,
    setting: &str,
) -> Result<(SchemaRef, usize)> {
    window.validate(&format!("{setting}.window"))?;
    if matches!(window, WindowSpec::Session { .. }) {
        return Err(Error::config(
            format!("{setting}.window"),
            "raw rows go into tumbling, hopping or cumulating windows; a session exists only \
             once its rows are aggregated",
        ));
    }
    if let Some(clash) = ["window_start", "window_end"]
        .into_iter()
        .find(|b| input.index_of(b).is_ok())
    {
        return Err(Error::config(
            format!("{setting}.window"),
            format!("the rows already have a column `{clash}`, which the window adds"),
        ));
    }
    let time = input.index_of(time_column).map_err(|_| {
        Error::config(
            setting,
            format!(
                "the event-time column `{time_column}` is not in this operator's input (was it \
                 projected away?)"
            ),
        )
    })?;
    let timestamp = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("window_start", timestamp.clone(), false));
    fields.push(Field::new("window_end", timestamp, false));
    Ok((Arc::new(Schema::new(fields)), time))
}

impl Operator for WindowRowsOperator {
    fn name(&self) -> &'static str {
        "assign windows"
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&mut self, batch: RecordBatch, out: &mut Emitted) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let assigned = assign(
            &self.window,
            &batch,
            self.time,
            self.watermark,
            &self.schema,
        )?;
        if !assigned.late.is_empty() {
            out.late
                .push(take_rows(&batch, &UInt32Array::from(assigned.late))?);
        }
        if assigned.rows.num_rows() > 0 {
            out.batches.push(assigned.rows);
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, _out: &mut Emitted) -> Result<()> {
        self.watermark = self.watermark.max(watermark);
        Ok(())
    }

    /// Only the watermark, so that a row late before a restart is late after it too.
    fn keeps_state(&self) -> bool {
        true
    }

    fn snapshot(&mut self) -> Result<Option<StateSnapshot>> {
        let meta = WindowRowsMeta {
            window: self.window,
            watermark: self.watermark,
        };
        let meta = serde_json::to_value(meta)
            .map_err(|e| Error::Internal(format!("window rows state metadata: {e}")))?;
        Ok(Some(StateSnapshot::new(STATE_FORMAT, meta)))
    }

    fn restore(&mut self, state: &StateSnapshot) -> Result<()> {
        state.expect_format(STATE_FORMAT)?;
        let meta: WindowRowsMeta = state.meta_as()?;
        if meta.window != self.window {
            return Err(Error::config(
                "checkpoint",
                format!(
                    "the window changed since the checkpoint (was {:?}, now {:?}); start \
                     without the checkpoint, or restore the old job",
                    meta.window, self.window
                ),
            ));
        }
        self.watermark = meta.watermark;
        Ok(())
    }
}

/// `batch`'s rows at `indices`.
pub(crate) fn take_rows(batch: &RecordBatch, indices: &UInt32Array) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .map(|column| take(column, indices, None))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::arrow("taking window rows"))?;
    RecordBatch::try_new(batch.schema(), columns).map_err(Error::arrow("taking window rows"))
}

/// Calls `each(start, end)` for every window of `window` holding time `t` (none for sessions,
/// which the operator refuses, or for a time whose window leaves the `i64` range).
fn for_each_window(window: &WindowSpec, t: i64, mut each: impl FnMut(i64, i64)) {
    match *window {
        WindowSpec::Tumbling { .. } | WindowSpec::Hopping { .. } => {
            let (Some(size), Some(last)) = (window.size(), window.last_start(t)) else {
                return;
            };
            for start in window.starts_from(last, t) {
                each(start, start + size);
            }
        }
        WindowSpec::Cumulate { step, size, offset } => {
            // Every window of a cumulation starts where the size-long tumbling window of `t`
            // does; those ending after `t` hold it.
            let Some(start) = (WindowSpec::Tumbling { size, offset }).last_start(t) else {
                return;
            };
            for k in (t - start) / step + 1..=size / step {
                each(start, start + k * step);
            }
        }
        WindowSpec::Session { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(window: WindowSpec, t: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for_each_window(&window, t, |start, end| out.push((start, end)));
        out.sort_unstable();
        out
    }

    #[test]
    fn each_kind_puts_a_time_in_the_windows_that_hold_it() {
        let tumbling = WindowSpec::Tumbling {
            size: 10,
            offset: 0,
        };
        assert_eq!(windows(tumbling, 13), vec![(10, 20)]);
        assert_eq!(windows(tumbling, -1), vec![(-10, 0)]);
        let hopping = WindowSpec::Hopping {
            size: 10,
            slide: 5,
            offset: 0,
        };
        assert_eq!(windows(hopping, 13), vec![(5, 15), (10, 20)]);
        assert_eq!(windows(hopping, 10), vec![(5, 15), (10, 20)]);
        let cumulate = WindowSpec::Cumulate {
            step: 5,
            size: 20,
            offset: 0,
        };
        // 33 is in [20, 35), [20, 40): the step windows ending after it.
        assert_eq!(windows(cumulate, 33), vec![(20, 35), (20, 40)]);
        assert_eq!(
            windows(cumulate, 20),
            vec![(20, 25), (20, 30), (20, 35), (20, 40)]
        );
        assert_eq!(windows(cumulate, 39), vec![(20, 40)]);
        assert!(windows(WindowSpec::Session { gap: 5 }, 3).is_empty());
    }

    fn input() -> SchemaRef {
        let time = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("ts", time, false),
            Field::new("v", DataType::Int64, false),
        ]))
    }

    fn batch(rows: &[(i64, i64)]) -> RecordBatch {
        RecordBatch::try_new(
            input(),
            vec![
                Arc::new(
                    TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.0))
                        .with_timezone("UTC"),
                ),
                Arc::new(arrow::array::Int64Array::from_iter_values(
                    rows.iter().map(|r| r.1),
                )),
            ],
        )
        .expect("test batch")
    }

    /// (v, window start, window end) of every output row; v of every late row.
    fn seen(out: &Emitted) -> (Vec<(i64, i64, i64)>, Vec<i64>) {
        use arrow::array::AsArray;
        use arrow::datatypes::{Int64Type, TimestampMillisecondType};
        let mut rows = Vec::new();
        for b in &out.batches {
            let v = b.column(1).as_primitive::<Int64Type>();
            let start = b.column(2).as_primitive::<TimestampMillisecondType>();
            let end = b.column(3).as_primitive::<TimestampMillisecondType>();
            rows.extend((0..b.num_rows()).map(|r| (v.value(r), start.value(r), end.value(r))));
        }
        let late = out
            .late
            .iter()
            .flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        rows.sort_unstable();
        (rows, late)
    }

    #[test]
    fn rows_leave_at_once_in_their_open_windows_and_the_watermark_survives_a_restore() -> Result<()>
    {
        let hopping = WindowSpec::Hopping {
            size: 10,
            slide: 5,
            offset: 0,
        };
        let mut op = WindowRowsOperator::try_new(hopping, input(), "ts", "operators[0]")?;
        let mut out = Emitted::default();
        op.process(batch(&[(3, 1), (12, 2)]), &mut out)?;
        op.on_watermark(10, &mut out)?;
        let state = op.snapshot()?.expect("the watermark");
        let mut op = WindowRowsOperator::try_new(hopping, input(), "ts", "operators[0]")?;
        op.restore(&state)?;
        // 7 is in [0, 10), closed, and [5, 15), open; 4 only in closed windows: late.
        op.process(batch(&[(7, 3), (4, 4)]), &mut out)?;
        let (rows, late) = seen(&out);
        assert_eq!(
            rows,
            vec![(1, -5, 5), (1, 0, 10), (2, 5, 15), (2, 10, 20), (3, 5, 15)]
        );
        assert_eq!(late, vec![4]);
        // Another window cannot take the state.
        let tumbling = WindowSpec::Tumbling {
            size: 10,
            offset: 0,
        };
        let mut other = WindowRowsOperator::try_new(tumbling, input(), "ts", "operators[0]")?;
        assert!(other.restore(&state).is_err());
        Ok(())
    }
}
