//! The CPU OVER aggregator against hand-checked frames and a brute-force reference that
//! recomputes every row's frame from all rows seen so far.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{Float64Type, Int64Type};

use super::CpuOverAggregator;
use crate::aggregate::{AggregateFunction, NumericKind};
use crate::backend::test_support::Rng;
use crate::backend::{
    AggregateInput, AggregatePlan, ColumnValues, OverAggregatePlan, OverAggregator,
};
use crate::frame::OverFrame;

const RANGE_10: OverFrame = OverFrame::Range { preceding: 10 };
const ROWS_2: OverFrame = OverFrame::Rows { preceding: 2 };

fn plan(aggregates: &[(AggregateFunction, Option<NumericKind>, OverFrame)]) -> OverAggregatePlan {
    OverAggregatePlan {
        aggregates: aggregates
            .iter()
            .map(|&(function, input, frame)| (AggregatePlan { function, input }, frame))
            .collect(),
    }
}

/// One call of `agg` over the rows `keys`/`ts` with the aggregates' inputs `columns`.
fn answer(
    agg: &mut CpuOverAggregator,
    keys: &[u64],
    ts: &[i64],
    columns: &[ColumnValues<'_>],
) -> Vec<ArrayRef> {
    agg.aggregate(&AggregateInput { keys, ts, columns })
        .expect("test step")
}

/// Values of an output column as `Option<f64>` (integers widened; they stay small here).
fn values(array: &ArrayRef) -> Vec<Option<f64>> {
    (0..array.len())
        .map(|i| {
            array
                .is_valid(i)
                .then(|| match array.as_primitive_opt::<Int64Type>() {
                    Some(a) => a.value(i) as f64,
                    None => array.as_primitive::<Float64Type>().value(i),
                })
        })
        .collect()
}

#[test]
fn range_frames_include_ties_and_reach_back_inclusively() {
    use AggregateFunction::*;
    let mut agg = CpuOverAggregator::new(plan(&[
        (Count, None, RANGE_10),
        (Sum, Some(NumericKind::Int), RANGE_10),
        (Max, Some(NumericKind::Int), RANGE_10),
    ]));
    // Key 1 at 0, 10, 10, 21; key 2 at 5. Row at 10 sees 0 (10 - 10 = 0, inclusive) and
    // both rows at 10; row at 21 sees only itself (11 is the bound).
    let keys = [1, 2, 1, 1, 1];
    let ts = [0, 5, 10, 10, 21];
    let amounts = [4, 100, 1, 7, 3];
    let columns = [
        ColumnValues::Rows,
        ColumnValues::Int(&amounts, None),
        ColumnValues::Int(&amounts, None),
    ];
    let out = answer(&mut agg, &keys, &ts, &columns);
    let f = |v: &[f64]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
    assert_eq!(values(&out[0]), f(&[1.0, 1.0, 3.0, 3.0, 1.0]));
    assert_eq!(values(&out[1]), f(&[4.0, 100.0, 12.0, 12.0, 3.0]));
    assert_eq!(values(&out[2]), f(&[4.0, 100.0, 7.0, 7.0, 3.0]));
}

#[test]
fn rows_frames_count_rows_not_time_and_carry_across_calls() {
    use AggregateFunction::*;
    let mut agg = CpuOverAggregator::new(plan(&[
        (Count, None, ROWS_2),
        (Min, Some(NumericKind::Float), ROWS_2),
        (Avg, Some(NumericKind::Float), ROWS_2),
    ]));
    let call = |agg: &mut CpuOverAggregator, ts: &[i64], v: &[f64], nulls: Option<&NullBuffer>| {
        let keys = vec![7u64; ts.len()];
        let columns = [
            ColumnValues::Rows,
            ColumnValues::Float(v, nulls),
            ColumnValues::Float(v, nulls),
        ];
        answer(agg, &keys, ts, &columns)
            .iter()
            .map(values)
            .collect::<Vec<_>>()
    };
    let first = call(&mut agg, &[1, 1], &[5.0, 3.0], None);
    assert_eq!(
        first[0],
        vec![Some(1.0), Some(2.0)],
        "ties are ordered, not merged"
    );
    assert_eq!(first[1], vec![Some(5.0), Some(3.0)]);
    // Third and fourth rows: frames (5, 3, null) and (3, null, 8).
    let nulls = NullBuffer::from(vec![false, true]);
    let second = call(&mut agg, &[2, 3], &[0.0, 8.0], Some(&nulls));
    assert_eq!(second[0], vec![Some(3.0), Some(3.0)]);
    assert_eq!(second[1], vec![Some(3.0), Some(3.0)]);
    assert_eq!(second[2], vec![Some(4.0), Some(5.5)]);
}

#[test]
fn an_aggregate_over_nulls_only_is_null_and_count_is_zero() {
    use AggregateFunction::*;
    let mut agg = CpuOverAggregator::new(plan(&[
        (Count, Some(NumericKind::Int), RANGE_10),
        (Sum, Some(NumericKind::Int), RANGE_10),
    ]));
    let v = [1i64];
    let nulls = NullBuffer::from(vec![false]);
    let columns = [
        ColumnValues::Int(&v, Some(&nulls)),
        ColumnValues::Int(&v, Some(&nulls)),
    ];
    let out = answer(&mut agg, &[1], &[0], &columns);
    assert_eq!(values(&out[0]), vec![Some(0.0)]);
    assert_eq!(values(&out[1]), vec![None]);
    assert_eq!(out[0].null_count(), 0, "COUNT is never null");
}

#[test]
fn an_infinity_that_leaves_the_frame_leaves_a_finite_sum() {
    let mut agg = CpuOverAggregator::new(plan(&[(
        AggregateFunction::Sum,
        Some(NumericKind::Float),
        OverFrame::Rows { preceding: 1 },
    )]));
    let v = [f64::INFINITY, 2.0, 3.0];
    let columns = [ColumnValues::Float(&v, None)];
    let out = answer(&mut agg, &[1, 1, 1], &[0, 1, 2], &columns);
    assert_eq!(
        values(&out[0]),
        vec![Some(f64::INFINITY), Some(f64::INFINITY), Some(5.0)]
    );
}

#[test]
fn expiry_drops_keys_whose_rows_left_every_frame() {
    let mut agg = CpuOverAggregator::new(plan(&[(AggregateFunction::Count, None, RANGE_10)]));
    let columns = [ColumnValues::Rows];
    answer(&mut agg, &[1, 2], &[0, 15], &columns);
    // A row at 11 or later sees back to 1 at most: key 1's row at 0 is gone, and its key.
    agg.expire(11);
    assert_eq!(agg.keys(), 1);
    agg.expire(30);
    assert_eq!(agg.keys(), 0);
}

#[test]
fn unbounded_frames_keep_every_row_through_expiry() {
    use AggregateFunction::*;
    let mut agg = CpuOverAggregator::new(plan(&[
        (Count, None, OverFrame::RangeUnbounded),
        (Sum, Some(NumericKind::Int), OverFrame::RowsUnbounded),
        (Min, Some(NumericKind::Int), OverFrame::RowsUnbounded),
        (Count, None, RANGE_10),
    ]));
    let columns = |v: &'static [i64]| vec![ColumnValues::Int(v, None); 4];
    let out = answer(&mut agg, &[1, 1], &[0, 0], &columns(&[5, -3]));
    // RANGE: both rows at time 0 see each other; ROWS: the first sees itself only.
    assert_eq!(values(&out[0]), [Some(2.0), Some(2.0)]);
    assert_eq!(values(&out[1]), [Some(5.0), Some(2.0)]);
    assert_eq!(values(&out[2]), [Some(5.0), Some(-3.0)]);
    agg.expire(1_000_000);
    assert_eq!(agg.keys(), 1, "an unbounded frame never expires");
    let out = answer(&mut agg, &[1], &[2_000_000], &columns(&[7]));
    assert_eq!(values(&out[0]), [Some(3.0)]);
    assert_eq!(values(&out[1]), [Some(9.0)]);
    assert_eq!(values(&out[2]), [Some(-3.0)]);
    assert_eq!(
        values(&out[3]),
        [Some(1.0)],
        "the bounded frame lost the old rows"
    );
}

/// One row of the brute-force reference.
#[derive(Clone, Copy)]
struct Seen {
    key: u64,
    ts: i64,
    value: Option<i64>,
}

/// Every row's frame recomputed from scratch over `seen` (emission order).
fn reference(seen: &[Seen], frame: OverFrame, function: AggregateFunction) -> Vec<Option<f64>> {
    (0..seen.len())
        .map(|i| {
            let me = seen[i];
            let mut same: Vec<&Seen> = seen.iter().filter(|s| s.key == me.key).collect();
            let index = same
                .iter()
                .position(|s| std::ptr::eq(*s, &seen[i]))
                .expect("test step");
            let members: Vec<&Seen> = match frame {
                OverFrame::Range { preceding } => same
                    .drain(..)
                    .filter(|s| s.ts >= me.ts - preceding && s.ts <= me.ts)
                    .collect(),
                OverFrame::Rows { preceding } => {
                    let from = index.saturating_sub(preceding as usize);
                    same[from..=index].to_vec()
                }
                OverFrame::RangeUnbounded => same.drain(..).filter(|s| s.ts <= me.ts).collect(),
                OverFrame::RowsUnbounded => same[..=index].to_vec(),
            };
            let present: Vec<i64> = members.iter().filter_map(|s| s.value).collect();
            match function {
                AggregateFunction::Count => Some(present.len() as f64),
                _ if present.is_empty() => None,
                AggregateFunction::Sum => Some(present.iter().sum::<i64>() as f64),
                AggregateFunction::Min => present.iter().min().map(|&v| v as f64),
                AggregateFunction::Max => present.iter().max().map(|&v| v as f64),
                AggregateFunction::Avg => {
                    Some(present.iter().sum::<i64>() as f64 / present.len() as f64)
                }
                AggregateFunction::CountDistinct => unreachable!(),
            }
        })
        .collect()
}

#[test]
fn random_rows_match_a_brute_force_reference_in_every_frame() {
    use AggregateFunction::*;
    for seed in 1..=6u64 {
        let mut rng = Rng(seed * 7919);
        let frames = [
            OverFrame::Range {
                preceding: rng.below(40) as i64,
            },
            OverFrame::Rows {
                preceding: rng.below(6),
            },
            OverFrame::RangeUnbounded,
            OverFrame::RowsUnbounded,
        ];
        let functions = [Count, Sum, Min, Max, Avg];
        let mut aggregates = Vec::new();
        for frame in frames {
            for function in functions {
                aggregates.push((function, Some(NumericKind::Int), frame));
            }
        }
        let mut agg = CpuOverAggregator::new(plan(&aggregates));
        let mut seen: Vec<Seen> = Vec::new();
        let mut got: Vec<Vec<Option<f64>>> = vec![Vec::new(); aggregates.len()];
        let mut time = 0i64;
        for call in 0..20 {
            let n = rng.below(50) as usize;
            // A call holds every row of its times (the watermark passed them): the next call
            // starts later.
            time += 1;
            let mut ts = Vec::with_capacity(n);
            for _ in 0..n {
                // Nondecreasing times with many ties (emission order).
                time += rng.below(3) as i64;
                ts.push(time);
            }
            let keys: Vec<u64> = (0..n).map(|_| rng.below(4)).collect();
            let ints: Vec<i64> = (0..n).map(|_| rng.below(100) as i64 - 50).collect();
            let valid: Vec<bool> = (0..n).map(|_| rng.below(5) != 0).collect();
            let nulls = NullBuffer::from(valid.clone());
            let columns = vec![ColumnValues::Int(&ints, Some(&nulls)); aggregates.len()];
            let out = answer(&mut agg, &keys, &ts, &columns);
            for (g, array) in got.iter_mut().zip(&out) {
                g.extend(values(array));
            }
            for i in 0..n {
                seen.push(Seen {
                    key: keys[i],
                    ts: ts[i],
                    value: valid[i].then_some(ints[i]),
                });
            }
            if call % 3 == 2 {
                // Expiry must never drop what a later row can see.
                agg.expire(time + 1);
            }
        }
        for (i, &(function, _, frame)) in aggregates.iter().enumerate() {
            let want = reference(&seen, frame, function);
            for (row, (g, w)) in got[i].iter().zip(&want).enumerate() {
                let close = match (g, w) {
                    (Some(g), Some(w)) => (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                    (None, None) => true,
                    _ => false,
                };
                assert!(
                    close,
                    "seed {seed}, {function:?} over {frame:?}, row {row}: {g:?} != {w:?}"
                );
            }
        }
    }
}

/// One call's keys, times, float and integer values.
type Call = (Vec<u64>, Vec<i64>, Vec<f64>, Vec<i64>);

#[test]
fn a_restored_aggregator_answers_as_the_uninterrupted_one() {
    use AggregateFunction::*;
    let aggregates = [
        (Count, None, RANGE_10),
        (Sum, Some(NumericKind::Float), RANGE_10),
        (Max, Some(NumericKind::Float), ROWS_2),
        (Avg, Some(NumericKind::Int), ROWS_2),
        // MIN and MAX keep only their candidates, COUNT(x) only where the nulls are.
        (Min, Some(NumericKind::Int), RANGE_10),
        (Count, Some(NumericKind::Int), RANGE_10),
        // Unbounded frames keep totals only: a float sum with an infinity in it, a best
        // value, counts of rows and of values.
        (Sum, Some(NumericKind::Float), OverFrame::RowsUnbounded),
        (Max, Some(NumericKind::Float), OverFrame::RangeUnbounded),
        (Min, Some(NumericKind::Int), OverFrame::RangeUnbounded),
        (Count, Some(NumericKind::Int), OverFrame::RowsUnbounded),
        (Count, None, OverFrame::RangeUnbounded),
    ];
    let mut rng = Rng(42);
    let calls: Vec<Call> = (0..8)
        .map(|c| {
            let n = 30;
            let keys = (0..n).map(|_| rng.below(5)).collect();
            let ts = (0..n).map(|i| c * 20 + i / 2).collect();
            let floats = (0..n)
                .map(|i| match (c, i) {
                    (1, 3) => f64::INFINITY,
                    _ => (rng.below(1000) as f64) * 0.1 + 1e6,
                })
                .collect();
            let ints = (0..n).map(|_| rng.below(1000) as i64).collect();
            (keys, ts, floats, ints)
        })
        .collect();
    let run = |agg: &mut CpuOverAggregator, call: &Call| {
        let (keys, ts, floats, ints) = call;
        let nulls = NullBuffer::from_iter(ints.iter().map(|v| v % 7 != 0));
        let columns = [
            ColumnValues::Rows,
            ColumnValues::Float(floats, None),
            ColumnValues::Float(floats, None),
            ColumnValues::Int(ints, Some(&nulls)),
            ColumnValues::Int(ints, Some(&nulls)),
            ColumnValues::Int(ints, Some(&nulls)),
            ColumnValues::Float(floats, None),
            ColumnValues::Float(floats, None),
            ColumnValues::Int(ints, Some(&nulls)),
            ColumnValues::Int(ints, Some(&nulls)),
            ColumnValues::Rows,
        ];
        let out = answer(agg, keys, ts, &columns);
        agg.expire(ts[ts.len() - 1] + 1);
        out
    };
    let mut whole = CpuOverAggregator::new(plan(&aggregates));
    let expected: Vec<Vec<ArrayRef>> = calls.iter().map(|c| run(&mut whole, c)).collect();
    let mut first = CpuOverAggregator::new(plan(&aggregates));
    for call in &calls[..4] {
        run(&mut first, call);
    }
    let state = first.snapshot().expect("test step");
    let mut second = CpuOverAggregator::new(plan(&aggregates));
    second.restore(&state).expect("test step");
    assert_eq!(
        second.keys(),
        first.keys(),
        "unbounded keys are never dropped"
    );
    for (call, want) in calls[4..].iter().zip(&expected[4..]) {
        let got = run(&mut second, call);
        assert_eq!(&got, want, "bit for bit, float sums included");
    }
}

#[test]
fn a_large_call_cut_into_pieces_answers_as_small_calls_do() {
    use AggregateFunction::*;
    let aggregates = [
        (Count, None, RANGE_10),
        (Sum, Some(NumericKind::Int), RANGE_10),
        (Min, Some(NumericKind::Int), ROWS_2),
        (Max, Some(NumericKind::Int), RANGE_10),
    ];
    let mut rng = Rng(9);
    // Enough rows that the one call runs in pieces on several threads; few keys, one hot.
    let n = 3 * super::PARALLEL_ROWS;
    let keys: Vec<u64> = (0..n)
        .map(|_| if rng.below(4) == 0 { 0 } else { rng.below(300) })
        .collect();
    let ts: Vec<i64> = (0..n as i64).map(|i| i / 7).collect();
    let ints: Vec<i64> = (0..n).map(|_| rng.below(1000) as i64 - 500).collect();
    let valid: Vec<bool> = (0..n).map(|_| rng.below(9) != 0).collect();
    let nulls = NullBuffer::from(valid);
    let columns = vec![ColumnValues::Int(&ints, Some(&nulls)); aggregates.len()];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("test pool");
    let mut whole = CpuOverAggregator::new(plan(&aggregates)).with_pool(Some(pool.into()));
    let big = answer(&mut whole, &keys, &ts, &columns);
    // The same rows in calls below the parallel size, each ending at a change of time.
    let mut small = CpuOverAggregator::new(plan(&aggregates));
    let mut got: Vec<Vec<Option<f64>>> = vec![Vec::new(); aggregates.len()];
    let mut from = 0;
    while from < n {
        let mut to = (from + 1000).min(n);
        while to < n && ts[to] == ts[to - 1] {
            to += 1;
        }
        let sliced = nulls.slice(from, to - from);
        let part = vec![ColumnValues::Int(&ints[from..to], Some(&sliced)); aggregates.len()];
        let out = answer(&mut small, &keys[from..to], &ts[from..to], &part);
        for (g, array) in got.iter_mut().zip(&out) {
            g.extend(values(array));
        }
        from = to;
    }
    for (i, array) in big.iter().enumerate() {
        assert_eq!(values(array), got[i], "aggregate {i}");
    }
}
