//! Inputs and result shapes shared by the backend tests: seeded micro-batches over every
//! aggregate's input, and closed windows as comparable rows.

use arrow::array::{Array, AsArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{Float64Type, Int64Type};

use crate::aggregate::{AggregateFunction, NumericKind};
use crate::backend::{AggregatePlan, ClosedWindows, ColumnValues, WindowAggregatePlan};

/// A seeded xorshift generator: deterministic inputs without a dependency.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One micro-batch in the shape a backend receives.
pub(crate) struct Batch {
    pub keys: Vec<u64>,
    pub ts: Vec<i64>,
    pub ints: Vec<i64>,
    pub floats: Vec<f64>,
    pub nulls: Option<NullBuffer>,
    pub watermark: i64,
}

#[derive(Clone, Copy)]
pub(crate) struct Shape {
    pub keys: u64,
    /// Keys spread over the whole u64 range instead of 0..keys.
    pub wide_keys: bool,
    pub rows: usize,
    pub batch: usize,
    /// Event-time span per row (ms) and how far rows may run behind.
    pub step: i64,
    pub disorder: i64,
    pub delay: i64,
}

pub(crate) fn batches(shape: Shape, seed: u64) -> Vec<Batch> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::new();
    let mut produced = 0;
    let mut max_ts = i64::MIN;
    while produced < shape.rows {
        let n = shape.batch.min(shape.rows - produced);
        let mut b = Batch {
            keys: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            ints: Vec::with_capacity(n),
            floats: Vec::with_capacity(n),
            nulls: None,
            watermark: 0,
        };
        let mut valid = Vec::with_capacity(n);
        for i in 0..n {
            let k = rng.below(shape.keys);
            b.keys.push(if shape.wide_keys {
                k.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            } else {
                k
            });
            let t =
                (produced + i) as i64 * shape.step - rng.below(shape.disorder as u64 + 1) as i64;
            b.ts.push(t);
            max_ts = max_ts.max(t);
            b.ints.push(rng.below(2_000_001) as i64 - 1_000_000);
            b.floats.push(match rng.below(600) {
                0..=9 => -0.0,
                10..=19 => 1e12,
                20 => f64::NAN,
                21 => f64::INFINITY,
                22 => f64::NEG_INFINITY,
                _ => (rng.below(1 << 40) as f64 - (1u64 << 39) as f64) / 1024.0,
            });
            valid.push(rng.below(7) != 0);
        }
        b.nulls = Some(NullBuffer::from(valid));
        b.watermark = max_ts - shape.delay;
        produced += n;
        out.push(b);
    }
    out
}

pub(crate) fn every_aggregate() -> Vec<AggregatePlan> {
    use AggregateFunction::*;
    let mut plans = vec![AggregatePlan {
        function: Count,
        input: None,
    }];
    for input in [NumericKind::Int, NumericKind::Float] {
        for function in [Count, Sum, Min, Max, Avg, CountDistinct] {
            plans.push(AggregatePlan {
                function,
                input: Some(input),
            });
        }
    }
    plans
}

/// Closed rows as (key, start, end, rendered aggregates), sorted; plus late rows per batch.
pub(crate) type Rows = Vec<(u64, i64, i64, Vec<Value>)>;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Float(f64),
}

pub(crate) fn rows_of(closed: &ClosedWindows) -> Rows {
    (0..closed.len())
        .map(|i| {
            let values = closed
                .aggregates
                .iter()
                .map(|a| {
                    if a.is_null(i) {
                        Value::Null
                    } else if let Some(ints) = a.as_primitive_opt::<Int64Type>() {
                        Value::Int(ints.value(i))
                    } else {
                        Value::Float(a.as_primitive::<Float64Type>().value(i))
                    }
                })
                .collect();
            (closed.keys[i], closed.starts[i], closed.ends[i], values)
        })
        .collect()
}

/// The aggregate inputs of `plan` over batch `b`: its integer or float column, per aggregate.
pub(crate) fn columns_of<'a>(plan: &WindowAggregatePlan, b: &'a Batch) -> Vec<ColumnValues<'a>> {
    plan.aggregates
        .iter()
        .map(|a| match a.input {
            None => ColumnValues::Rows,
            Some(NumericKind::Int) => ColumnValues::Int(&b.ints, b.nulls.as_ref()),
            Some(NumericKind::Float) => ColumnValues::Float(&b.floats, b.nulls.as_ref()),
        })
        .collect()
}

/// The correctly rounded sum by Shewchuk's exact partials, as Python's `math.fsum`
/// computes it: an algorithm independent of the fixed point.
pub(crate) fn fsum(values: &[f64]) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for &v in values {
        let mut x = v;
        let mut kept = 0;
        for i in 0..partials.len() {
            let mut y = partials[i];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let high = x + y;
            let low = y - (high - x);
            if low != 0.0 {
                partials[kept] = low;
                kept += 1;
            }
            x = high;
        }
        partials.truncate(kept);
        partials.push(x);
    }
    let Some(mut high) = partials.pop() else {
        return 0.0;
    };
    let mut low = 0.0;
    while let Some(y) = partials.pop() {
        let x = high;
        high = x + y;
        let y_rounded = high - x;
        low = y - y_rounded;
        if low != 0.0 {
            break;
        }
    }
    // Half-way cases: make the rounding of the rest match the sign of what is left.
    if let Some(&next) = partials.last()
        && ((low < 0.0 && next < 0.0) || (low > 0.0 && next > 0.0))
    {
        let y = low * 2.0;
        let x = high + y;
        if y == x - high {
            high = x;
        }
    }
    high
}
