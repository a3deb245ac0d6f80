//! The cumulating window operator (Flink's `CUMULATE`): step-long slices merged per key.
//!
//! A cumulating window of `size` and `step` is the family `[start, start + k * step)`,
//! `k = 1 ..= size / step`, all from one `start` aligned to `size`. As Flink does, rows are
//! aggregated per key in `step`-long tumbling slices by the backend (CPU or GPU, state resident
//! there), and this operator merges each key's closed slices: when the watermark passes
//! `start + k * step`, every key with rows in `[start, start + k * step)` gets that window's
//! row, also when the latest slice held none of its rows. A row is late once its slice has
//! closed, as in Flink. Output rows are ordered by `window_end`, then the order keys first
//! appeared in.

mod partial;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimestampMillisecondType};
use arrow::row::{OwnedRow, RowConverter, SortField};
use serde::{Deserialize, Serialize};

use self::partial::{Output, Partial, Scalar};
use super::{Emitted, Operator, WindowAggregateOperator, WindowAggregateSpec};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::state::{StateHeader, StateSnapshot};
use crate::window::WindowSpec;

const STATE_FORMAT: &str = "cumulate-window/1";
const OPEN: &str = "open";
const SLICES: &str = "slices.";

/// One key's cumulating window in progress.
#[derive(Debug)]
struct Cumulation {
    key: OwnedRow,
    start: i64,
    /// The end of the next window to emit.
    next_end: i64,
    /// The partials merged over every slice ending before `next_end`.
    values: Vec<Scalar>,
    /// Closed slices not merged yet: (slice end, partials), in end order.
    pending: Vec<(i64, Vec<Scalar>)>,
}

/// Cumulating windows over keyed rows; the slices' state is held by a [`Backend`].
#[derive(Debug)]
pub struct CumulateWindowOperator {
    spec: WindowAggregateSpec,
    step: i64,
    size: i64,
    offset: i64,
    slices: WindowAggregateOperator,
    key_count: usize,
    partials: Vec<Partial>,
    outputs: Vec<Output>,
    rows: RowConverter,
    /// Open windows by first appearance; `by_key` finds them by (key, start).
    open: BTreeMap<u64, Cumulation>,
    by_key: HashMap<(OwnedRow, i64), u64>,
    next_id: u64,
    schema: SchemaRef,
}

/// What a checkpoint records beside the open windows.
#[derive(Debug, Serialize, Deserialize)]
struct CumulateMeta {
    spec: WindowAggregateSpec,
    slices: StateHeader,
}

impl CumulateWindowOperator {
    /// Checks `spec` (whose window is [`WindowSpec::Cumulate`]) against `input` and creates the
    /// slices' state on `backend`. `setting` names the job key in errors.
    pub fn try_new(
        spec: &WindowAggregateSpec,
        input: SchemaRef,
        time_column: &str,
        backend: &dyn Backend,
        setting: &str,
    ) -> Result<Self> {
        let WindowSpec::Cumulate { step, size, offset } = spec.window else {
            return Err(Error::Internal(format!(
                "{setting}: a cumulate operator for a {:?} window",
                spec.window
            )));
        };
        spec.window.validate(&format!("{setting}.window"))?;
        let (aggregates, partials, outputs) = partial::plan(&spec.aggregates, &input, setting)?;
        let sliced = WindowAggregateSpec {
            keys: spec.keys.clone(),
            window: WindowSpec::Tumbling { size: step, offset },
            aggregates,
        };
        let slices = WindowAggregateOperator::try_new(
            &sliced,
            input.clone(),
            time_column,
            backend,
            setting,
        )?;
        let key_count = spec.keys.len();
        let sliced_schema = slices.output_schema();
        let mut fields: Vec<Field> = sliced_schema.fields()[..key_count + 2]
            .iter()
            .map(|field| field.as_ref().clone())
            .collect();
        for (i, aggregate) in spec.aggregates.iter().enumerate() {
            let key = format!("{setting}.aggregates[{i}]");
            let field = aggregate.output_field(aggregate.resolve(&input, &key)?);
            if fields.iter().any(|f| f.name() == field.name()) {
                return Err(Error::config(
                    format!("{key}.as"),
                    format!("output column `{}` appears twice", field.name()),
                ));
            }
            fields.push(field);
        }
        let rows = RowConverter::new(
            fields[..key_count]
                .iter()
                .map(|field| SortField::new(field.data_type().clone()))
                .collect(),
        )
        .map_err(Error::arrow("comparing window keys"))?;
        Ok(CumulateWindowOperator {
            spec: spec.clone(),
            step,
            size,
            offset,
            slices,
            key_count,
            partials,
            outputs,
            rows,
            open: BTreeMap::new(),
            by_key: HashMap::new(),
            next_id: 0,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The schema of late rows (this operator's input).
    pub fn input_schema(&self) -> SchemaRef {
        self.slices.input_schema()
    }

    /// The start of the cumulating windows that hold the slice starting at `slice_start`.
    fn start_of(&self, slice_start: i64) -> i64 {
        let from = i128::from(slice_start);
        let start = from - (from - i128::from(self.offset)).rem_euclid(i128::from(self.size));
        // Never out of range: the start lies between the slice's and one size before it.
        i64::try_from(start).unwrap_or(slice_start)
    }

    /// Files each closed slice of `batch` under its key's window.
    fn absorb(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys = self
            .rows
            .convert_columns(&batch.columns()[..self.key_count])
            .map_err(Error::arrow("comparing window keys"))?;
        let starts = batch
            .column(self.key_count)
            .as_primitive::<TimestampMillisecondType>();
        let ends = batch
            .column(self.key_count + 1)
            .as_primitive::<TimestampMillisecondType>();
        let columns = &batch.columns()[self.key_count + 2..];
        for row in 0..batch.num_rows() {
            let start = self.start_of(starts.value(row));
            let values = self.read(columns, row);
            let slice_end = ends.value(row);
            let key = keys.row(row).owned();
            let id = match self.by_key.get(&(key.clone(), start)) {
                Some(id) => *id,
                None => {
                    let empty = self.partials.iter().map(|p| p.empty()).collect();
                    self.open_window(key, start, slice_end, empty)
                }
            };
            if let Some(cumulation) = self.open.get_mut(&id) {
                cumulation.pending.push((slice_end, values));
            }
        }
        Ok(())
    }

    /// The rows of every window ending at or before `watermark`, closing windows whose last
    /// step has passed.
    fn emit(&mut self, watermark: i64) -> Result<Option<RecordBatch>> {
        // (end, first appearance, index into `keys`, answers)
        let mut rows: Vec<(i64, u64, usize, Vec<Scalar>)> = Vec::new();
        let mut keys: Vec<OwnedRow> = Vec::new();
        let mut closed = Vec::new();
        for (id, cumulation) in &mut self.open {
            let last_end = cumulation.start.saturating_add(self.size);
            while cumulation.next_end <= watermark.min(last_end) {
                let end = cumulation.next_end;
                let merged = cumulation
                    .pending
                    .iter()
                    .take_while(|(slice_end, _)| *slice_end <= end)
                    .count();
                for (_, values) in cumulation.pending.drain(..merged) {
                    for ((partial, into), value) in
                        self.partials.iter().zip(&mut cumulation.values).zip(values)
                    {
                        partial.merge(into, value);
                    }
                }
                let answers = self
                    .outputs
                    .iter()
                    .map(|output| output.answer(&cumulation.values))
                    .collect();
                rows.push((end, *id, keys.len(), answers));
                keys.push(cumulation.key.clone());
                cumulation.next_end = end.saturating_add(self.step);
            }
            if cumulation.next_end > last_end {
                closed.push(*id);
            }
        }
        for id in closed {
            if let Some(cumulation) = self.open.remove(&id) {
                self.by_key.remove(&(cumulation.key, cumulation.start));
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        rows.sort_unstable_by_key(|(end, id, ..)| (*end, *id));
        let mut columns = self
            .rows
            .convert_rows(rows.iter().map(|(_, _, key, _)| keys[*key].row()))
            .map_err(Error::arrow("building cumulating window keys"))?;
        let ends: Vec<i64> = rows.iter().map(|(end, ..)| *end).collect();
        let starts: Vec<i64> = ends
            .iter()
            .map(|end| self.start_of(end - self.step))
            .collect();
        columns.push(Arc::new(
            TimestampMillisecondArray::from(starts).with_timezone("UTC"),
        ));
        columns.push(Arc::new(
            TimestampMillisecondArray::from(ends).with_timezone("UTC"),
        ));
        for (i, field) in self.schema.fields()[self.key_count + 2..]
            .iter()
            .enumerate()
        {
            columns.push(partial::column(
                rows.iter().map(|(.., answers)| answers[i]),
                field.data_type(),
            ));
        }
        RecordBatch::try_new(self.schema.clone(), columns)
            .map(Some)
            .map_err(Error::arrow("building cumulating window output"))
    }
}

impl Operator for CumulateWindowOperator {
    fn name(&self) -> &'static str {
        "cumulate window"
    }

    fn placement(&self) -> Option<&str> {
        self.slices.placement()
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&mut self, batch: RecordBatch, out: &mut Emitted) -> Result<()> {
        self.slices.process(batch, out)
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Emitted) -> Result<()> {
        let mut sliced = Emitted::default();
        self.slices.on_watermark(watermark, &mut sliced)?;
        for batch in &sliced.batches {
            self.absorb(batch)?;
        }
        out.late.append(&mut sliced.late);
        if let Some(batch) = self.emit(watermark)? {
            out.batches.push(batch);
        }
        Ok(())
    }

    fn keeps_state(&self) -> bool {
        true
    }

    fn snapshot(&mut self) -> Result<Option<StateSnapshot>> {
        let slices = self
            .slices
            .snapshot()?
            .ok_or_else(|| Error::Internal("window slices without state".into()))?;
        let meta = serde_json::to_value(CumulateMeta {
            spec: self.spec.clone(),
            slices: slices.header(),
        })
        .map_err(|e| Error::Internal(format!("cumulate state metadata: {e}")))?;
        let open = self.open_batch()?;
        Ok(Some(
            StateSnapshot::new(STATE_FORMAT, meta)
                .with_batch(OPEN, open)
                .with_nested(SLICES, slices),
        ))
    }

    fn restore(&mut self, state: &StateSnapshot) -> Result<()> {
        state.expect_format(STATE_FORMAT)?;
        let meta: CumulateMeta = state.meta_as()?;
        if meta.spec != self.spec {
            return Err(Error::config(
                "checkpoint",
                format!(
                    "the job changed incompatibly with its saved state: the cumulating window \
                     operator was {:?}, now {:?} (start without the checkpoint, or restore the \
                     old job)",
                    meta.spec, self.spec
                ),
            ));
        }
        self.slices.restore(&state.nested(SLICES, meta.slices)?)?;
        self.load_open(state.batch(OPEN)?)
    }
}

impl CumulateWindowOperator {
    /// The open windows as a batch: keys, `start`, `next_end`, then one column per partial.
    /// Between watermarks no slice is pending: every closed slice ends before `next_end`.
    fn open_batch(&self) -> Result<RecordBatch> {
        let mut columns = self
            .rows
            .convert_rows(self.open.values().map(|c| c.key.row()))
            .map_err(Error::arrow("saving cumulating window keys"))?;
        let mut fields: Vec<Field> = self.schema.fields()[..self.key_count]
            .iter()
            .map(|field| field.as_ref().clone())
            .collect();
        let times = [
            (
                "start",
                self.open.values().map(|c| c.start).collect::<Int64Array>(),
            ),
            ("next_end", self.open.values().map(|c| c.next_end).collect()),
        ];
        for (name, values) in times {
            fields.push(Field::new(name, DataType::Int64, false));
            columns.push(Arc::new(values));
        }
        for (i, partial) in self.partials.iter().enumerate() {
            fields.push(Field::new(
                format!("partial_{i}"),
                partial.data_type(),
                true,
            ));
            columns.push(partial::column(
                self.open.values().map(|c| c.values[i]),
                &partial.data_type(),
            ));
        }
        debug_assert!(self.open.values().all(|c| c.pending.is_empty()));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(Error::arrow("saving cumulating windows"))
    }

    fn load_open(&mut self, batch: &RecordBatch) -> Result<()> {
        let width = self.key_count + 2 + self.partials.len();
        if batch.num_columns() != width {
            return Err(Error::Internal(format!(
                "{STATE_FORMAT} state has {} columns, this job keeps {width}",
                batch.num_columns()
            )));
        }
        let keys = self
            .rows
            .convert_columns(&batch.columns()[..self.key_count])
            .map_err(Error::arrow("restoring cumulating window keys"))?;
        let starts = batch.column(self.key_count).as_primitive::<Int64Type>();
        let next_ends = batch.column(self.key_count + 1).as_primitive::<Int64Type>();
        let columns = &batch.columns()[self.key_count + 2..];
        self.open.clear();
        self.by_key.clear();
        self.next_id = 0;
        for row in 0..batch.num_rows() {
            let values = self.read(columns, row);
            let key = keys.row(row).owned();
            self.open_window(key, starts.value(row), next_ends.value(row), values);
        }
        Ok(())
    }

    /// Row `row` of the partial columns `columns`.
    fn read(&self, columns: &[ArrayRef], row: usize) -> Vec<Scalar> {
        self.partials
            .iter()
            .zip(columns)
            .map(|(partial, column)| partial.read(column, row))
            .collect()
    }

    /// Opens `key`'s window from `start`, next emitted at `next_end`, holding `values`; its id.
    fn open_window(
        &mut self,
        key: OwnedRow,
        start: i64,
        next_end: i64,
        values: Vec<Scalar>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.by_key.insert((key.clone(), start), id);
        self.open.insert(
            id,
            Cumulation {
                key,
                start,
                next_end,
                values,
                pending: Vec::new(),
            },
        );
        id
    }
}
