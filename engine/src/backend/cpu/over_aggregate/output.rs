//! One aggregate's answers while a call runs: values and validity, per shard, merged back
//! into row order.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array};
use arrow::buffer::NullBuffer;

use super::by_key::RowsByKey;
use super::running::Answer;

/// One aggregate's output column.
#[derive(Debug)]
pub(super) enum Output {
    Int(Vec<i64>, Vec<bool>),
    Float(Vec<f64>, Vec<bool>),
}

impl Output {
    /// `rows` unset values, integers or floats.
    pub(super) fn new(integer: bool, rows: usize) -> Self {
        if integer {
            Output::Int(vec![0; rows], vec![false; rows])
        } else {
            Output::Float(vec![0.0; rows], vec![false; rows])
        }
    }

    /// An unset column of the same type, `rows` long.
    pub(super) fn like(&self, rows: usize) -> Self {
        Output::new(matches!(self, Output::Int(..)), rows)
    }

    /// These answers (in `by_key`'s key order) into `dest` in row order, from `offset` on.
    pub(super) fn scatter_into(&self, by_key: &RowsByKey, dest: &mut Output, offset: usize) {
        fn put<T: Copy>(by_key: &RowsByKey, from: (&[T], &[bool]), to: (&mut [T], &mut [bool])) {
            for ((value, valid), p) in to.0.iter_mut().zip(to.1.iter_mut()).zip(by_key.positions())
            {
                *value = from.0[p];
                *valid = from.1[p];
            }
        }
        match (self, dest) {
            (Output::Int(v, ok), Output::Int(dv, dok)) => {
                put(by_key, (v, ok), (&mut dv[offset..], &mut dok[offset..]))
            }
            (Output::Float(v, ok), Output::Float(dv, dok)) => {
                put(by_key, (v, ok), (&mut dv[offset..], &mut dok[offset..]))
            }
            _ => {}
        }
    }

    #[inline]
    pub(super) fn set(&mut self, at: usize, answer: Answer) {
        match (self, answer) {
            (Output::Int(values, valid), Answer::Int(v)) => {
                values[at] = v;
                valid[at] = true;
            }
            (Output::Float(values, valid), Answer::Float(v)) => {
                values[at] = v;
                valid[at] = true;
            }
            // The plan fixes each output's type; a null (or, never, a mismatch) stays unset.
            (Output::Int(_, valid) | Output::Float(_, valid), _) => valid[at] = false,
        }
    }

    /// The shards' answers in row order: row `r` is the next unread answer of shard
    /// `shard_of[r]`.
    pub(super) fn merge(parts: &[Output], shard_of: &[u8]) -> Output {
        fn take<T: Copy>(parts: Vec<(&[T], &[bool])>, shard_of: &[u8]) -> (Vec<T>, Vec<bool>) {
            let mut next = vec![0usize; parts.len()];
            let mut values = Vec::with_capacity(shard_of.len());
            let mut valid = Vec::with_capacity(shard_of.len());
            for &s in shard_of {
                let s = s as usize;
                let (v, ok) = parts[s];
                values.push(v[next[s]]);
                valid.push(ok[next[s]]);
                next[s] += 1;
            }
            (values, valid)
        }
        match parts.first() {
            Some(Output::Float(..)) => {
                let parts = parts
                    .iter()
                    .map(|p| match p {
                        Output::Float(v, ok) => (v.as_slice(), ok.as_slice()),
                        Output::Int(_, ok) => (&[][..], ok.as_slice()),
                    })
                    .collect();
                let (values, valid) = take(parts, shard_of);
                Output::Float(values, valid)
            }
            _ => {
                let parts = parts
                    .iter()
                    .map(|p| match p {
                        Output::Int(v, ok) => (v.as_slice(), ok.as_slice()),
                        Output::Float(_, ok) => (&[][..], ok.as_slice()),
                    })
                    .collect();
                let (values, valid) = take(parts, shard_of);
                Output::Int(values, valid)
            }
        }
    }

    /// The column as Arrow; `nullable: false` drops the (all-true) validity.
    pub(super) fn finish(self, nullable: bool) -> ArrayRef {
        let nulls = |valid: Vec<bool>| nullable.then(|| NullBuffer::from(valid));
        match self {
            Output::Int(values, valid) => Arc::new(Int64Array::new(values.into(), nulls(valid))),
            Output::Float(values, valid) => {
                Arc::new(Float64Array::new(values.into(), nulls(valid)))
            }
        }
    }
}
