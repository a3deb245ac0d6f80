//! One aggregate's answers while a call runs: values, and validity only once a null answer
//! appears (COUNT never has one, SUM and MAX over non-null inputs neither), per shard,
//! merged back into row order.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array};
use arrow::buffer::NullBuffer;

use super::by_key::RowsByKey;
use super::running::Answer;

/// One aggregate's output column.
#[derive(Debug)]
pub(super) struct Output {
    values: Values,
    /// Per position, whether it has a value; `None` while every answer so far had one.
    valid: Option<Vec<bool>>,
}

/// An output column's values (a null answer leaves a zero).
#[derive(Debug)]
enum Values {
    Int(Vec<i64>),
    Float(Vec<f64>),
}

impl Output {
    /// `rows` unset values, integers or floats.
    pub(super) fn new(integer: bool, rows: usize) -> Self {
        let values = if integer {
            Values::Int(vec![0; rows])
        } else {
            Values::Float(vec![0.0; rows])
        };
        Output {
            values,
            valid: None,
        }
    }

    /// An unset column of the same type, `rows` long.
    pub(super) fn like(&self, rows: usize) -> Self {
        Output::new(matches!(self.values, Values::Int(_)), rows)
    }

    fn len(&self) -> usize {
        match &self.values {
            Values::Int(v) => v.len(),
            Values::Float(v) => v.len(),
        }
    }

    /// These answers (in `by_key`'s key order) into `dest` in row order, from `offset` on.
    pub(super) fn scatter_into(&self, by_key: &RowsByKey, dest: &mut Output, offset: usize) {
        fn put<T: Copy>(by_key: &RowsByKey, from: &[T], to: &mut [T]) {
            for (value, p) in to.iter_mut().zip(by_key.positions()) {
                *value = from[p];
            }
        }
        match (&self.values, &mut dest.values) {
            (Values::Int(v), Values::Int(d)) => put(by_key, v, &mut d[offset..]),
            (Values::Float(v), Values::Float(d)) => put(by_key, v, &mut d[offset..]),
            _ => {}
        }
        if let Some(valid) = &self.valid {
            let len = dest.len();
            let to = dest.valid.get_or_insert_with(|| vec![true; len]);
            put(by_key, valid, &mut to[offset..]);
        }
    }

    #[inline]
    pub(super) fn set(&mut self, at: usize, answer: Answer) {
        match (&mut self.values, answer) {
            (Values::Int(values), Answer::Int(v)) => values[at] = v,
            (Values::Float(values), Answer::Float(v)) => values[at] = v,
            // The plan fixes each output's type; a null (or, never, a mismatch) has no value.
            _ => {
                let len = self.len();
                self.valid.get_or_insert_with(|| vec![true; len])[at] = false;
            }
        }
    }

    /// The shards' answers in row order: row `r` is the next unread answer of shard
    /// `shard_of[r]`.
    pub(super) fn merge(parts: &[Output], shard_of: &[u8]) -> Output {
        fn take<T: Copy>(parts: &[&[T]], shard_of: &[u8]) -> Vec<T> {
            let mut next = vec![0usize; parts.len()];
            let mut merged = Vec::with_capacity(shard_of.len());
            for &s in shard_of {
                let s = s as usize;
                merged.push(parts[s][next[s]]);
                next[s] += 1;
            }
            merged
        }
        let ints: Option<Vec<&[i64]>> = parts
            .iter()
            .map(|p| match &p.values {
                Values::Int(v) => Some(v.as_slice()),
                Values::Float(_) => None,
            })
            .collect();
        let values = match ints {
            Some(ints) => Values::Int(take(&ints, shard_of)),
            None => {
                let floats: Vec<&[f64]> = parts
                    .iter()
                    .map(|p| match &p.values {
                        Values::Float(v) => v.as_slice(),
                        Values::Int(_) => &[],
                    })
                    .collect();
                Values::Float(take(&floats, shard_of))
            }
        };
        let valid = parts.iter().any(|p| p.valid.is_some()).then(|| {
            let all: Vec<Vec<bool>> = parts
                .iter()
                .map(|p| p.valid.clone().unwrap_or_else(|| vec![true; p.len()]))
                .collect();
            let all: Vec<&[bool]> = all.iter().map(Vec::as_slice).collect();
            take(&all, shard_of)
        });
        Output { values, valid }
    }

    /// The column as Arrow.
    pub(super) fn finish(self) -> ArrayRef {
        let nulls = self.valid.map(NullBuffer::from);
        match self.values {
            Values::Int(values) => Arc::new(Int64Array::new(values.into(), nulls)),
            Values::Float(values) => Arc::new(Float64Array::new(values.into(), nulls)),
        }
    }
}
