//! The OVER operator: every input row out again, with aggregates over the rows of its key in
//! a trailing frame (`RANGE` of time or `ROWS`), once the watermark passes the row's time.
//!
//! Flink's event-time OVER semantics: a row waits until the watermark passes its time (then
//! every row of that time has arrived, so ties are complete), and rows leave in (time,
//! arrival) order. A row whose time the watermark has already passed is late: it changes
//! nothing and goes to the late rows. Output columns: the input's, then one per aggregate.

mod checkpoint;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow::compute::{concat, filter, filter_record_batch, interleave};
use arrow::datatypes::{Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use super::aggregate_input::{column_values, widen};
use super::{Emitted, Operator};
use crate::aggregate::{AggregateFunction, AggregateSpec, NumericKind};
use crate::backend::{AggregateInput, AggregatePlan, Backend, OverAggregatePlan, OverAggregator};
use crate::error::{Error, Result};
use crate::event_time::event_time_values;
use crate::frame::OverFrame;
use crate::keys::KeyEncoder;

/// What an OVER operator computes: `agg(x) OVER (PARTITION BY keys ORDER BY time <frame>)`
/// for each aggregate; frames may differ between aggregates, the keys may not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverAggregateSpec {
    /// `PARTITION BY` columns (one or more; integers or strings).
    pub partition_by: Vec<String>,
    /// The aggregates, in output order.
    pub aggregates: Vec<OverAggregate>,
}

/// One OVER aggregate: the function, its input and output name, and its frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverAggregate {
    /// `function(column) AS alias`.
    pub aggregate: AggregateSpec,
    /// The rows it covers.
    pub frame: OverFrame,
}

/// Rows waiting for the watermark to pass their time, as they arrived.
#[derive(Debug)]
struct Pending {
    batch: RecordBatch,
    keys: Vec<u64>,
    widened: Vec<Option<ArrayRef>>,
}

/// Per-row aggregates over trailing frames, state held by a [`Backend`].
#[derive(Debug)]
pub struct OverAggregateOperator {
    spec: OverAggregateSpec,
    keys: KeyEncoder,
    time_index: usize,
    inputs: Vec<Option<(usize, NumericKind)>>,
    state: Box<dyn OverAggregator>,
    schema: SchemaRef,
    input_schema: SchemaRef,
    pending: Vec<Pending>,
    /// The latest watermark: rows before it are late.
    watermark: i64,
    placement: String,
}

impl OverAggregateOperator {
    /// Checks `spec` against `input` and creates the state on `backend`.
    /// `time_column` is the event-time column (the ORDER BY); `setting` names the job key.
    pub fn try_new(
        spec: &OverAggregateSpec,
        input: SchemaRef,
        time_column: &str,
        backend: &dyn Backend,
        setting: &str,
    ) -> Result<Self> {
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
        let keys = KeyEncoder::new(
            &input,
            &spec.partition_by,
            &format!("{setting}.partition_by"),
        )?;
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut inputs = Vec::with_capacity(spec.aggregates.len());
        let mut plans = Vec::with_capacity(spec.aggregates.len());
        for (i, over) in spec.aggregates.iter().enumerate() {
            let key = format!("{setting}.aggregates[{i}]");
            over.frame.validate(&key)?;
            let aggregate = &over.aggregate;
            if aggregate.function == AggregateFunction::CountDistinct {
                return Err(Error::config(
                    format!("{key}.fn"),
                    "count_distinct is not supported over OVER frames yet (count, sum, min, max and avg are)",
                ));
            }
            let kind = aggregate.resolve(&input, &key)?;
            let field = aggregate.output_field(kind);
            if fields.iter().any(|f| f.name() == field.name()) {
                return Err(Error::config(
                    format!("{key}.as"),
                    format!(
                        "output column `{}` appears twice (an OVER operator keeps its input's columns)",
                        field.name()
                    ),
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
            plans.push((
                AggregatePlan {
                    function: aggregate.function,
                    input: kind,
                },
                over.frame,
            ));
        }
        let plan = OverAggregatePlan { aggregates: plans };
        Ok(OverAggregateOperator {
            spec: spec.clone(),
            state: backend.over_aggregator(&plan)?,
            placement: backend.over_placement(),
            keys,
            time_index,
            inputs,
            schema: Arc::new(Schema::new(fields)),
            input_schema: input,
            pending: Vec::new(),
            watermark: i64::MIN,
        })
    }

    /// The schema of late rows (this operator's input).
    pub fn input_schema(&self) -> SchemaRef {
        self.input_schema.clone()
    }

    /// Keys with frame state now.
    pub fn open_keys(&self) -> usize {
        self.state.keys()
    }

    /// Rows waiting for the watermark.
    pub fn pending_rows(&self) -> usize {
        self.pending.iter().map(|p| p.batch.num_rows()).sum()
    }

    /// Keeps `batch` until the watermark passes its rows.
    fn hold(&mut self, batch: RecordBatch) -> Result<()> {
        let mut keys = Vec::with_capacity(batch.num_rows());
        self.keys.encode(&batch, &mut keys)?;
        let widened = widen(&self.inputs, &batch)?;
        self.pending.push(Pending {
            batch,
            keys,
            widened,
        });
        Ok(())
    }

    /// The rows before `watermark`, in (time, arrival) order, with their aggregates; the
    /// rest stay pending.
    fn release(&mut self, watermark: i64) -> Result<Option<RecordBatch>> {
        let mut ready: Vec<(i64, u32, u32)> = Vec::new();
        let mut released = vec![0usize; self.pending.len()];
        for (b, pending) in self.pending.iter().enumerate() {
            let ts = event_time_values(pending.batch.column(self.time_index))?;
            let before = ready.len();
            for (row, &t) in ts.iter().enumerate() {
                if t < watermark {
                    ready.push((t, b as u32, row as u32));
                }
            }
            released[b] = ready.len() - before;
        }
        if ready.is_empty() {
            return Ok(None);
        }
        let (mut columns, widened) = if ready.is_sorted() {
            // Time order is arrival order (an in-order source): each batch's rows are sliced
            // and the slices joined instead of gathered row by row.
            self.concat(&ready)?
        } else {
            if ready.len() > 1 << 15 {
                use rayon::slice::ParallelSliceMut;
                ready.par_sort_unstable();
            } else {
                ready.sort_unstable();
            }
            self.gather(&ready)?
        };
        let keys: Vec<u64> = ready
            .iter()
            .map(|&(_, b, row)| self.pending[b as usize].keys[row as usize])
            .collect();
        let ts: Vec<i64> = ready.iter().map(|r| r.0).collect();
        let values = column_values(&widened);
        columns.extend(self.state.aggregate(&AggregateInput {
            keys: &keys,
            ts: &ts,
            columns: &values,
        })?);
        self.keep_unreleased(watermark, &released)?;
        RecordBatch::try_new(self.schema.clone(), columns)
            .map(Some)
            .map_err(Error::arrow("building OVER output"))
    }

    /// As [`Self::gather`] for `ready` rows in arrival order: runs of consecutive rows of
    /// one batch are sliced, the slices joined.
    fn concat(&self, ready: &[(i64, u32, u32)]) -> Result<Gathered> {
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for &(_, b, row) in ready {
            let (b, row) = (b as usize, row as usize);
            match runs.last_mut() {
                Some((rb, first, len)) if *rb == b && *first + *len == row => *len += 1,
                _ => runs.push((b, row, 1)),
            }
        }
        self.assemble(|arrays| {
            let slices: Vec<ArrayRef> = runs
                .iter()
                .map(|&(b, first, len)| arrays[b].slice(first, len))
                .collect();
            match slices.as_slice() {
                [one] => Ok(one.clone()),
                _ => {
                    let refs: Vec<&dyn Array> = slices.iter().map(|a| a.as_ref()).collect();
                    concat(&refs).map_err(Error::arrow("joining OVER rows"))
                }
            }
        })
    }

    /// The `ready` rows' columns and widened aggregate inputs, in `ready`'s order.
    fn gather(&self, ready: &[(i64, u32, u32)]) -> Result<Gathered> {
        let indices: Vec<(usize, usize)> = ready
            .iter()
            .map(|&(_, b, row)| (b as usize, row as usize))
            .collect();
        self.assemble(|arrays| {
            interleave(arrays, &indices).map_err(Error::arrow("ordering OVER rows"))
        })
    }

    /// Every input column and widened aggregate input, made by `combine` from the pending
    /// batches' arrays of it (in batch order).
    fn assemble(&self, combine: impl Fn(&[&dyn Array]) -> Result<ArrayRef>) -> Result<Gathered> {
        let columns = (0..self.input_schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> = self
                    .pending
                    .iter()
                    .map(|p| p.batch.column(c).as_ref())
                    .collect();
                combine(&arrays)
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let widened = (0..self.inputs.len())
            .map(|a| {
                let arrays: Option<Vec<&dyn Array>> = self
                    .pending
                    .iter()
                    .map(|p| p.widened[a].as_deref())
                    .collect();
                arrays.map(|arrays| combine(&arrays)).transpose()
            })
            .collect::<Result<Vec<Option<ArrayRef>>>>()?;
        Ok((columns, widened))
    }

    /// Drops released rows from the pending batches (`released[b]` of batch `b` went out).
    fn keep_unreleased(&mut self, watermark: i64, released: &[usize]) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        for (p, &gone) in pending.into_iter().zip(released) {
            if gone == 0 {
                self.pending.push(p);
                continue;
            }
            if gone == p.batch.num_rows() {
                continue;
            }
            let ts = event_time_values(p.batch.column(self.time_index))?;
            let keep = BooleanArray::from_iter(ts.iter().map(|&t| Some(t >= watermark)));
            let keys = p
                .keys
                .iter()
                .zip(ts)
                .filter(|&(_, &t)| t >= watermark)
                .map(|(&k, _)| k)
                .collect();
            let widened = p
                .widened
                .iter()
                .map(|w| {
                    w.as_ref()
                        .map(|w| filter(w, &keep))
                        .transpose()
                        .map_err(Error::arrow("keeping OVER rows"))
                })
                .collect::<Result<Vec<_>>>()?;
            self.pending.push(Pending {
                batch: filter_record_batch(&p.batch, &keep)
                    .map_err(Error::arrow("keeping OVER rows"))?,
                keys,
                widened,
            });
        }
        Ok(())
    }
}

/// A released batch's columns and widened aggregate inputs.
type Gathered = (Vec<ArrayRef>, Vec<Option<ArrayRef>>);

impl Operator for OverAggregateOperator {
    fn name(&self) -> &'static str {
        "over"
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
        let watermark = self.watermark;
        let ts = event_time_values(batch.column(self.time_index))?;
        if !ts.iter().any(|&t| t < watermark) {
            return self.hold(batch);
        }
        let late = BooleanArray::from_iter(ts.iter().map(|&t| Some(t < watermark)));
        let on_time = arrow::compute::not(&late).map_err(Error::arrow("splitting late rows"))?;
        out.late.push(
            filter_record_batch(&batch, &late).map_err(Error::arrow("collecting late rows"))?,
        );
        let kept = filter_record_batch(&batch, &on_time).map_err(Error::arrow("keeping rows"))?;
        if kept.num_rows() > 0 {
            self.hold(kept)?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Emitted) -> Result<()> {
        if watermark <= self.watermark {
            return Ok(());
        }
        self.watermark = watermark;
        if let Some(batch) = self.release(watermark)? {
            out.batches.push(batch);
        }
        self.state.expire(watermark);
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
}

#[cfg(test)]
mod tests;
