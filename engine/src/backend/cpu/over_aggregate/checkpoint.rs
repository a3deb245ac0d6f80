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

use std::collections::{HashMap, HashSet};

use super::history::History;
use super::running::{Num, Total};
use super::shard::{Accs, Group, Member, Rows, Shard};
use super::{CpuOverAggregator, shard_of};
use crate::aggregate::{AggregateFunction, NumericKind};
use crate::backend::ColumnValues;
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
    /// Unused since expiry stopped sweeping; kept so that older checkpoints still read.
    next_sweep: i64,
}

impl CpuOverAggregator {
    pub(super) fn save(&self) -> Result<StateSnapshot> {
        let count = self.plan.aggregates.len();
        let mut saved = Saved {
            ints: vec![Vec::new(); count],
            floats: vec![Vec::new(); count],
            ..Saved::default()
        };
        let mut totals = Totals::default();
        for shard in &self.shards {
            for (g, group) in self.groups.iter().enumerate() {
                match &shard.rows[g] {
                    Rows::Shared(history) => saved.history(shard, g, group, history, None),
                    Rows::PerKey(keys) => {
                        for (slot, history) in keys.iter().enumerate() {
                            if shard.keys[slot].is_some() {
                                saved.history(shard, g, group, history, Some(slot as u32));
                            }
                        }
                    }
                    Rows::None => {
                        for (slot, key) in shard.keys.iter().enumerate() {
                            let Some(key) = *key else { continue };
                            for member in &group.members {
                                totals.push(key, shard, g, member, slot);
                            }
                        }
                    }
                }
                if group.frame.is_unbounded() {
                    continue;
                }
                // Float sums as they ran (not as the rows would sum again).
                for member in &group.members {
                    let Accs::Float(accs) = &shard.accs[member.aggregate] else {
                        continue;
                    };
                    if !matches!(
                        member.function,
                        AggregateFunction::Sum | AggregateFunction::Avg
                    ) {
                        continue;
                    }
                    for (slot, key) in shard.keys.iter().enumerate() {
                        if let Some(key) = *key
                            && shard.counts[g][slot] > 0
                        {
                            saved.sum_keys.push(key);
                            saved.sum_aggregates.push(member.aggregate as u32);
                            saved.sums.push(accs[slot].sum.finite);
                        }
                    }
                }
            }
        }
        let Saved {
            keys,
            frames,
            times,
            mut ints,
            mut floats,
            sum_keys,
            sum_aggregates,
            sums,
        } = saved;
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
            next_sweep: i64::MIN,
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
        let keys = typed::<UInt64Type>(rows.column(0), "key")?;
        let frames = typed::<UInt32Type>(rows.column(1), "frame")?;
        let times = typed::<Int64Type>(rows.column(2), "time")?;
        let mut columns = Vec::with_capacity(count);
        for (i, (aggregate, _)) in self.plan.aggregates.iter().enumerate() {
            let array = rows.column(3 + i);
            columns.push(match aggregate.input {
                None => ColumnValues::Rows,
                Some(NumericKind::Int) => {
                    let a = typed::<Int64Type>(array, "value")?;
                    ColumnValues::Int(a.values(), a.nulls())
                }
                Some(NumericKind::Float) => {
                    let a = typed::<Float64Type>(array, "value")?;
                    ColumnValues::Float(a.values(), a.nulls())
                }
            });
        }
        let inputs: Vec<&ColumnValues<'_>> = columns.iter().collect();
        // Each frame's rows in time order (a shared history drops rows from its front),
        // each key's in the order saved.
        let mut order: Vec<usize> = (0..rows.num_rows()).collect();
        order.sort_by_key(|&row| (frames.value(row), times.value(row)));
        for row in order {
            let g = frames.value(row) as usize;
            let Some(group) = self.groups.get(g) else {
                return Err(corrupt("a frame index past the plan's frames"));
            };
            if group.frame.is_unbounded() {
                return Err(corrupt("a row of an unbounded frame"));
            }
            let (key, time) = (keys.value(row), times.value(row));
            let shard = shard_of(key, self.shards.len());
            let shard = &mut self.shards[shard];
            let slot = shard.slot(key, &self.groups);
            shard.push_row(g, group, slot, time, &inputs, row);
            self.latest = self.latest.max(time);
        }
        let sums = state.batch(SUMS)?;
        let keys = typed::<UInt64Type>(sums.column(0), "key")?;
        let aggregates = typed::<UInt32Type>(sums.column(1), "aggregate")?;
        let values = typed::<Float64Type>(sums.column(2), "sum")?;
        for row in 0..sums.num_rows() {
            let key = keys.value(row);
            let which = shard_of(key, self.shards.len());
            let shard = &mut self.shards[which];
            let slot = shard.slots.get(&key).map(|&s| s as usize);
            let accs = shard.accs.get_mut(aggregates.value(row) as usize);
            let (Some(slot), Some(Accs::Float(accs))) = (slot, accs) else {
                return Err(corrupt("a sum of an unknown key or aggregate"));
            };
            accs[slot].sum.finite = values.value(row);
        }
        if let Ok(totals) = state.batch(TOTALS) {
            self.load_totals(totals)?;
        }
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
            let Some((g, function)) = self.groups.iter().enumerate().find_map(|(g, group)| {
                group
                    .members
                    .iter()
                    .find(|m| m.aggregate == i)
                    .map(|m| (g, m.function))
            }) else {
                return Err(corrupt("a total of an unknown aggregate"));
            };
            if !self.groups[g].frame.is_unbounded() {
                return Err(corrupt("a total of a bounded frame"));
            }
            let key = keys.value(row);
            let which = shard_of(key, self.shards.len());
            let shard = &mut self.shards[which];
            let slot = shard.slot(key, &self.groups) as usize;
            shard.counts[g][slot] = rows.value(row);
            let special = [0, 1, 2].map(|c| special[c].value(row));
            match &mut shard.accs[i] {
                Accs::Rows => {}
                Accs::Int(accs) => accs[slot].restore_total(
                    function,
                    Total {
                        non_null: non_null.value(row),
                        value: ints.is_valid(row).then(|| ints.value(row)),
                        special,
                    },
                ),
                Accs::Float(accs) => accs[slot].restore_total(
                    function,
                    Total {
                        non_null: non_null.value(row),
                        value: floats.is_valid(row).then(|| floats.value(row)),
                        special,
                    },
                ),
            }
        }
        Ok(())
    }
}

/// The frames' rows being saved, one checkpoint row per frame row.
#[derive(Debug, Default)]
struct Saved {
    keys: Vec<u64>,
    frames: Vec<u32>,
    times: Vec<i64>,
    /// Per plan aggregate (the column of its input type is filled, the other left empty).
    ints: Vec<Vec<Option<i64>>>,
    floats: Vec<Vec<Option<f64>>>,
    sum_keys: Vec<u64>,
    sum_aggregates: Vec<u32>,
    sums: Vec<f64>,
}

impl Saved {
    /// The rows of `history`, frame `g` of `shard`: a shared one's (`slot: None`, each row
    /// names its slot) or one slot's own.
    fn history(
        &mut self,
        shard: &Shard,
        g: usize,
        group: &Group,
        history: &History,
        slot: Option<u32>,
    ) {
        let nulls: HashSet<(u64, u32)> = history.nulls.iter().copied().collect();
        // MIN and MAX candidates by (slot, row number): only those carry a value.
        let mut candidates: HashMap<(u32, u64, usize), u64> = HashMap::new();
        for member in &group.members {
            let mut note = |s: usize, seq: u64, bits: u64| {
                candidates.insert((s as u32, seq, member.aggregate), bits);
            };
            let slots: Vec<usize> = match slot {
                Some(s) => vec![s as usize],
                None => (0..shard.keys.len()).collect(),
            };
            match &shard.accs[member.aggregate] {
                Accs::Int(accs) if extreme(member.function) => {
                    for s in slots {
                        for &(seq, v) in &accs[s].extremes {
                            note(s, seq, v.to_bits());
                        }
                    }
                }
                Accs::Float(accs) if extreme(member.function) => {
                    for s in slots {
                        for &(seq, v) in &accs[s].extremes {
                            note(s, seq, Num::to_bits(v));
                        }
                    }
                }
                _ => {}
            }
        }
        for i in 0..history.len() {
            let (seq, time, shared_slot) = history.row(i);
            let s = slot.unwrap_or(shared_slot);
            let Some(key) = shard.keys.get(s as usize).copied().flatten() else {
                continue;
            };
            self.keys.push(key);
            self.frames.push(g as u32);
            self.times.push(time);
            for (m, member) in group.members.iter().enumerate() {
                let null = nulls.contains(&(seq, m as u32));
                let bits = if extreme(member.function) {
                    candidates.get(&(s, seq, member.aggregate)).copied()
                } else if null {
                    None
                } else {
                    Some(member.kept.map_or(0, |k| history.kept[k][i]))
                };
                match shard.accs[member.aggregate] {
                    Accs::Rows => {}
                    Accs::Int(_) => self.ints[member.aggregate].push(bits.map(i64::from_bits)),
                    Accs::Float(_) => {
                        self.floats[member.aggregate].push(bits.map(<f64 as Num>::from_bits))
                    }
                }
            }
            // Columns of other frames (and COUNT(*)) hold nulls on this frame's rows.
            let filled = self.keys.len();
            for (ints, floats) in self.ints.iter_mut().zip(&mut self.floats) {
                ints.resize(filled, None);
                floats.resize(filled, None);
            }
        }
    }
}

fn extreme(function: AggregateFunction) -> bool {
    matches!(function, AggregateFunction::Min | AggregateFunction::Max)
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
    fn push(&mut self, key: u64, shard: &Shard, g: usize, member: &Member, slot: usize) {
        self.keys.push(key);
        self.aggregates.push(member.aggregate as u32);
        self.rows.push(shard.counts[g][slot]);
        let (non_null, int, float, special) = match &shard.accs[member.aggregate] {
            Accs::Rows => (0, None, None, [0; 3]),
            Accs::Int(accs) => {
                let total = accs[slot].total(member.function);
                (total.non_null, total.value, None, total.special)
            }
            Accs::Float(accs) => {
                let total = accs[slot].total(member.function);
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
