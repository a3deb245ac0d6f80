//! The window operator: keys rows, hands them to a backend's window state, emits closed windows.
//!
//! Output rows carry the key columns, `window_start`, `window_end` and one column per aggregate.
//! Each (key, window) row is emitted exactly once, when the watermark reaches `window_end`,
//! sorted by `window_end`, `window_start`, then key (first appearance order for non-integer keys).

mod checkpoint;

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use super::aggregate_input::{column_values, widen};
use super::{Emitted, Operator};
use crate::aggregate::{AggregateSpec, NumericKind};
use crate::backend::{
    AggregateInput, AggregatePlan, Backend, WindowAggregatePlan, WindowAggregator,
};
use crate::error::{Error, Result};
use crate::event_time::event_time_values;
use crate::keys::KeyEncoder;
use crate::window::WindowSpec;

/// What a window operator computes: `GROUP BY keys, window` with some aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowAggregateSpec {
    /// Key columns (one or more; integers or strings).
    pub keys: Vec<String>,
    /// Tumbling, hopping or session.
    pub window: WindowSpec,
    /// Aggregates, in output order.
    pub aggregates: Vec<AggregateSpec>,
}

/// Windowed aggregation over keyed rows, state held by a [`Backend`].
#[derive(Debug)]
pub struct WindowAggregateOperator {
    spec: WindowAggregateSpec,
    keys: KeyEncoder,
    time_index: usize,
    inputs: Vec<Option<(usize, NumericKind)>>,
    state: Box<dyn WindowAggregator>,
    schema: SchemaRef,
    input_schema: SchemaRef,
    key_ids: Vec<u64>,
    /// Where the backend runs this plan (`Backend::placement`).
    placement: String,
}

impl WindowAggregateOperator {
    /// Checks `spec` against `input` and creates the state on `backend`.
    /// `time_column` is the event-time column; `setting` names the job key in errors.
    pub fn try_new(
        spec: &WindowAggregateSpec,
        input: SchemaRef,
        time_column: &str,
        backend: &dyn Backend,
        setting: &str,
    ) -> Result<Self> {
        spec.window.validate(&format!("{setting}.window"))?;
        if spec.aggregates.is_empty() {
            return Err(Error::config(
                format!("{setting}.aggregates"),
                "at least one aggregate is required",
            ));
        }
        let time_index = input.index_of(time_column).map_err(|_| {
            Error::config(
                setting,
                format!("the event-time column `{time_column}` is not in this operator's input (was it projected away?)"),
            )
        })?;
        let keys = KeyEncoder::new(&input, &spec.keys, &format!("{setting}.key"))?;
        let mut fields: Vec<Field> = keys.fields().to_vec();
        let timestamp = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        fields.push(Field::new("window_start", timestamp.clone(), false));
        fields.push(Field::new("window_end", timestamp, false));
        let mut inputs = Vec::with_capacity(spec.aggregates.len());
        let mut plans = Vec::with_capacity(spec.aggregates.len());
        for (i, aggregate) in spec.aggregates.iter().enumerate() {
            let kind = aggregate.resolve(&input, &format!("{setting}.aggregates[{i}]"))?;
            let field = aggregate.output_field(kind);
            if fields.iter().any(|f| f.name() == field.name()) {
                return Err(Error::config(
                    format!("{setting}.aggregates[{i}].as"),
                    format!("output column `{}` appears twice", field.name()),
                ));
            }
            fields.push(field);
            let index = match &aggregate.column {
                Some(c) => Some(
                    input
                        .index_of(c)
                        .map_err(Error::arrow("resolving an aggregate column"))?,
                ),
                None => None,
            };
            inputs.push(index.zip(kind));
            plans.push(AggregatePlan {
                function: aggregate.function,
                input: kind,
            });
        }
        let plan = WindowAggregatePlan {
            window: spec.window,
            aggregates: plans,
        };
        let state = backend.window_aggregator(&plan)?;
        Ok(WindowAggregateOperator {
            spec: spec.clone(),
            placement: backend.placement(&plan),
            keys,
            time_index,
            inputs,
            state,
            schema: Arc::new(Schema::new(fields)),
            input_schema: input,
            key_ids: Vec::new(),
        })
    }

    /// The schema of late rows (this operator's input).
    pub fn input_schema(&self) -> SchemaRef {
        self.input_schema.clone()
    }

    /// Open (key, window) groups held by the backend.
    pub fn open_groups(&self) -> usize {
        self.state.open_groups()
    }

    fn closed_to_batch(&self, closed: crate::backend::ClosedWindows) -> Result<RecordBatch> {
        // Emission order: window_end, window_start, key id. Sorting the keys themselves with
        // their row (not indices into the columns, which costs a cache miss per comparison),
        // then `take`.
        let mut keyed: Vec<(i64, i64, i64, u32)> = (0..closed.len())
            .map(|i| {
                (
                    closed.ends[i],
                    closed.starts[i],
                    closed.keys[i] as i64,
                    i as u32,
                )
            })
            .collect();
        if keyed.len() > 1 << 15 {
            use rayon::slice::ParallelSliceMut;
            keyed.par_sort_unstable();
        } else {
            keyed.sort_unstable();
        }
        let order: Vec<u32> = keyed.iter().map(|k| k.3).collect();
        let sorted_keys: Vec<u64> = order.iter().map(|&i| closed.keys[i as usize]).collect();
        let indices = UInt32Array::from(order);
        let mut columns = self.keys.decode(&sorted_keys)?;
        let starts = TimestampMillisecondArray::from(closed.starts).with_timezone("UTC");
        let ends = TimestampMillisecondArray::from(closed.ends).with_timezone("UTC");
        for array in [Arc::new(starts) as ArrayRef, Arc::new(ends)]
            .into_iter()
            .chain(closed.aggregates)
        {
            columns.push(
                take(&array, &indices, None).map_err(Error::arrow("ordering closed windows"))?,
            );
        }
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(Error::arrow("building window output"))
    }
}

impl Operator for WindowAggregateOperator {
    fn name(&self) -> &'static str {
        "window"
    }

    fn placement(&self) -> Option<&str> {
        Some(&self.placement)
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&mut self, batch: RecordBatch, out: &mut Emitted) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut key_ids = std::mem::take(&mut self.key_ids);
        let keys = match self.keys.borrow(&batch)? {
            Some(ids) => ids,
            None => {
                self.keys.encode(&batch, &mut key_ids)?;
                &key_ids
            }
        };
        let ts = event_time_values(batch.column(self.time_index))?;
        let widened = widen(&self.inputs, &batch)?;
        let columns = column_values(&widened);
        let input = AggregateInput {
            keys,
            ts,
            columns: &columns,
        };
        let late = self.state.accumulate(&input)?;
        self.key_ids = key_ids;
        if !late.is_empty() {
            let indices = UInt32Array::from(late);
            let columns = batch
                .columns()
                .iter()
                .map(|c| take(c, &indices, None))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(Error::arrow("collecting late rows"))?;
            out.late.push(
                RecordBatch::try_new(batch.schema(), columns)
                    .map_err(Error::arrow("collecting late rows"))?,
            );
        }
        Ok(())
    }

    fn keeps_state(&self) -> bool {
        true
    }

    fn snapshot(&mut self) -> Result<Option<crate::state::StateSnapshot>> {
        self.save().map(Some)
    }

    fn restore(&mut self, state: &crate::state::StateSnapshot) -> Result<()> {
        self.load(state)
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Emitted) -> Result<()> {
        let closed = self.state.fire(watermark)?;
        if !closed.is_empty() {
            out.batches.push(self.closed_to_batch(closed)?);
        }
        Ok(())
    }
}
