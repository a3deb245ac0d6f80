//! Snapshot and restore on every backend: a run checkpointed after any micro-batch, restored
//! into a fresh aggregator through Arrow IPC and continued, closes the same windows with the
//! same values and finds the same late rows as the same backend's uninterrupted run.

use crate::backend::test_support::{Rows, Shape, batches, columns_of, every_aggregate, rows_of};
use crate::backend::{AggregateInput, Backend, CpuBackend, WindowAggregatePlan};
use crate::state::{StateSnapshot, batch_from_ipc, batch_to_ipc};
use crate::window::WindowSpec;

const WINDOWS: [WindowSpec; 4] = [
    WindowSpec::Tumbling {
        size: 1_000,
        offset: 0,
    },
    WindowSpec::Hopping {
        size: 2_500,
        slide: 1_000,
        offset: -300,
    },
    WindowSpec::Session { gap: 300 },
    WindowSpec::Session { gap: 1_500 },
];

const SHAPE: Shape = Shape {
    keys: 50,
    wide_keys: false,
    rows: 3_000,
    batch: 500,
    step: 10,
    disorder: 2_000,
    delay: 1_000,
};

/// Many more groups than a fresh GPU table holds, so restored tables are grown ones.
const WIDE: Shape = Shape {
    keys: 6_000,
    wide_keys: true,
    rows: 24_000,
    batch: 4_000,
    step: 1,
    disorder: 500,
    delay: 200,
};

/// What a checkpoint does to a snapshot: every batch written as Arrow IPC and read back.
fn through_ipc(state: StateSnapshot) -> StateSnapshot {
    let header = state.header();
    let batches = state
        .batches
        .iter()
        .map(|(_, b)| batch_from_ipc(&batch_to_ipc(b).expect("write")).expect("read"))
        .collect();
    StateSnapshot::from_parts(header, batches).expect("parts")
}

/// Runs `plan` over the batches, restarting after batch `cut` (if any) on `restored`.
fn run(
    backend: &dyn Backend,
    restored: &dyn Backend,
    plan: &WindowAggregatePlan,
    shape: Shape,
    seed: u64,
    cut: Option<usize>,
) -> String {
    let input = batches(shape, seed);
    let mut agg = backend.window_aggregator(plan).expect("aggregator");
    let mut rows = Rows::new();
    let mut late = Vec::new();
    for (i, b) in input.iter().enumerate() {
        let columns = columns_of(plan, b);
        let batch = AggregateInput {
            keys: &b.keys,
            ts: &b.ts,
            columns: &columns,
        };
        late.push(agg.accumulate(&batch).expect("accumulate"));
        rows.extend(rows_of(&agg.fire(b.watermark).expect("fire")));
        if cut == Some(i) {
            let state = through_ipc(agg.snapshot().expect("snapshot"));
            let groups = agg.open_groups();
            agg = restored.window_aggregator(plan).expect("fresh aggregator");
            agg.restore(&state).expect("restore");
            assert_eq!(agg.open_groups(), groups, "open groups after restore");
        }
    }
    rows.extend(rows_of(&agg.fire(i64::MAX).expect("final fire")));
    rows.sort_by_key(|r| (r.0, r.1, r.2));
    // Debug text compares floats bit for bit (and NaN equal to NaN).
    format!("{rows:?} late {late:?}")
}

fn check(backend: &dyn Backend, restored: &dyn Backend, label: &str) {
    for (w, window) in WINDOWS.into_iter().enumerate() {
        let plan = WindowAggregatePlan {
            window,
            aggregates: every_aggregate(),
        };
        for (shape, seed) in [(SHAPE, 41 + w as u64), (WIDE, 7 + w as u64)] {
            let whole = run(backend, backend, &plan, shape, seed, None);
            let batches = shape.rows.div_ceil(shape.batch);
            for cut in [0, batches / 2, batches - 1] {
                let resumed = run(backend, restored, &plan, shape, seed, Some(cut));
                assert!(
                    whole == resumed,
                    "{label} {window:?} keys {} restored after batch {cut} differs",
                    shape.keys
                );
            }
        }
    }
}

#[test]
fn the_cpu_backend_resumes_exactly_even_on_another_thread_count() {
    let two = CpuBackend::with_threads(2).expect("pool");
    let three = CpuBackend::with_threads(3).expect("pool");
    check(&two, &three, "cpu");
}

#[cfg(feature = "gpu")]
#[test]
fn the_gpu_backend_resumes_exactly() {
    use crate::backend::GpuBackend;
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    check(&gpu, &gpu, "gpu");
    let emulated = gpu.clone().with_emulated_int64();
    check(&emulated, &emulated, "gpu (32-bit atomics)");
}

#[cfg(feature = "gpu")]
#[test]
fn state_does_not_move_between_backends() {
    use crate::backend::GpuBackend;
    let Some(gpu) = GpuBackend::for_tests() else {
        return;
    };
    let plan = WindowAggregatePlan {
        window: WINDOWS[0],
        aggregates: every_aggregate(),
    };
    let cpu = CpuBackend::with_threads(2).expect("pool");
    let state = cpu
        .window_aggregator(&plan)
        .expect("cpu")
        .snapshot()
        .expect("snapshot");
    let error = gpu
        .window_aggregator(&plan)
        .expect("gpu")
        .restore(&state)
        .expect_err("a CPU snapshot on the GPU");
    assert!(error.to_string().contains("cpu-window/1"), "{error}");
}
