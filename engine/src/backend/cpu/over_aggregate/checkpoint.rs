//! The CPU OVER aggregator's checkpoint state: every key's frame rows (for MIN and MAX only
//! their candidates carry a value: the others can never be an answer), and the running float
//! sums as they were (a sum rebuilt from the rows could differ in its last bits from one that
//! values have entered and left, and a restored job must answer exactly as the uninterrupted
//! one). Unbounded frames keep no rows: their totals are saved, one row per key and aggregate
//! (a checkpoint from before unbounded frames existed simply has none).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, UInt32Type, UInt64Type};
use serde::{Deserialize, Serialize};

use super::CpuOverAggregator;
use super::frame_rows::{Restored, Running, Total};
use crate::aggregate::NumericKind;
use crate::error::{Error, Result};
use crate::state::StateSnapshot;

/// The layout of this aggregator's checkpoint state.
const STATE_FORMAT: &str = "cpu-over/1";
const ROWS: &str = "rows";
const SUMS: &str = "sums";
const TOTALS: &str = "totals";

#[derive(Debug, Serialize, Deserialize)]
struct OverMeta {
    aggregates: usize,
    next_sweep: i64,
}

impl CpuOverAggregator {
    pub(super) fn save(&self) -> Result<StateSnapshot> {
        let count = self.plan.aggregates.len();
        let (mut keys, mut frames, mut times) = (Vec::new(), Vec::new(), Vec::new());
        let mut ints: Vec<Vec<Option<i64>>> = vec![Vec::new(); count];
        let mut floats: Vec<Vec<Option<f64>>> = vec![Vec::new(); count];
        let (mut sum_keys, mut sum_aggregates, mut sums) = (Vec::new(), Vec::new(), Vec::new());
        let mut totals = Totals::default();
        for (key, key_frames) in &self.keys {
            let key = *key;
            for (g, ((_, members), rows)) in self.groups.iter().zip(key_frames).enumerate() {
                if rows.is_unbounded() {
                    for (&i, running) in members.iter().zip(&rows.running) {
                        totals.push(key, i, rows.len(), running);
                    }
                    continue;
                }
                let (n, front) = (rows.times.len(), rows.front());
                keys.extend(std::iter::repeat_n(key, n));
                frames.extend(std::iter::repeat_n(g as u32, n));
                times.extend(rows.times.iter().copied());
                for i in 0..count {
                    let j = members.iter().position(|&m| m == i);
                    match j.map(|j| &rows.running[j]) {
                        Some(Running::Int(column)) => ints[i].extend(column.saved(front, n)),
                        Some(Running::Float(column)) => {
                            floats[i].extend(column.saved(front, n));
                            sum_keys.push(key);
                            sum_aggregates.push(i as u32);
                            sums.push(column.sum.finite);
                        }
                        Some(Running::Rows) | None => {}
                    }
                    // Columns of other frames (and COUNT(*)) hold nulls on this frame's rows.
                    let filled = keys.len();
                    ints[i].resize(filled, None);
                    floats[i].resize(filled, None);
                }
            }
        }
        let mut fields = vec![
            Field::new("key", DataType::UInt64, false),
            Field::new("frame", DataType::UInt32, false),
            Field::new("time", DataType::Int64, false),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(keys)),
            Arc::new(UInt32Array::from(frames)),
            Arc::new(Int64Array::from(times)),
        ];
        for (i, (aggregate, _)) in self.plan.aggregates.iter().enumerate() {
            let (data_type, column): (DataType, ArrayRef) = match aggregate.input {
                Some(NumericKind::Float) => (
                    DataType::Float64,
                    Arc::new(Float64Array::from(std::mem::take(&mut floats[i]))),
                ),
                _ => (
                    DataType::Int64,
                    Arc::new(Int64Array::from(std::mem::take(&mut ints[i]))),
                ),
            };
            fields.push(Field::new(format!("a{i}"), data_type, true));
            columns.push(column);
        }
        let rows = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(Error::arrow("saving OVER frames"))?;
        let sums = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("key", DataType::UInt64, false),
                Field::new("aggregate", DataType::UInt32, false),
                Field::new("sum", DataType::Float64, false),
            ])),
            vec![
                Arc::new(UInt64Array::from(sum_keys)),
                Arc::new(UInt32Array::from(sum_aggregates)),
                Arc::new(Float64Array::from(sums)),
            ],
        )
        .map_err(Error::arrow("saving OVER sums"))?;
        let meta = serde_json::to_value(OverMeta {
            aggregates: count,
            next_sweep: self.next_sweep,
        })
        .map_err(|e| Error::Internal(format!("OVER state metadata: {e}")))?;
        Ok(StateSnapshot::new(STATE_FORMAT, meta)
            .with_batch(ROWS, rows)
            .with_batch(SUMS, sums)
            .with_batch(TOTALS, totals.finish()?))
    }

    pub(super) fn load(&mut self, state: &StateSnapshot) -> Result<()> {
        state.expect_format(STATE_FORMAT)?;
        let meta: OverMeta = state.meta_as()?;
        let count = self.plan.aggregates.len();
        if meta.aggregates != count {
            return Err(Error::config(
                "checkpoint",
                format!(
                    "the saved OVER state has {} aggregates; the job now has {count}",
                    meta.aggregates
                ),
            ));
        }
        let rows = state.batch(ROWS)?;
        let column = |i: usize| rows.column(i);
        let keys = typed::<UInt64Type>(column(0), "key")?;
        let frames = typed::<UInt32Type>(column(1), "frame")?;
        let times = typed::<Int64Type>(column(2), "time")?;
        let mut values = Vec::with_capacity(count);
        for row in 0..rows.num_rows() {
            let g = frames.value(row) as usize;
            let Some((_, members)) = self.groups.get(g) else {
                return Err(corrupt("a frame index past the plan's frames"));
            };
            values.clear();
            for &i in members {
                let array = column(3 + i);
                values.push(match self.plan.aggregates[i].0.input {
                    None => Restored::None,
                    Some(NumericKind::Int) => {
                        let a = typed::<Int64Type>(array, "value")?;
                        Restored::Int(a.is_valid(row).then(|| a.value(row)))
                    }
                    Some(NumericKind::Float) => {
                        let a = typed::<Float64Type>(array, "value")?;
                        Restored::Float(a.is_valid(row).then(|| a.value(row)))
                    }
                });
            }
            let slot = self.slot(keys.value(row)) as usize;
            self.keys[slot].1[g].push_values(times.value(row), &values);
        }
        let sums = state.batch(SUMS)?;
        let keys = typed::<UInt64Type>(sums.column(0), "key")?;
        let aggregates = typed::<UInt32Type>(sums.column(1), "aggregate")?;
        let values = typed::<Float64Type>(sums.column(2), "sum")?;
        for row in 0..sums.num_rows() {
            let i = aggregates.value(row) as usize;
            let place = self
                .groups
                .iter()
                .enumerate()
                .find_map(|(g, (_, members))| members.iter().position(|&m| m == i).map(|j| (g, j)));
            let slot = self.slots.get(&keys.value(row)).map(|&s| s as usize);
            let (Some((g, j)), Some(slot)) = (place, slot) else {
                return Err(corrupt("a sum of an unknown key or aggregate"));
            };
            if let Running::Float(column) = &mut self.keys[slot].1[g].running[j] {
                column.sum.finite = values.value(row);
            }
        }
        if let Ok(totals) = state.batch(TOTALS) {
            self.load_totals(totals)?;
        }
        self.next_sweep = meta.next_sweep;
        Ok(())
    }

    /// Restores the unbounded frames' totals.
    fn load_totals(&mut self, totals: &RecordBatch) -> Result<()> {
        let keys = typed::<UInt64Type>(totals.column(0), "key")?;
        let aggregates = typed::<UInt32Type>(totals.column(1), "aggregate")?;
        let rows = typed::<UInt64Type>(totals.column(2), "rows")?;
        let non_null = typed::<UInt64Type>(totals.column(3), "non_null")?;
        let ints = typed::<Int64Type>(totals.column(4), "int")?;
        let floats = typed::<Float64Type>(totals.column(5), "float")?;
        let special: Vec<&arrow::array::PrimitiveArray<UInt32Type>> = (6..9)
            .map(|c| typed::<UInt32Type>(totals.column(c), "special"))
            .collect::<Result<_>>()?;
        for row in 0..totals.num_rows() {
            let i = aggregates.value(row) as usize;
            let Some((g, j)) = self
                .groups
                .iter()
                .enumerate()
                .find_map(|(g, (_, members))| members.iter().position(|&m| m == i).map(|j| (g, j)))
            else {
                return Err(corrupt("a total of an unknown aggregate"));
            };
            let slot = self.slot(keys.value(row)) as usize;
            let frame = &mut self.keys[slot].1[g];
            if !frame.is_unbounded() {
                return Err(corrupt("a total of a bounded frame"));
            }
            frame.set_len(rows.value(row));
            let special = [0, 1, 2].map(|c| special[c].value(row));
            match &mut frame.running[j] {
                Running::Rows => {}
                Running::Int(column) => column.restore_total(Total {
                    non_null: non_null.value(row),
                    value: ints.is_valid(row).then(|| ints.value(row)),
                    special,
                }),
                Running::Float(column) => column.restore_total(Total {
                    non_null: non_null.value(row),
                    value: floats.is_valid(row).then(|| floats.value(row)),
                    special,
                }),
            }
        }
        Ok(())
    }
}

/// The unbounded frames' totals being saved: one row per key and aggregate.
#[derive(Debug, Default)]
struct Totals {
    keys: Vec<u64>,
    aggregates: Vec<u32>,
    rows: Vec<u64>,
    non_null: Vec<u64>,
    ints: Vec<Option<i64>>,
    floats: Vec<Option<f64>>,
    special: [Vec<u32>; 3],
}

impl Totals {
    fn push(&mut self, key: u64, aggregate: usize, rows: u64, running: &Running) {
        self.keys.push(key);
        self.aggregates.push(aggregate as u32);
        self.rows.push(rows);
        let (non_null, int, float, special) = match running {
            Running::Rows => (0, None, None, [0; 3]),
            Running::Int(column) => {
                let total = column.total();
                (total.non_null, total.value, None, total.special)
            }
            Running::Float(column) => {
                let total = column.total();
                (total.non_null, None, total.value, total.special)
            }
        };
        self.non_null.push(non_null);
        self.ints.push(int);
        self.floats.push(float);
        for (list, count) in self.special.iter_mut().zip(special) {
            list.push(count);
        }
    }

    fn finish(self) -> Result<RecordBatch> {
        let [positive, negative, nans] = self.special;
        let counts = |name: &str| Field::new(name, DataType::UInt32, false);
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("key", DataType::UInt64, false),
                Field::new("aggregate", DataType::UInt32, false),
                Field::new("rows", DataType::UInt64, false),
                Field::new("non_null", DataType::UInt64, false),
                Field::new("int", DataType::Int64, true),
                Field::new("float", DataType::Float64, true),
                counts("positive_infinities"),
                counts("negative_infinities"),
                counts("nans"),
            ])),
            vec![
                Arc::new(UInt64Array::from(self.keys)),
                Arc::new(UInt32Array::from(self.aggregates)),
                Arc::new(UInt64Array::from(self.rows)),
                Arc::new(UInt64Array::from(self.non_null)),
                Arc::new(Int64Array::from(self.ints)),
                Arc::new(Float64Array::from(self.floats)),
                Arc::new(UInt32Array::from(positive)),
                Arc::new(UInt32Array::from(negative)),
                Arc::new(UInt32Array::from(nans)),
            ],
        )
        .map_err(Error::arrow("saving OVER totals"))
    }
}

fn typed<'a, T: arrow::datatypes::ArrowPrimitiveType>(
    array: &'a ArrayRef,
    what: &str,
) -> Result<&'a arrow::array::PrimitiveArray<T>> {
    array.as_primitive_opt::<T>().ok_or_else(|| {
        corrupt(&format!(
            "the `{what}` column has type {}",
            array.data_type()
        ))
    })
}

fn corrupt(what: &str) -> Error {
    Error::Internal(format!("corrupt OVER checkpoint state: {what}"))
}
