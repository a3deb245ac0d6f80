//! A window TVF over raw rows: each row once per window it falls in, with the window's bounds.
//!
//! Flink's window Top-N may rank a window function's rows directly (`ROW_NUMBER() OVER
//! (PARTITION BY window_start, window_end ...) FROM TABLE(TUMBLE(...))`); the operator then
//! assigns the windows itself, as Flink's window rank operator does. A row is repeated for
//! every window that holds it (hopping and cumulating windows overlap); windows the watermark
//! has already closed are skipped, and a row with no open window left is late.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};
use crate::event_time::event_time_values;
use crate::window::WindowSpec;

/// The rows of a batch in their windows, and the rows that were late.
#[derive(Debug)]
pub(super) struct Assigned {
    /// The input's columns, then `window_start` and `window_end`, in `schema`.
    pub(super) rows: RecordBatch,
    /// Input rows whose every window had closed.
    pub(super) late: Vec<u32>,
}

/// Puts each row of `batch` (time in column `time`) into its windows of `window` (tumbling,
/// hopping or cumulating) that end after `watermark`; `schema` is the input's plus the bounds.
pub(super) fn assign(
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
    let indices = UInt32Array::from(rows);
    let mut columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|column| take(column, &indices, None))
        .collect::<std::result::Result<_, _>>()
        .map_err(Error::arrow("repeating rows into their windows"))?;
    let bound = |values: Vec<i64>| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
    };
    columns.push(bound(starts));
    columns.push(bound(ends));
    let rows = RecordBatch::try_new(schema.clone(), columns)
        .map_err(Error::arrow("repeating rows into their windows"))?;
    Ok(Assigned { rows, late })
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
}
