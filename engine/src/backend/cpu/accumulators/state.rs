//! Accumulators as checkpoint columns: each aggregate's partial state out, and back in.
//!
//! Per aggregate `i`: `count(*)` keeps `a{i}_count`; sum, min, max, avg and count(column) keep
//! `a{i}_value` (i64 or f64) and `a{i}_count`; count_distinct keeps `a{i}_values`, the set as
//! a list of the 64-bit value keys. Restoring a row recreates the slot exactly, so a restored
//! job's results equal an uninterrupted run's bit for bit.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Float64Array, Int64Array, ListArray, ListBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, UInt64Type};

use super::{Accumulators, Column, DistinctSet};
use crate::aggregate::{AggregateFunction, NumericKind};
use crate::backend::AggregatePlan;
use crate::error::{Error, Result};

/// The state columns of `plan`, in order.
pub fn state_fields(plan: &[AggregatePlan]) -> Vec<Field> {
    let mut fields = Vec::new();
    for (i, a) in plan.iter().enumerate() {
        match (a.function, a.input) {
            (AggregateFunction::CountDistinct, _) => fields.push(Field::new(
                format!("a{i}_values"),
                DataType::List(Arc::new(Field::new("item", DataType::UInt64, false))),
                false,
            )),
            (_, None) => fields.push(Field::new(format!("a{i}_count"), DataType::Int64, false)),
            (_, Some(kind)) => {
                let t = match kind {
                    NumericKind::Int => DataType::Int64,
                    NumericKind::Float => DataType::Float64,
                };
                fields.push(Field::new(format!("a{i}_value"), t, false));
                fields.push(Field::new(format!("a{i}_count"), DataType::Int64, false));
            }
        }
    }
    fields
}

impl Accumulators {
    /// The partial state of `slots`, as columns of [`state_fields`].
    pub fn state_columns(&self, slots: &[u32]) -> Vec<ArrayRef> {
        let mut out: Vec<ArrayRef> = Vec::new();
        let counts = |c: &[i64]| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(
                slots.iter().map(|&s| c[s as usize]),
            ))
        };
        for column in &self.columns {
            match column {
                Column::Rows(c) => out.push(counts(c)),
                Column::Int(f) => {
                    out.push(Arc::new(Int64Array::from_iter_values(
                        slots.iter().map(|&s| f.values[s as usize]),
                    )));
                    out.push(counts(&f.counts));
                }
                Column::Float(f) => {
                    out.push(Arc::new(Float64Array::from_iter_values(
                        slots.iter().map(|&s| f.values[s as usize]),
                    )));
                    out.push(counts(&f.counts));
                }
                Column::Distinct(sets) => {
                    let mut list = ListBuilder::new(UInt64Builder::new())
                        .with_field(Arc::new(Field::new("item", DataType::UInt64, false)));
                    for &s in slots {
                        let mut values: Vec<u64> = sets[s as usize].iter().copied().collect();
                        // Sorted, so equal state gives equal checkpoint bytes.
                        values.sort_unstable();
                        list.values().append_slice(&values);
                        list.append(true);
                    }
                    out.push(Arc::new(list.finish()));
                }
            }
        }
        out
    }

    /// Appends a slot holding row `row` of `state`; returns the slot.
    pub fn push_state(&mut self, state: &StateColumns<'_>, row: usize) -> u32 {
        let slot = self.push_slot() as usize;
        for (column, saved) in self.columns.iter_mut().zip(&state.columns) {
            match (column, saved) {
                (Column::Rows(c), Saved::Rows(n)) => c[slot] = n.value(row),
                (Column::Int(f), Saved::Int(v, n)) => {
                    f.values[slot] = v.value(row);
                    f.counts[slot] = n.value(row);
                }
                (Column::Float(f), Saved::Float(v, n)) => {
                    f.values[slot] = v.value(row);
                    f.counts[slot] = n.value(row);
                }
                (Column::Distinct(sets), Saved::Distinct(list)) => {
                    let values = list.value(row);
                    let values = values.as_primitive::<UInt64Type>();
                    let mut set =
                        DistinctSet::with_capacity_and_hasher(values.len(), Default::default());
                    set.extend(values.values().iter().copied());
                    sets[slot] = set;
                }
                // `StateColumns::new` checked the shapes against the same plan.
                _ => {}
            }
        }
        slot as u32
    }
}

/// Typed views of saved state columns, checked once against the plan.
#[derive(Debug)]
pub struct StateColumns<'a> {
    columns: Vec<Saved<'a>>,
}

#[derive(Debug)]
enum Saved<'a> {
    Rows(&'a Int64Array),
    Int(&'a Int64Array, &'a Int64Array),
    Float(&'a Float64Array, &'a Int64Array),
    Distinct(&'a ListArray),
}

impl<'a> StateColumns<'a> {
    /// Views `columns` (laid out as [`state_fields`] of `plan`).
    pub fn new(plan: &[AggregatePlan], columns: &'a [ArrayRef]) -> Result<Self> {
        let mismatch = || Error::Internal("saved window state does not match the plan".into());
        let mut next = columns.iter();
        let mut take = || next.next().ok_or_else(mismatch);
        let int = |a: &'a ArrayRef| a.as_primitive_opt::<Int64Type>().ok_or_else(mismatch);
        let float = |a: &'a ArrayRef| a.as_primitive_opt::<Float64Type>().ok_or_else(mismatch);
        let mut saved = Vec::with_capacity(plan.len());
        for a in plan {
            saved.push(match (a.function, a.input) {
                (AggregateFunction::CountDistinct, _) => {
                    Saved::Distinct(take()?.as_list_opt::<i32>().ok_or_else(mismatch)?)
                }
                (_, None) => Saved::Rows(int(take()?)?),
                (_, Some(NumericKind::Int)) => Saved::Int(int(take()?)?, int(take()?)?),
                (_, Some(NumericKind::Float)) => Saved::Float(float(take()?)?, int(take()?)?),
            });
        }
        Ok(StateColumns { columns: saved })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ColumnValues;

    fn plan(function: AggregateFunction, input: Option<NumericKind>) -> AggregatePlan {
        AggregatePlan { function, input }
    }

    #[test]
    fn slots_survive_a_trip_through_state_columns() {
        let aggs = [
            plan(AggregateFunction::Count, None),
            plan(AggregateFunction::Sum, Some(NumericKind::Int)),
            plan(AggregateFunction::Min, Some(NumericKind::Float)),
            plan(AggregateFunction::CountDistinct, Some(NumericKind::Int)),
        ];
        let mut acc = Accumulators::new(&aggs);
        let (a, b) = (acc.push_slot(), acc.push_slot());
        let ints = [5i64, 5, -3];
        let floats = [2.5f64, -0.0, 1.0];
        let inputs = [
            ColumnValues::Rows,
            ColumnValues::Int(&ints, None),
            ColumnValues::Float(&floats, None),
            ColumnValues::Int(&ints, None),
        ];
        acc.update(&[0, 1, 2], &[a, a, b], &inputs).expect("update");
        let columns = acc.state_columns(&[a, b]);
        assert_eq!(columns.len(), state_fields(&aggs).len());
        let mut restored = Accumulators::new(&aggs);
        let view = StateColumns::new(&aggs, &columns).expect("view");
        let (ra, rb) = (restored.push_state(&view, 0), restored.push_state(&view, 1));
        let before = acc.finish(&[a, b]);
        let after = restored.finish(&[ra, rb]);
        assert_eq!(before, after);
        // Restored slots keep accumulating like the originals.
        let more = [
            ColumnValues::Rows,
            ColumnValues::Int(&ints, None),
            ColumnValues::Float(&floats, None),
            ColumnValues::Int(&ints, None),
        ];
        acc.update(&[2], &[a], &more).expect("update");
        restored.update(&[2], &[ra], &more).expect("update");
        assert_eq!(acc.finish(&[a]), restored.finish(&[ra]));
        let distinct = after[3].as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(distinct, vec![1, 1]);
        assert!(StateColumns::new(&aggs, &columns[..2]).is_err());
    }
}
