//! Stream joins: two keyed streams joined on equal keys within a time bound, either the same
//! window (window join) or an interval around each other (interval join).
//!
//! Each side's on-time rows with a non-null key are buffered on the host (`rows.rs`) and
//! indexed by key and event time on the backend (`JoinBuffer`); a probe returns handles that
//! turn back into rows. An interval join probes each arriving row against the other side and
//! emits at once; a window join probes when the watermark closes a window. Buffered rows go
//! once the watermark shows they can match nothing more, so state stays bounded. Output
//! columns: `columns.rs`; late rows: `late.rs`; checkpoints: `checkpoint.rs`.

mod checkpoint;
mod columns;
mod interval;
mod late;
mod rows;
mod side;
#[cfg(test)]
mod tests;
mod window;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use serde::{Deserialize, Serialize};

use super::{Emitted, JoinKind};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::keys::KeyEncoder;
use crate::window::WindowSpec;
use columns::JoinColumns;
pub use columns::output_names as join_output_names;
pub use late::{late_row_schema, late_rows};
use rows::RowStore;
use side::JoinSide;

/// Which rows of the two streams belong together, besides equal keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinTime {
    /// Both rows fall in the same tumbling or hopping window; emitted when it closes.
    Window(WindowSpec),
    /// `left.ts BETWEEN right.ts - lower AND right.ts + upper` (ms); emitted at once.
    Interval {
        /// How far the left row may come before the right one.
        lower: i64,
        /// How far the left row may come after the right one.
        upper: i64,
    },
}

/// A join of the streams `left` and `right`: `on` (left columns) equal `right_on`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamJoinSpec {
    /// The left stream's name.
    pub left: String,
    /// The right stream's name.
    pub right: String,
    /// Left key columns.
    pub on: Vec<String>,
    /// Right key columns, pairwise with `on`.
    pub right_on: Vec<String>,
    /// Inner, or left outer (window joins only).
    pub kind: JoinKind,
    /// The time condition.
    pub time: JoinTime,
}

/// One input of a join as it reaches the join: the stream's name, the schema after its own
/// operators, and its event-time column.
#[derive(Debug, Clone)]
pub struct JoinInput {
    /// The stream's name (prefixes its clashing columns).
    pub name: String,
    /// The rows' schema.
    pub schema: SchemaRef,
    /// The event-time column (normalised).
    pub time_column: String,
}

/// Which input a batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinSideId {
    /// The first stream.
    Left = 0,
    /// The second stream.
    Right = 1,
}

/// Joins two streams.
#[derive(Debug)]
pub struct StreamJoinOperator {
    spec: StreamJoinSpec,
    keys: KeyEncoder,
    sides: [JoinSide; 2],
    columns: JoinColumns,
    /// The last watermark seen (`i64::MIN`: none).
    watermark: i64,
    placement: String,
}

impl StreamJoinOperator {
    /// Checks `spec` against its inputs and creates the backend's buffers; `setting` names the
    /// job key in errors.
    pub fn try_new(
        spec: &StreamJoinSpec,
        left: JoinInput,
        right: JoinInput,
        backend: &Arc<dyn Backend>,
        setting: &str,
    ) -> Result<Self> {
        if spec.on.is_empty() || spec.on.len() != spec.right_on.len() {
            return Err(Error::config(
                format!("{setting}.right_on"),
                format!(
                    "needs one right key column per left key: {} left, {} right",
                    spec.on.len(),
                    spec.right_on.len()
                ),
            ));
        }
        let granularity = validate_time(spec, setting)?;
        let keys = KeyEncoder::new(&left.schema, &spec.on, &format!("{setting}.on"))?;
        let left_keys = column_indices(&left, &spec.on, &format!("{setting}.on"))?;
        let right_keys = column_indices(&right, &spec.right_on, &format!("{setting}.right_on"))?;
        let key_types: Vec<DataType> = keys
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        for (i, (&r, t)) in right_keys.iter().zip(&key_types).enumerate() {
            let found = right.schema.field(r).data_type();
            if !comparable(found, t) {
                return Err(Error::config(
                    format!("{setting}.right_on[{i}]"),
                    format!(
                        "`{}` is {found} but the left key `{}` is {t}; keys must both be \
                         integers, both strings, or the same type",
                        spec.right_on[i], spec.on[i]
                    ),
                ));
            }
        }
        let windowed = matches!(spec.time, JoinTime::Window(_));
        let columns = JoinColumns::new(
            &left,
            &right,
            &left_keys,
            &right_keys,
            windowed,
            spec.kind,
            setting,
        )?;
        let side = |input: JoinInput, keys: Vec<usize>, buffered: bool| -> Result<JoinSide> {
            let time = input.schema.index_of(&input.time_column).map_err(|_| {
                Error::config(
                    setting,
                    format!(
                        "the event-time column `{}` of stream `{}` does not reach the join \
                         (was it projected away?)",
                        input.time_column, input.name
                    ),
                )
            })?;
            Ok(JoinSide {
                rows: RowStore::new(input.schema.clone()),
                buffer: buffered
                    .then(|| backend.join_buffer(granularity))
                    .transpose()?,
                name: input.name,
                schema: input.schema,
                keys,
                key_types: key_types.clone(),
                time,
            })
        };
        // A window join scans its left rows when a window closes and probes the right's.
        let left = side(left, left_keys, !windowed)?;
        let right = side(right, right_keys, true)?;
        Ok(StreamJoinOperator {
            spec: spec.clone(),
            keys,
            sides: [left, right],
            columns,
            watermark: i64::MIN,
            placement: backend.join_placement(),
        })
    }

    /// The schema of the joined rows.
    pub fn output_schema(&self) -> SchemaRef {
        self.columns.schema.clone()
    }

    /// Where the join's matching runs.
    pub fn placement(&self) -> &str {
        &self.placement
    }

    /// Rows buffered on each side (left, right): bounded while the watermark advances.
    pub fn buffered_rows(&self) -> (usize, usize) {
        (self.sides[0].rows.rows(), self.sides[1].rows.rows())
    }

    /// Consumes a micro-batch of one input; pushes joined rows and late rows into `out`.
    pub fn process(
        &mut self,
        side: JoinSideId,
        batch: RecordBatch,
        out: &mut Emitted,
    ) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        match self.spec.time {
            JoinTime::Interval { lower, upper } => {
                self.interval_arrive(side, &batch, lower, upper, out)
            }
            JoinTime::Window(window) => self.window_arrive(side, &batch, window, out),
        }
    }

    /// Event time reached `watermark`: emits what it completes and forgets what it expires.
    pub fn on_watermark(&mut self, watermark: i64, out: &mut Emitted) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        match self.spec.time {
            JoinTime::Interval { lower, upper } => {
                self.watermark = watermark;
                self.sides[0].expire(watermark.saturating_sub(lower))?;
                self.sides[1].expire(watermark.saturating_sub(upper))
            }
            JoinTime::Window(window) => self.window_close(watermark, window, out),
        }
    }

    /// Late rows of `side`, in the late-row schema.
    fn late(&self, side: JoinSideId, late: Option<RecordBatch>, out: &mut Emitted) -> Result<()> {
        if let Some(batch) = late.filter(|b| b.num_rows() > 0) {
            let s = &self.sides[side as usize];
            out.late.push(late_rows(&s.name, &batch, s.time)?);
        }
        Ok(())
    }
}

/// Validates the time condition; returns the width of the time ranges the join probes.
fn validate_time(spec: &StreamJoinSpec, setting: &str) -> Result<i64> {
    match spec.time {
        JoinTime::Window(window) => {
            if matches!(
                window,
                WindowSpec::Session { .. } | WindowSpec::Cumulate { .. }
            ) {
                return Err(Error::config(
                    format!("{setting}.window"),
                    "a window join needs tumbling or hopping windows (not session or cumulating windows)",
                ));
            }
            window.validate(&format!("{setting}.window"))?;
            Ok(window.slide().unwrap_or(1))
        }
        JoinTime::Interval { lower, upper } => {
            if spec.kind != JoinKind::Inner {
                return Err(Error::config(
                    format!("{setting}.kind"),
                    "interval joins are inner joins only (use a window join for a left or full outer join)",
                ));
            }
            if lower.checked_add(upper).is_none_or(|w| w < 0) {
                return Err(Error::config(
                    format!("{setting}.lower"),
                    format!(
                        "the interval [right - {lower}ms, right + {upper}ms] is empty \
                         (lower + upper must not be negative)"
                    ),
                ));
            }
            Ok((lower + upper).max(1))
        }
    }
}

fn column_indices(input: &JoinInput, names: &[String], setting: &str) -> Result<Vec<usize>> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            input.schema.index_of(name).map_err(|_| {
                let names: Vec<&str> = input
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                Error::config(
                    format!("{setting}[{i}]"),
                    format!(
                        "stream `{}` has no column `{name}` (available: {})",
                        input.name,
                        names.join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// Whether a right key of type `right` can be compared with a left key of type `left`.
fn comparable(right: &DataType, left: &DataType) -> bool {
    use DataType::*;
    let string = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    right == left || (right.is_integer() && left.is_integer()) || (string(right) && string(left))
}
