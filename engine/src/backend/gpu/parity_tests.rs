//! GPU against CPU on the same micro-batches: every window kind the GPU runs, every aggregate,
//! nulls, awkward batch sizes, table growth, colliding hashes. The CPU backend is the reference.

use std::collections::BTreeMap;

use super::GpuBackend;
use crate::aggregate::{AggregateFunction, NumericKind};
use crate::backend::test_support::{
    Batch, Rng, Rows, Shape, Value, batches, columns_of, every_aggregate, fsum, rows_of,
};
use crate::backend::{
    AggregateInput, AggregatePlan, Backend, ColumnValues, CpuBackend, WindowAggregatePlan,
    WindowAggregator,
};
use crate::window::WindowSpec;

fn run(
    backend: &dyn Backend,
    plan: &WindowAggregatePlan,
    batches: &[Batch],
) -> (Rows, Vec<Vec<u32>>) {
    let mut agg = backend.window_aggregator(plan).expect("aggregator");
    let mut rows = Rows::new();
    let mut late = Vec::new();
    for b in batches {
        let columns = columns_of(plan, b);
        let input = AggregateInput {
            keys: &b.keys,
            ts: &b.ts,
            columns: &columns,
        };
        late.push(agg.accumulate(&input).expect("accumulate"));
        rows.extend(rows_of(&agg.fire(b.watermark).expect("fire")));
    }
    rows.extend(rows_of(&agg.fire(i64::MAX).expect("final fire")));
    rows.sort_by_key(|r| (r.0, r.1));
    (rows, late)
}

fn assert_same(cpu: &Rows, gpu: &Rows, what: &str) {
    assert_eq!(cpu.len(), gpu.len(), "{what}: closed group count");
    for (c, g) in cpu.iter().zip(gpu) {
        assert_eq!((c.0, c.1, c.2), (g.0, g.1, g.2), "{what}: group");
        for (i, (x, y)) in c.3.iter().zip(&g.3).enumerate() {
            let same = match (x, y) {
                (Value::Float(a), Value::Float(b)) => {
                    (a.is_nan() && b.is_nan())
                        || a.to_bits() == b.to_bits()
                        || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
                }
                _ => x == y,
            };
            assert!(
                same,
                "{what}: group {:?} aggregate {i}: cpu {x:?} gpu {y:?}",
                (c.0, c.1)
            );
        }
    }
}

/// Checks GPU against CPU; returns the late rows the case had (so tests can insist on some).
fn check(window: WindowSpec, shape: Shape, seed: u64, gpu: &GpuBackend) -> usize {
    let what = format!(
        "rows {} batch {} keys {}",
        shape.rows, shape.batch, shape.keys
    );
    check_batches(window, &batches(shape, seed), &what, gpu)
}

fn check_batches(window: WindowSpec, input: &[Batch], label: &str, gpu: &GpuBackend) -> usize {
    let plan = WindowAggregatePlan {
        window,
        aggregates: every_aggregate(),
    };
    assert_eq!(
        gpu.placement(&plan),
        gpu.describe(),
        "{window:?} must run on the GPU"
    );
    let cpu = CpuBackend::with_threads(2).expect("pool");
    let (cpu_rows, cpu_late) = run(&cpu, &plan, input);
    for gpu in variants(gpu) {
        let (gpu_rows, gpu_late) = run(&gpu, &plan, input);
        let what = format!(
            "{window:?} {label} native 64-bit atomics {}",
            gpu.native_int64_atomics()
        );
        assert!(!cpu_rows.is_empty(), "{what}: the case closes no window");
        assert_eq!(cpu_late, gpu_late, "{what}: late rows");
        assert_same(&cpu_rows, &gpu_rows, &what);
    }
    cpu_late.iter().map(Vec::len).sum()
}

/// Both update paths where the adapter has 64-bit atomics (lavapipe does): native, and the
/// 32-bit emulation every adapter can run (which also reads closed rows in a second round
/// trip, the path of fires with many rows).
fn variants(gpu: &GpuBackend) -> Vec<GpuBackend> {
    let mut all = vec![gpu.clone().with_emulated_int64().with_two_trip_reads()];
    if gpu.native_int64_atomics() {
        all.push(gpu.clone());
    }
    all
}

const BASE: Shape = Shape {
    keys: 50,
    wide_keys: false,
    rows: 3_000,
    batch: 500,
    step: 10,
    disorder: 2_000,
    delay: 1_000,
};

const WINDOWS: [WindowSpec; 4] = [
    WindowSpec::Tumbling {
        size: 1_000,
        offset: 0,
    },
    WindowSpec::Tumbling {
        size: 700,
        offset: 123,
    },
    WindowSpec::Hopping {
        size: 3_000,
        slide: 1_000,
        offset: 0,
    },
    WindowSpec::Hopping {
        size: 2_500,
        slide: 1_000,
        offset: -300,
    },
];

#[test]
fn every_window_and_aggregate_matches_the_cpu() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    let features = &gpu.adapter().features;
    assert_eq!(
        gpu.native_int64_atomics(),
        ["shader-int64", "int64-atomic-all", "int64-atomic-min-max"]
            .iter()
            .all(|f| features.contains(f)),
        "native 64-bit atomics are used exactly where the adapter has them"
    );
    for (i, window) in WINDOWS.into_iter().enumerate() {
        check(window, BASE, 11 + i as u64, &gpu);
    }
}

#[test]
fn fifty_windows_per_row_and_many_open_windows() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    // Every row is in 50 windows; a 3 s delay keeps about 80 windows per key open.
    let window = WindowSpec::Hopping {
        size: 5_000,
        slide: 100,
        offset: 0,
    };
    let shape = Shape {
        rows: 2_000,
        batch: 333,
        delay: 3_000,
        ..BASE
    };
    check(window, shape, 29, &gpu);
}

#[test]
fn batch_sizes_around_a_workgroup() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    // One row, exactly one workgroup (256 items), one more, and not a multiple of it.
    for window in [WINDOWS[0], SESSION] {
        for batch in [1, 256, 257, 1_000] {
            let shape = Shape {
                rows: if batch == 1 { 300 } else { 4 * batch },
                batch,
                ..BASE
            };
            check(window, shape, 7, &gpu);
        }
    }
}

#[test]
fn batches_cut_into_many_rounds_match() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    // 77-row rounds: both batch slots alternate within one micro-batch, and each chunk's
    // validity bitmap starts mid-word.
    let gpu = gpu.with_chunk_rows(77);
    let shape = Shape {
        batch: 1_000,
        ..BASE
    };
    for window in [WINDOWS[3], SESSION] {
        check(window, shape, 17, &gpu);
    }
}

#[test]
fn wide_keys_and_many_groups_grow_the_tables() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    // 20k keys across the u64 range: the 4096-slot tables must grow several times mid-batch.
    let shape = Shape {
        keys: 20_000,
        wide_keys: true,
        rows: 60_000,
        batch: 30_000,
        ..BASE
    };
    check(WINDOWS[2], shape, 3, &gpu);
}

#[test]
fn keys_that_all_collide_give_the_same_answers() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    let gpu = gpu.with_colliding_hashes();
    let shape = Shape {
        keys: 6,
        rows: 400,
        batch: 200,
        ..BASE
    };
    for window in [WINDOWS[0], SESSION] {
        check(window, shape, 5, &gpu);
    }
}

#[test]
fn empty_batches_change_nothing() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    let plan = WindowAggregatePlan {
        window: WINDOWS[0],
        aggregates: every_aggregate(),
    };
    let mut agg = gpu.window_aggregator(&plan).expect("aggregator");
    let nothing = Batch {
        keys: Vec::new(),
        ts: Vec::new(),
        ints: Vec::new(),
        floats: Vec::new(),
        nulls: None,
        watermark: 0,
    };
    let columns = columns_of(&plan, &nothing);
    let empty = AggregateInput {
        keys: &[],
        ts: &[],
        columns: &columns,
    };
    assert!(agg.accumulate(&empty).expect("accumulate").is_empty());
    assert!(agg.fire(i64::MAX).expect("fire").is_empty());
    assert_eq!(agg.open_groups(), 0);
}

#[test]
fn every_colliding_group_is_kept() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    let gpu = gpu.with_colliding_hashes();
    let plan = WindowAggregatePlan {
        window: WINDOWS[0],
        aggregates: vec![AggregatePlan {
            function: AggregateFunction::Count,
            input: None,
        }],
    };
    // Ten keys in each of four 1 s windows, one row per (key, window): forty groups of one,
    // all hashing to one slot and fingerprint, so each pass can place only one new group.
    let keys: Vec<u64> = (0..40).map(|i| i % 10).collect();
    let ts: Vec<i64> = (0..40).map(|i| (i / 10) * 1_000).collect();
    let mut agg = gpu.window_aggregator(&plan).expect("aggregator");
    let columns = [ColumnValues::Rows];
    let input = AggregateInput {
        keys: &keys,
        ts: &ts,
        columns: &columns,
    };
    assert!(agg.accumulate(&input).expect("accumulate").is_empty());
    let mut rows = rows_of(&agg.fire(i64::MAX).expect("fire"));
    rows.sort_by_key(|r| (r.0, r.1));
    let expected: Rows = (0..10u64)
        .flat_map(|k| {
            (0..4i64).map(move |w| (k, w * 1_000, w * 1_000 + 1_000, vec![Value::Int(1)]))
        })
        .collect();
    assert_eq!(rows, expected);
}

#[test]
fn a_lost_device_fails_the_job_with_a_message() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    let plan = WindowAggregatePlan {
        window: WINDOWS[0],
        aggregates: every_aggregate(),
    };
    let input = batches(BASE, 23);
    let mut agg = gpu.window_aggregator(&plan).expect("aggregator");
    let b = &input[0];
    let columns = columns_of(&plan, b);
    let batch = AggregateInput {
        keys: &b.keys,
        ts: &b.ts,
        columns: &columns,
    };
    agg.accumulate(&batch).expect("accumulate");
    gpu.context.device.device.destroy();
    let error = agg
        .fire(i64::MAX)
        .expect_err("no result from a lost device");
    assert!(
        matches!(error, crate::error::Error::Gpu(_)),
        "a GPU error, not another kind: {error}"
    );
    assert!(error.to_string().contains("device lost"), "{error}");
}

#[test]
fn a_status_from_before_a_growth_does_not_grow_the_table_again() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    let plan = WindowAggregatePlan {
        window: WINDOWS[0],
        aggregates: vec![AggregatePlan {
            function: AggregateFunction::Count,
            input: None,
        }],
    };
    let mut agg =
        super::GpuWindowAggregator::new(gpu.context.clone(), plan, gpu.tuning).expect("aggregator");
    // Two batches of 20,000 new groups each, both submitted against the first 4096-slot table
    // before either is waited for: both rounds report it full.
    let columns = [ColumnValues::Rows];
    for first in [0u64, 20_000] {
        let keys: Vec<u64> = (first..first + 20_000).collect();
        let ts = vec![500i64; keys.len()];
        let input = AggregateInput {
            keys: &keys,
            ts: &ts,
            columns: &columns,
        };
        assert!(agg.accumulate(&input).expect("accumulate").is_empty());
    }
    let closed = agg.fire(i64::MAX).expect("fire");
    assert_eq!(closed.len(), 40_000);
    // The first batch's rounds grow 4096 → 16,384 → 65,536 slots; the fire, over half full
    // with 40,000 groups, doubles to 131,072. Growing again for the second batch's stale
    // "full" (it ran against the 4096-slot table) would have made 262,144.
    assert!(
        agg.group_capacity() <= 131_072,
        "capacity {}",
        agg.group_capacity()
    );
}

#[test]
fn columns_that_stop_fitting_32_bits_are_uploaded_wide_from_then_on() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    let mut input = batches(BASE, 31);
    // Batch 2: integer inputs beyond i32 and a key beyond u32; batch 4: an event some 2^32
    // windows past the first open one (the watermark stays where the other rows put it).
    input[2].ints[7] = 1 << 40;
    input[2].ints[8] = -(1 << 35);
    input[2].keys[9] = (1 << 33) + 5;
    input[4].ts[3] = 5_000_000_000_000;
    for window in WINDOWS {
        check_batches(window, &input, "wide values mid-stream", &gpu);
    }

    // The same batches switch exactly those columns to 64-bit, at the batch that needs it.
    let plan = WindowAggregatePlan {
        window: WINDOWS[0],
        aggregates: every_aggregate(),
    };
    let mut agg = super::GpuWindowAggregator::new(gpu.context.clone(), plan.clone(), gpu.tuning)
        .expect("aggregator");
    let narrow_ints = |agg: &super::GpuWindowAggregator| {
        let n = agg.narrow_columns();
        (n.keys, n.windows, n.values[1..7].iter().all(|&v| v))
    };
    for (i, b) in input.iter().enumerate() {
        let columns = columns_of(&plan, b);
        let batch = AggregateInput {
            keys: &b.keys,
            ts: &b.ts,
            columns: &columns,
        };
        agg.accumulate(&batch).expect("accumulate");
        agg.fire(b.watermark).expect("fire");
        let expected = match i {
            0 | 1 => (true, true, true),
            2 | 3 => (false, true, false),
            _ => (false, false, false),
        };
        assert_eq!(narrow_ints(&agg), expected, "after batch {i}");
    }
}

/// Session gaps: below the row spacing's disorder, around it, and spanning many rows.
const GAPS: [i64; 3] = [25, 300, 2_000];

/// The session window the shared edge-case tests run besides a tumbling or hopping one.
const SESSION: WindowSpec = WindowSpec::Session { gap: 300 };

#[test]
fn sessions_match_the_cpu() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    // Rows 10 ms apart per stream, up to 2 s out of order, the watermark 1 s behind: sessions
    // merge across buckets and batches, out-of-order rows bridge sessions, and rows more than
    // a gap behind the watermark are late unless they touch an open session.
    let late: Vec<usize> = GAPS
        .into_iter()
        .enumerate()
        .map(|(i, gap)| check(WindowSpec::Session { gap }, BASE, 40 + i as u64, &gpu))
        .collect();
    // The small gaps leave rows behind the watermark alone: late; the large one rescues all.
    assert!(late[0] > 0 && late[1] > 0, "late rows per gap: {late:?}");
    // Many keys over the u64 range: the bucket table grows mid-batch.
    let shape = Shape {
        keys: 5_000,
        wide_keys: true,
        rows: 20_000,
        batch: 10_000,
        step: 1,
        ..BASE
    };
    check(WindowSpec::Session { gap: 40 }, shape, 11, &gpu);
}

#[test]
fn a_session_bridged_by_a_late_arrival_is_one_session() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    // Hand-checked, gap 100: key 1 has sessions [0, 150) and [220, 320) after the first batch;
    // the second batch's row at 130 touches both (130 <= 150 and 220 <= 230) and merges them
    // into [0, 320); key 1's row at 35, whose own window [35, 135) has fired, touches an open
    // session and joins it (five rows); key 2's row at 40, whose own window [40, 140) has fired
    // and which touches no open session, is late.
    let plan = WindowAggregatePlan {
        window: WindowSpec::Session { gap: 100 },
        aggregates: vec![
            AggregatePlan {
                function: AggregateFunction::Count,
                input: None,
            },
            AggregatePlan {
                function: AggregateFunction::CountDistinct,
                input: Some(NumericKind::Int),
            },
        ],
    };
    // Values repeat across the session's buckets: 7 in buckets 0 and 2, 8 in 0 and 1.
    for backend in [&gpu as &dyn Backend, &CpuBackend::new()] {
        let mut agg = backend.window_aggregator(&plan).expect("aggregator");
        let values = [7, 8, 7, 9];
        let columns = [ColumnValues::Rows, ColumnValues::Int(&values, None)];
        let first = AggregateInput {
            keys: &[1, 1, 1, 2],
            ts: &[0, 50, 220, 500],
            columns: &columns,
        };
        assert!(agg.accumulate(&first).expect("accumulate").is_empty());
        assert!(agg.fire(140).expect("fire").is_empty());
        let values = [8, 5, 9];
        let columns = [ColumnValues::Rows, ColumnValues::Int(&values, None)];
        let second = AggregateInput {
            keys: &[1, 2, 1],
            ts: &[130, 40, 35],
            columns: &columns,
        };
        assert_eq!(agg.accumulate(&second).expect("accumulate"), vec![1]);
        let closed = rows_of(&agg.fire(i64::MAX).expect("fire"));
        let mut closed: Vec<_> = closed.into_iter().map(|r| (r.0, r.1, r.2, r.3)).collect();
        closed.sort_by_key(|r| (r.0, r.1));
        assert_eq!(
            closed,
            vec![
                (1, 0, 320, vec![Value::Int(5), Value::Int(3)]),
                (2, 500, 600, vec![Value::Int(1), Value::Int(1)]),
            ],
            "{}",
            backend.name()
        );
    }
}

#[test]
fn late_rows_of_a_batch_cut_into_chunks_are_judged_before_any_chunk_is_applied() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    // Gap 100, fired through 1000. In one batch, 950 (on time) opens a session that 880
    // (own window [880, 980) fired) would touch; 880 is late whichever chunk applied first.
    let plan = WindowAggregatePlan {
        window: WindowSpec::Session { gap: 100 },
        aggregates: vec![AggregatePlan {
            function: AggregateFunction::Count,
            input: None,
        }],
    };
    for backend in [
        &gpu.clone().with_chunk_rows(1) as &dyn Backend,
        &gpu,
        &CpuBackend::new(),
    ] {
        let mut agg = backend.window_aggregator(&plan).expect("aggregator");
        assert!(agg.fire(1_000).expect("fire").is_empty());
        let columns = [ColumnValues::Rows];
        let batch = AggregateInput {
            keys: &[1, 1, 2],
            ts: &[950, 880, 990],
            columns: &columns,
        };
        assert_eq!(agg.accumulate(&batch).expect("accumulate"), vec![1]);
        let mut closed = rows_of(&agg.fire(i64::MAX).expect("fire"));
        closed.sort_by_key(|r| (r.0, r.1));
        let closed: Vec<_> = closed.into_iter().map(|r| (r.0, r.1, r.2)).collect();
        assert_eq!(
            closed,
            vec![(1, 950, 1_050), (2, 990, 1_090)],
            "{}",
            backend.name()
        );
    }
}

/// Issue 12: the GPU's float sums are the correctly rounded sums of each window's values
/// (the exact sum rounded once), bit for bit what an exact-partials `fsum` gives, on prices
/// that rounding in f64 order gets wrong and on values of widely different magnitudes.
#[test]
fn float_sums_are_correctly_rounded_per_window() {
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    let plan = WindowAggregatePlan {
        window: WindowSpec::Tumbling {
            size: 100,
            offset: 0,
        },
        aggregates: vec![AggregatePlan {
            function: AggregateFunction::Sum,
            input: Some(NumericKind::Float),
        }],
    };
    let mut rng = Rng(0x5EED_0F12);
    let mut input = Vec::new();
    let mut expected: BTreeMap<(u64, i64), Vec<f64>> = BTreeMap::new();
    for b in 0..40i64 {
        let mut batch = Batch {
            keys: Vec::new(),
            ts: Vec::new(),
            ints: Vec::new(),
            floats: Vec::new(),
            nulls: None,
            watermark: b * 500 - 1,
        };
        for i in 0..500 {
            let ts = b * 500 + i;
            let key = rng.below(7);
            // Keys 0-4: prices with up to three decimals, like the 14.943 + 56.71,
            // whose exact sums span two 64-bit limbs. Keys 5 and 6 also mix in values 1e18
            // times larger and smaller.
            let magnitude = match (key, rng.below(4)) {
                (5 | 6, 0) => rng.below(1 << 30) as f64 * 1e6,
                (5 | 6, 1) => (rng.below(1 << 30) + 1) as f64 * 1e-12,
                _ => rng.below(100_000) as f64 / 1_000.0,
            };
            let value = if rng.below(3) == 0 {
                -magnitude
            } else {
                magnitude
            };
            batch.keys.push(key);
            batch.ts.push(ts);
            batch.ints.push(0);
            batch.floats.push(value);
            expected
                .entry((key, ts - ts % 100))
                .or_default()
                .push(value);
        }
        input.push(batch);
    }
    for gpu in variants(&gpu) {
        let (rows, _) = run(&gpu, &plan, &input);
        assert_eq!(rows.len(), expected.len(), "closed windows");
        let mut differs_from_f64_order = 0;
        for (key, start, _, values) in &rows {
            let window = &expected[&(*key, *start)];
            let want = fsum(window);
            let Value::Float(got) = values[0] else {
                panic!("sum of ({key}, {start}) is {:?}", values[0]);
            };
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "({key}, {start}): {window:?}"
            );
            differs_from_f64_order += usize::from(window.iter().sum::<f64>() != want);
        }
        assert!(
            differs_from_f64_order > 0,
            "the case has windows whose f64 sum in order is not correctly rounded"
        );
    }
}
