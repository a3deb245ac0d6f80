//! The CPU backend's window state as a checkpoint batch: one row per open group.
//!
//! Columns: `key` (the key id), `start`, `end` (the window's or session's bounds), then the
//! accumulators' partial state (`accumulators/state.rs`). Rows carry no partition: a restored
//! job may run on a different number of threads, so every row is re-partitioned by its key.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, UInt64Type};
use serde::{Deserialize, Serialize};

use super::accumulators::{StateColumns, state_fields};
use crate::backend::WindowAggregatePlan;
use crate::error::{Error, Result};
use crate::state::StateSnapshot;

/// What a CPU aggregator keeps besides its groups.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct CpuMeta {
    /// Every window ending at or before this has fired.
    pub fired_through: i64,
}

/// Open groups collected window by window (or partition by partition), then packed.
#[derive(Debug, Default)]
pub(super) struct GroupsOut {
    pub keys: Vec<u64>,
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
    /// Per window: the accumulators' state columns of its groups.
    pub parts: Vec<Vec<ArrayRef>>,
}

impl GroupsOut {
    /// The snapshot in `format`.
    pub fn into_snapshot(
        self,
        format: &str,
        plan: &WindowAggregatePlan,
        fired_through: i64,
    ) -> Result<StateSnapshot> {
        let accumulators = state_fields(&plan.aggregates);
        let mut fields = vec![
            Field::new("key", DataType::UInt64, false),
            Field::new("start", DataType::Int64, false),
            Field::new("end", DataType::Int64, false),
        ];
        fields.extend(accumulators.iter().cloned());
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(self.keys)),
            Arc::new(Int64Array::from(self.starts)),
            Arc::new(Int64Array::from(self.ends)),
        ];
        for (c, field) in accumulators.iter().enumerate() {
            let arrays: Vec<&dyn Array> = self.parts.iter().map(|p| p[c].as_ref()).collect();
            columns.push(if arrays.is_empty() {
                arrow::array::new_empty_array(field.data_type())
            } else {
                arrow::compute::concat(&arrays).map_err(Error::arrow("packing window state"))?
            });
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(Error::arrow("packing window state"))?;
        let meta = serde_json::to_value(CpuMeta { fired_through })
            .map_err(|e| Error::Internal(format!("window state metadata: {e}")))?;
        Ok(StateSnapshot::new(format, meta).with_batch("groups", batch))
    }
}

/// A saved `groups` batch, viewed with its types checked.
#[derive(Debug)]
pub(super) struct GroupsIn<'a> {
    pub keys: &'a [u64],
    pub starts: &'a [i64],
    pub ends: &'a [i64],
    pub accumulators: StateColumns<'a>,
}

impl<'a> GroupsIn<'a> {
    /// Views the groups of `state` (written in `format` for `plan`) and its metadata.
    pub fn read(
        state: &'a StateSnapshot,
        format: &str,
        plan: &WindowAggregatePlan,
    ) -> Result<(Self, CpuMeta)> {
        state.expect_format(format)?;
        let meta: CpuMeta = state.meta_as()?;
        let batch = state.batch("groups")?;
        let mismatch = || Error::Internal("saved CPU window state has the wrong columns".into());
        if batch.num_columns() != 3 + state_fields(&plan.aggregates).len() {
            return Err(mismatch());
        }
        let groups = GroupsIn {
            keys: batch
                .column(0)
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(mismatch)?
                .values(),
            starts: batch
                .column(1)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(mismatch)?
                .values(),
            ends: batch
                .column(2)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(mismatch)?
                .values(),
            accumulators: StateColumns::new(&plan.aggregates, &batch.columns()[3..])?,
        };
        Ok((groups, meta))
    }
}
