//! A window function's rows on their own (`assign_windows`) equal each event repeated into
//! its windows by hand, on random inputs with fixed seeds, on every backend.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use sluice_engine::prelude::*;

use crate::common::{Events, StreamShape, backends, run_operators};
use crate::top_n::windows_of;

/// (ts, key, v_int, window start, window end) per output row, sorted.
type Windowed = Vec<(i64, i64, Option<i64>, i64, i64)>;

fn by_hand(events: &Events, window: WindowSpec) -> Windowed {
    let mut rows = Vec::new();
    for i in 0..events.len() {
        for (start, end) in windows_of(window, events.ts[i]) {
            rows.push((events.ts[i], events.key[i], events.v_int[i], start, end));
        }
    }
    rows.sort_unstable();
    rows
}

fn run(events: &Events, window: WindowSpec, backend: std::sync::Arc<dyn Backend>) -> Windowed {
    let out = run_operators(events, vec![OperatorSpec::AssignWindows(window)], backend);
    let column = |name: &str| out.column(out.schema().index_of(name).expect(name)).clone();
    let (ts, k, v, start, end) = (
        column("ts"),
        column("k"),
        column("v_int"),
        column("window_start"),
        column("window_end"),
    );
    let v = v.as_primitive::<Int64Type>();
    let mut rows: Windowed = (0..out.num_rows())
        .map(|r| {
            (
                ts.as_primitive::<TimestampMillisecondType>().value(r),
                k.as_primitive::<Int64Type>().value(r),
                v.is_valid(r).then(|| v.value(r)),
                start.as_primitive::<TimestampMillisecondType>().value(r),
                end.as_primitive::<TimestampMillisecondType>().value(r),
            )
        })
        .collect();
    rows.sort_unstable();
    rows
}

#[test]
fn every_row_appears_once_per_window_that_holds_it_on_every_backend() {
    let windows = [
        WindowSpec::Tumbling {
            size: 1_000,
            offset: 0,
        },
        WindowSpec::Hopping {
            size: 1_500,
            slide: 500,
            offset: 0,
        },
        WindowSpec::Cumulate {
            step: 500,
            size: 1_500,
            offset: 0,
        },
    ];
    for (seed, window) in (31..).zip(windows) {
        // Disorder below the watermark delay: no row is late.
        let events = Events::generate(StreamShape {
            rows: 4_000,
            keys: 30,
            skew: false,
            disorder: 400,
            step: 3,
            partitions: 2,
            seed,
        });
        let want = by_hand(&events, window);
        assert!(want.len() >= events.len());
        for backend in backends() {
            let context = format!("{window:?} on {}", backend.name());
            assert_eq!(run(&events, window, backend), want, "{context}");
        }
    }
}
