//! Window results equal an independent polars batch computation, on random inputs with fixed
//! seeds: every window kind, every aggregate, integer, string and two-column keys, many keys,
//! skew, disorder below the watermark delay, and micro-batches from 1 row to more than the input.
//! Every case runs on every backend (`common::backends`: the CPU, and the GPU when present).

use sluice_engine::prelude::*;

use crate::common::oracle::{actual, assert_same, expected};
use crate::common::{
    Events, KeyKind, StreamShape, all_aggregates, backends, key_names, run_window, schema,
};

struct Case {
    kind: KeyKind,
    window: WindowSpec,
    shape: StreamShape,
    /// Rows per source batch.
    batch_rows: usize,
    /// Rows per micro-batch.
    max_rows: usize,
}

fn base(rows: usize, keys: u64, seed: u64) -> StreamShape {
    StreamShape {
        rows,
        keys,
        skew: false,
        disorder: 400,
        step: 3,
        partitions: 2,
        seed,
    }
}

fn check(case: Case, context: &str) {
    let events = Events::generate(case.shape);
    let partitions = events.partitioned(case.kind, case.shape.partitions, case.batch_rows);
    let spec = WindowAggregateSpec {
        keys: key_names(case.kind),
        window: case.window,
        aggregates: all_aggregates(),
    };
    // One more than the disorder, so no on-time event can touch a session that already closed.
    let delay = case.shape.disorder + 1;
    let all: Vec<usize> = (0..events.len()).collect();
    let want = expected(&events, case.kind, case.window, &all);
    assert!(!want.is_empty(), "{context}: the oracle produced rows");
    for backend in backends() {
        let context = format!("{context} on {}", backend.name());
        let outcome = run_window(
            backend,
            schema(case.kind),
            partitions.clone(),
            spec.clone(),
            delay,
            case.max_rows,
        );
        assert_eq!(
            outcome.summary.counts.events_in,
            events.len() as u64,
            "{context}: events in"
        );
        assert_eq!(
            outcome.summary.counts.late, 0,
            "{context}: no event is late when disorder < delay"
        );
        assert_same(&actual(&outcome.output, case.kind), &want, &context);
        assert_eq!(
            outcome.summary.counts.events_out,
            want.len() as u64,
            "{context}: rows out"
        );
    }
}

const TUMBLING: WindowSpec = WindowSpec::Tumbling {
    size: 1_000,
    offset: 0,
};

#[test]
fn tumbling_integer_keys_many_keys() {
    let case = Case {
        kind: KeyKind::Int,
        window: TUMBLING,
        shape: base(30_000, 5_000, 1),
        batch_rows: 1_000,
        max_rows: 4_096,
    };
    check(case, "tumbling/int");
}

#[test]
fn tumbling_with_offset_string_keys_and_skew() {
    let window = WindowSpec::Tumbling {
        size: 750,
        offset: 125,
    };
    let shape = StreamShape {
        skew: true,
        ..base(20_000, 300, 2)
    };
    check(
        Case {
            kind: KeyKind::Str,
            window,
            shape,
            batch_rows: 613,
            max_rows: 2_000,
        },
        "tumbling/str/skew",
    );
}

#[test]
fn tumbling_two_column_keys() {
    let case = Case {
        kind: KeyKind::Multi,
        window: TUMBLING,
        shape: base(15_000, 400, 3),
        batch_rows: 500,
        max_rows: 1_500,
    };
    check(case, "tumbling/multi");
}

#[test]
fn hopping_integer_keys() {
    let window = WindowSpec::Hopping {
        size: 3_000,
        slide: 1_000,
        offset: 0,
    };
    check(
        Case {
            kind: KeyKind::Int,
            window,
            shape: base(20_000, 800, 4),
            batch_rows: 999,
            max_rows: 3_000,
        },
        "hopping/int",
    );
}

#[test]
fn hopping_slide_not_dividing_size_with_string_keys() {
    let window = WindowSpec::Hopping {
        size: 2_500,
        slide: 1_000,
        offset: 300,
    };
    let shape = StreamShape {
        skew: true,
        ..base(12_000, 200, 5)
    };
    check(
        Case {
            kind: KeyKind::Str,
            window,
            shape,
            batch_rows: 1_024,
            max_rows: 1_024,
        },
        "hopping/str/odd",
    );
}

#[test]
fn hopping_two_column_keys() {
    let window = WindowSpec::Hopping {
        size: 2_000,
        slide: 500,
        offset: 0,
    };
    check(
        Case {
            kind: KeyKind::Multi,
            window,
            shape: base(10_000, 120, 6),
            batch_rows: 700,
            max_rows: 2_100,
        },
        "hopping/multi",
    );
}

#[test]
fn session_integer_keys_with_merges() {
    // ~100 keys, one event every 25 ms: per key a gap of ~2.5 s on average, so a 2 s gap both
    // splits and (with disorder) bridges sessions.
    let window = WindowSpec::Session { gap: 2_000 };
    let shape = StreamShape {
        step: 25,
        disorder: 600,
        ..base(15_000, 100, 7)
    };
    check(
        Case {
            kind: KeyKind::Int,
            window,
            shape,
            batch_rows: 256,
            max_rows: 1_000,
        },
        "session/int",
    );
}

#[test]
fn session_string_keys_with_skew() {
    let window = WindowSpec::Session { gap: 500 };
    let shape = StreamShape {
        step: 7,
        skew: true,
        ..base(12_000, 150, 8)
    };
    check(
        Case {
            kind: KeyKind::Str,
            window,
            shape,
            batch_rows: 333,
            max_rows: 999,
        },
        "session/str/skew",
    );
}

#[test]
fn session_two_column_keys() {
    let window = WindowSpec::Session { gap: 1_000 };
    let shape = StreamShape {
        step: 10,
        ..base(8_000, 60, 9)
    };
    check(
        Case {
            kind: KeyKind::Multi,
            window,
            shape,
            batch_rows: 400,
            max_rows: 400,
        },
        "session/multi",
    );
}

#[test]
fn micro_batches_of_one_row() {
    let window = WindowSpec::Hopping {
        size: 200,
        slide: 100,
        offset: 0,
    };
    let shape = StreamShape {
        step: 2,
        disorder: 50,
        ..base(1_500, 20, 10)
    };
    check(
        Case {
            kind: KeyKind::Int,
            window,
            shape,
            batch_rows: 1,
            max_rows: 1,
        },
        "hopping/1-row batches",
    );
    let shape = StreamShape {
        step: 2,
        disorder: 50,
        ..base(1_200, 20, 11)
    };
    check(
        Case {
            kind: KeyKind::Str,
            window: WindowSpec::Session { gap: 40 },
            shape,
            batch_rows: 1,
            max_rows: 1,
        },
        "session/1-row",
    );
}

#[test]
fn micro_batches_larger_than_the_input() {
    let case = Case {
        kind: KeyKind::Int,
        window: TUMBLING,
        shape: base(5_000, 50, 12),
        batch_rows: 100_000,
        max_rows: 1_000_000,
    };
    check(case, "tumbling/one batch");
}

#[test]
fn one_partition_and_many_partitions() {
    let one = StreamShape {
        partitions: 1,
        ..base(8_000, 500, 13)
    };
    check(
        Case {
            kind: KeyKind::Int,
            window: TUMBLING,
            shape: one,
            batch_rows: 512,
            max_rows: 512,
        },
        "tumbling/1 partition",
    );
    let many = StreamShape {
        partitions: 7,
        ..base(8_000, 500, 14)
    };
    let window = WindowSpec::Session { gap: 300 };
    check(
        Case {
            kind: KeyKind::Int,
            window,
            shape: many,
            batch_rows: 100,
            max_rows: 777,
        },
        "session/7 partitions",
    );
}
