//! SQL scripts run the same jobs as job files: every window function and aggregate equals the
//! polars oracle on every backend, the examples' `.sql` and `.toml` forms give identical rows,
//! and mistakes are reported at their line and column before any data moves.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use parquet::arrow::ArrowWriter;
use sluice::job::{BackendChoice, JobFile};
use sluice_engine::backend::Backend;
use sluice_engine::memory::CollectSink;
use sluice_engine::prelude::*;

use crate::common::oracle::{actual, assert_same, expected};
use crate::common::{Events, KeyKind, StreamShape, all_aggregates, backends};

/// Runs `job` on `backend` into memory (the job's own sink is not built).
fn run(job: &JobFile, backend: Arc<dyn Backend>) -> RecordBatch {
    let builder = job.builder_on(backend).expect("builder");
    let schemas = builder.schemas().expect("schemas");
    let sink = CollectSink::new();
    let pipeline = builder
        .sink(Box::new(sink.clone()))
        .build()
        .expect("pipeline");
    pipeline.run_blocking().expect("run");
    sink.concat(&schemas.output).expect("output")
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    let file = File::create(path).expect("create parquet");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
}

/// The window function call of `window` over table `events`.
fn window_function(window: WindowSpec, keys: &str) -> String {
    match window {
        WindowSpec::Tumbling { size, offset } => format!(
            "TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '{size}' MILLISECOND, \
             INTERVAL '{offset}' MILLISECOND)"
        ),
        WindowSpec::Hopping {
            size,
            slide,
            offset,
        } => format!(
            "HOP(DATA => TABLE events, TIMECOL => DESCRIPTOR(ts), SLIDE => INTERVAL '{slide}' \
             MILLISECOND, SIZE => INTERVAL '{size}' MILLISECOND, OFFSET => INTERVAL '{offset}' \
             MILLISECOND)"
        ),
        WindowSpec::Session { gap } => format!(
            "SESSION(TABLE events PARTITION BY ({keys}), DESCRIPTOR(ts), INTERVAL '{gap}' \
             MILLISECOND)"
        ),
        WindowSpec::Cumulate { step, size, offset } => format!(
            "CUMULATE(TABLE events, DESCRIPTOR(ts), INTERVAL '{step}' MILLISECOND, \
             INTERVAL '{size}' MILLISECOND, INTERVAL '{offset}' MILLISECOND)"
        ),
    }
}

#[test]
fn window_functions_equal_the_oracle_on_every_backend() {
    let cases = [
        (
            KeyKind::Int,
            WindowSpec::Tumbling {
                size: 1_000,
                offset: 250,
            },
            11,
        ),
        (
            KeyKind::Str,
            WindowSpec::Hopping {
                size: 2_000,
                slide: 500,
                offset: 0,
            },
            12,
        ),
        (KeyKind::Multi, WindowSpec::Session { gap: 300 }, 13),
        (KeyKind::Str, WindowSpec::Session { gap: 700 }, 14),
    ];
    for (kind, window, seed) in cases {
        let shape = StreamShape {
            rows: 3_000,
            keys: 40,
            skew: seed % 2 == 0,
            disorder: 400,
            step: 3,
            partitions: 1,
            seed,
        };
        let events = Events::generate(shape);
        let all: Vec<usize> = (0..events.len()).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        write_parquet(
            &dir.path().join("events.parquet"),
            &events.to_batch(kind, &all),
        );
        let (key_columns, keys) = match kind {
            KeyKind::Int => ("k BIGINT,", "k"),
            KeyKind::Str => ("k STRING,", "k"),
            KeyKind::Multi => ("k BIGINT, region STRING,", "k, region"),
        };
        let mut aggregates = vec!["COUNT(*) AS n".to_string()];
        for column in ["v_int", "v_float"] {
            for (call, name) in [
                ("COUNT({c})", "count"),
                ("SUM({c})", "sum"),
                ("MIN({c})", "min"),
                ("max({c})", "max"),
                ("Avg({c})", "avg"),
                ("COUNT(DISTINCT {c})", "count_distinct"),
            ] {
                aggregates.push(format!(
                    "{} AS {name}_{column}",
                    call.replace("{c}", column)
                ));
            }
        }
        // One more than the disorder, so no on-time event can touch a session that closed.
        let script = format!(
            "SET 'table.exec.mini-batch.size' = '97';\n\
             CREATE TABLE events (\n  ts TIMESTAMP(3),\n  {key_columns}\n  v_int BIGINT,\n  \
             v_float DOUBLE,\n  WATERMARK FOR ts AS ts - INTERVAL '401' MILLISECOND\n) WITH \
             ('connector' = 'filesystem', 'path' = 'events.parquet', 'format' = 'parquet', \
             'batch-rows' = '128');\n\
             CREATE TABLE results WITH ('connector' = 'blackhole');\n\
             INSERT INTO results\nSELECT {keys}, window_start, window_end, {}\n\
             FROM TABLE({})\nGROUP BY window_start, window_end, {keys};",
            aggregates.join(", "),
            window_function(window, keys)
        );
        let job = JobFile::from_sql(&script, &dir.path().join("job.sql"), &[])
            .unwrap_or_else(|err| panic!("{err}\n{script}"));
        let want = expected(&events, kind, window, &all);
        assert!(!want.is_empty(), "{window:?}: the oracle produced rows");
        for backend in backends() {
            let context = format!("{kind:?} {window:?} on {}", backend.name());
            assert_same(&actual(&run(&job, backend), kind), &want, &context);
        }
        assert_eq!(all_aggregates().len(), aggregates.len());
    }
}

#[test]
fn count_distinct_over_strings_equals_a_set_count_on_every_backend() {
    use std::collections::{BTreeMap, HashSet};
    // 3,000 rows, 10 ms apart: 5 cards, countries from a pool of 40 (near-equal pairs, one
    // quoted with a comma; an empty CSV field is null, so none is empty), every 13th null;
    // 1 s tumbling windows.
    let pool: Vec<String> = (0..40)
        .map(|i| match i {
            0 => "c 0, with a comma".to_string(),
            i if i % 2 == 0 => format!("c{}", i / 2),
            i => format!("c{}x", i / 2),
        })
        .collect();
    let mut state = 17u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut csv = String::from("ts,card,country\n");
    let mut want: BTreeMap<(u64, i64), HashSet<String>> = BTreeMap::new();
    for i in 0..3_000i64 {
        let card = next() % 5;
        let country = (i % 13 != 0).then(|| pool[(next() % 40) as usize].clone());
        let ms = i * 10;
        csv.push_str(&format!(
            "2026-01-01T00:00:{:02}.{:03}Z,{card},{}\n",
            ms / 1_000,
            ms % 1_000,
            country
                .as_deref()
                .map_or("".to_string(), |c| format!("\"{c}\""))
        ));
        // 2026-01-01T00:00:00Z is 1,767,225,600,000 ms after the epoch.
        let start = 1_767_225_600_000 + ms / 1_000 * 1_000;
        let sets = want.entry((card, start)).or_default();
        if let Some(country) = country {
            sets.insert(country);
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.csv"), csv).expect("write csv");
    let script = "CREATE TABLE t (ts TIMESTAMP(3), card BIGINT, country STRING,\n\
                  WATERMARK FOR ts AS ts) WITH ('connector' = 'filesystem', 'path' = 'in.csv',\n\
                  'format' = 'csv', 'batch-rows' = '100');\n\
                  CREATE TABLE o WITH ('connector' = 'blackhole');\n\
                  INSERT INTO o SELECT card, window_start, COUNT(DISTINCT country) AS n\n\
                  FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND))\n\
                  GROUP BY window_start, window_end, card;";
    let job = JobFile::from_sql(script, &dir.path().join("job.sql"), &[])
        .unwrap_or_else(|err| panic!("{err}"));
    let want: Vec<(u64, i64, i64)> = want
        .into_iter()
        .map(|((card, start), set)| (card, start, set.len() as i64))
        .collect();
    for backend in backends() {
        let name = backend.name();
        let out = run(&job, backend);
        let cards = out.column(0).as_primitive::<arrow::datatypes::Int64Type>();
        let starts = arrow::compute::cast(out.column(1), &arrow::datatypes::DataType::Int64)
            .expect("window_start as ms");
        let starts = starts.as_primitive::<arrow::datatypes::Int64Type>();
        let counts = out.column(2).as_primitive::<arrow::datatypes::Int64Type>();
        let mut got: Vec<(u64, i64, i64)> = (0..out.num_rows())
            .map(|i| (cards.value(i) as u64, starts.value(i), counts.value(i)))
            .collect();
        got.sort();
        assert_eq!(got, want, "{name}");
    }
}

/// `batch` as an aligned text table.
fn table(batch: &RecordBatch) -> String {
    arrow::util::pretty::pretty_format_batches(std::slice::from_ref(batch))
        .expect("format")
        .to_string()
}

/// The rows of `batch`, printed and sorted, for comparing two runs.
fn sorted_rows(batch: &RecordBatch) -> Vec<String> {
    let mut rows: Vec<String> = table(batch).lines().map(str::to_string).collect();
    rows.sort();
    rows
}

#[test]
fn examples_in_sql_and_toml_give_the_same_rows() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in [
        "traffic",
        "traffic_incidents",
        "fraud_features",
        "fraud_enrich",
        "fraud_over",
    ] {
        let toml = JobFile::load(&examples.join(format!("{name}.toml")), &[]).expect("toml job");
        let sql = JobFile::load(&examples.join(format!("{name}.sql")), &[])
            .unwrap_or_else(|err| panic!("{name}.sql: {err}"));
        for backend in backends() {
            let context = format!("{name} on {}", backend.name());
            let from_toml = run(&toml, backend.clone());
            let from_sql = run(&sql, backend);
            assert!(from_toml.num_rows() > 0, "{context}: rows out");
            assert_eq!(from_sql.schema(), from_toml.schema(), "{context}");
            assert_eq!(sorted_rows(&from_sql), sorted_rows(&from_toml), "{context}");
        }
    }
}

#[test]
fn examples_plan_the_operators_of_their_job_files() {
    // The same plan is what makes the SQL form run as fast as the job file.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in ["traffic", "fraud_features", "tumbling_bench"] {
        let load = |ext: &str| JobFile::load(&examples.join(format!("{name}.{ext}")), &[]);
        let (toml, sql) = (load("toml").expect("toml"), load("sql").expect("sql"));
        let explain = |job: &JobFile| job.explain(BackendChoice::Cpu).expect("explain");
        assert_eq!(explain(&sql), explain(&toml), "{name}");
    }
}

#[test]
fn explain_prints_the_plan_instead_of_running() {
    let script = format!(
        "{TXNS}EXPLAIN INSERT INTO o\n\
         SELECT card_id, window_start, window_end, COUNT(*) AS n, SUM(amount_cents) AS total\n\
         FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MINUTE))\n\
         WHERE amount_cents > 100\n\
         GROUP BY window_start, window_end, card_id HAVING SUM(amount_cents) > 1000;"
    );
    let job = JobFile::from_sql(&script, Path::new("/jobs/job.sql"), &[]).expect("plans");
    assert!(job.explain);
    let plan = job.explain(BackendChoice::Cpu).expect("explain");
    let lines: Vec<&str> = plan.lines().collect();
    assert_eq!(
        lines,
        [
            "job job",
            "source    generator transactions (10 events, 1 partition(s))",
            "          event time `ts`, watermark 1s behind the largest seen",
            " 1. project  ts, card_id, amount_cents",
            " 2. filter   amount_cents > 100",
            " 3. window   tumbling 1m by card_id: count(*) AS n, sum(amount_cents) AS total  [cpu]",
            " 4. filter   total > 1000",
            "sink      discard",
            "output    card_id: Int64, window_start: Timestamp(ms, \"UTC\"), window_end: \
             Timestamp(ms, \"UTC\"), n: Int64, total: Int64",
        ]
    );
}

#[test]
fn projections_filters_and_computed_columns_match_a_hand_computation() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("in.csv"),
        "ts,card,cents,country\n\
         2026-01-01T00:00:00Z,1,150,FR\n\
         2026-01-01T00:00:01Z,2,99,DE\n\
         2026-01-01T00:00:02Z,3,1000,fr\n\
         2026-01-01T00:00:03Z,4,,FR\n",
    )
    .expect("write input");
    let script = "CREATE TABLE payments (\n\
                    ts TIMESTAMP(3), card BIGINT, cents BIGINT, country STRING,\n\
                    eur AS cents / 100.0,\n\
                    WATERMARK FOR ts AS ts\n\
                  ) WITH ('connector' = 'filesystem', 'path' = 'in.csv', 'format' = 'csv');\n\
                  CREATE TEMPORARY VIEW french AS\n\
                    SELECT p.card, eur, upper(country) AS country FROM payments AS p\n\
                    WHERE country IN ('FR', 'fr');\n\
                  CREATE TABLE out (card BIGINT, euros DOUBLE, land STRING, size STRING)\n\
                    WITH ('connector' = 'print');\n\
                  INSERT INTO out SELECT card, eur, country,\n\
                    CASE WHEN eur BETWEEN 5 AND 50 THEN 'big' ELSE 'small' END\n\
                  FROM french WHERE eur IS NOT NULL AND country NOT LIKE 'D%';";
    let job = JobFile::from_sql(script, &dir.path().join("job.sql"), &[])
        .unwrap_or_else(|err| panic!("{err}"));
    let got = table(&run(&job, crate::common::cpu()));
    let want = "+------+-------+------+-------+\n\
                | card | euros | land | size  |\n\
                +------+-------+------+-------+\n\
                | 1    | 1.5   | FR   | small |\n\
                | 3    | 10.0  | FR   | big   |\n\
                +------+-------+------+-------+";
    assert_eq!(got, want);
}

#[test]
fn lookup_joins_enrich_rows_and_qualify_clashing_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("payments.csv"),
        "ts,shop,country,cents\n\
         2026-01-01T00:00:00Z,1,FR,100\n\
         2026-01-01T00:00:01Z,2,DE,200\n\
         2026-01-01T00:00:02Z,9,FR,300\n\
         2026-01-01T00:00:03Z,1,ES,400\n",
    )
    .expect("write payments");
    std::fs::write(
        dir.path().join("shops.csv"),
        "id,country,risk\n1,CY,80\n2,DE,10\n",
    )
    .expect("write shops");
    let script = "CREATE TABLE payments (ts TIMESTAMP(3), shop BIGINT, country STRING, cents BIGINT,\n\
                    WATERMARK FOR ts AS ts)\n\
                    WITH ('connector' = 'filesystem', 'path' = 'payments.csv', 'format' = 'csv');\n\
                  CREATE TABLE shops (id BIGINT, country STRING, risk BIGINT)\n\
                    WITH ('connector' = 'filesystem', 'path' = 'shops.csv', 'format' = 'csv');\n\
                  CREATE TABLE out WITH ('connector' = 'print');\n\
                  INSERT INTO out\n\
                  SELECT p.cents, p.country, s.country AS shop_country, s.id, risk\n\
                  FROM payments AS p LEFT JOIN shops FOR SYSTEM_TIME AS OF p.ts AS s\n\
                    ON s.id = p.shop\n\
                  WHERE p.cents > 100;";
    let job = JobFile::from_sql(script, &dir.path().join("job.sql"), &[])
        .unwrap_or_else(|err| panic!("{err}"));
    let got = table(&run(&job, crate::common::cpu()));
    // A left join keeps shop 9 with nulls; the table's key column is the stream's `shop`.
    let want = "+-------+---------+--------------+----+------+\n\
                | cents | country | shop_country | id | risk |\n\
                +-------+---------+--------------+----+------+\n\
                | 200   | DE      | DE           | 2  | 10   |\n\
                | 300   | FR      |              | 9  |      |\n\
                | 400   | ES      | CY           | 1  | 80   |\n\
                +-------+---------+--------------+----+------+";
    assert_eq!(got, want);
}

/// The line, column and message of the error planning `script` (generator tables need no files).
fn plan_error(script: &str) -> (u64, u64, String) {
    match JobFile::from_sql(script, Path::new("/jobs/job.sql"), &[]) {
        Err(sluice::job::JobError::Sql { error, .. }) => (error.line, error.column, error.message),
        Err(other) => panic!("expected a SQL error for {script}, got {other}"),
        Ok(_) => panic!("{script} planned"),
    }
}

const TXNS: &str = "CREATE TABLE t (ts TIMESTAMP(3), card_id BIGINT, amount_cents BIGINT,\n\
                    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)\n\
                    WITH ('connector' = 'transactions', 'number-of-rows' = '10');\n\
                    CREATE TABLE o WITH ('connector' = 'blackhole');\n";

#[test]
fn mistakes_are_named_at_their_line_and_column() {
    let cases: [(String, (u64, u64), &str); 12] = [
        (format!("{TXNS}INSERT INTO o SELECT t.ts FROM t JOIN t AS u ON t.card_id = u.card_id;"), (5, 39), "an interval join bounds the event times both ways"),
        (format!("{TXNS}INSERT INTO o SELECT t.ts FROM t JOIN t FOR SYSTEM_TIME AS OF t.ts AS d ON d.nope = t.card_id;"), (5, 76), "expected a column of the stream or `d.<column>`, found `d.nope`"),
        (format!("{TXNS}INSERT INTO o SELECT amount FROM t;"), (5, 22), "unknown column `amount`; available: ts, card_id, amount_cents"),
        (format!("{TXNS}INSERT INTO o SELECT card_id FROM nope;"), (5, 35), "no table or view `nope`"),
        (format!("{TXNS}INSERT INTO o SELECT card_id, COUNT(*) FROM t GROUP BY card_id;"), (5, 15), "GROUP BY without a window function is not supported yet"),
        (format!("{TXNS}INSERT INTO o SELECT card_id, window_start, COUNT(*)\nFROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(card_id), INTERVAL '1' MINUTE))\nGROUP BY window_start, window_end, card_id;"), (6, 12), "DESCRIPTOR(card_id) must name the event-time column of `t`"),
        (format!("{TXNS}INSERT INTO o SELECT card_id, COUNT(*)\nFROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MONTH))\nGROUP BY window_start, window_end, card_id;"), (6, 53), "interval unit MONTH is not supported"),
        (format!("{TXNS}INSERT INTO o SELECT card_id, COUNT(*)\nFROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MINUTE))\nGROUP BY card_id;"), (5, 15), "a window aggregation groups by window_start and window_end"),
        ("CREATE TABLE t (ts TIMESTAMP(3), WATERMARK FOR ts AS ts)\nWITH ('connector' = 'transactions', 'rows' = '5');\nCREATE TABLE o WITH ('connector' = 'blackhole');\nINSERT INTO o SELECT ts FROM t;".to_string(), (2, 37), "unknown option 'rows' for the transactions connector"),
        ("CREATE TABLE t (ts TIMESTAMP(3), speed DOUBLE, WATERMARK FOR ts AS ts)\nWITH ('connector' = 'telemetry');\nCREATE TABLE o WITH ('connector' = 'blackhole');\nINSERT INTO o SELECT ts FROM t;".to_string(), (1, 34), "table `t` declares column `speed`, which its connector does not produce"),
        (format!("{TXNS}SET 'parallelism.default' = '4';\nINSERT INTO o SELECT ts FROM t;"), (5, 1), "unknown setting 'parallelism.default'"),
        (format!("{TXNS}INSERT INTO o SELECT ts FROM t;\nINSERT INTO o SELECT ts FROM t;"), (6, 1), "`o` is written by an earlier INSERT too"),
    ];
    let mut wrong = Vec::new();
    for (script, place, message) in cases {
        let (line, column, got) = plan_error(&script);
        if !got.starts_with(message) || (line, column) != place {
            wrong.push(format!("{script}\n=> {line}:{column} {got}\n"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The readings of `examples/data/traffic.csv` as (time in ms, segment, speed), read by hand;
/// rows that do not parse are the sample's dead letters, which the jobs skip too.
fn traffic_readings(examples: &Path) -> Vec<(i64, i64, f64)> {
    let text = std::fs::read_to_string(examples.join("data/traffic.csv")).expect("traffic.csv");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r.len() == 5 && r[1].parse::<i64>().is_ok() && r[3].parse::<f64>().is_ok())
        .collect();
    let times = arrow::compute::cast(
        &arrow::array::StringArray::from_iter_values(rows.iter().map(|r| r[0])),
        &arrow::datatypes::DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
    )
    .and_then(|t| arrow::compute::cast(&t, &arrow::datatypes::DataType::Int64))
    .expect("times");
    let times = times.as_primitive::<arrow::datatypes::Int64Type>();
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let segment = r[1].parse().expect("segment");
            (times.value(i), segment, r[3].parse().expect("speed"))
        })
        .collect()
}

#[test]
fn the_slowest_segments_example_ranks_each_minutes_averages() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    // The expected rows from the CSV: per minute, each segment's mean speed, the three lowest.
    let mut sums: std::collections::BTreeMap<(i64, i64), (f64, f64)> =
        std::collections::BTreeMap::new();
    for (ms, segment, speed) in traffic_readings(&examples) {
        let minute = ms - ms.rem_euclid(60_000);
        let entry = sums.entry((minute, segment)).or_default();
        entry.0 += speed;
        entry.1 += 1.0;
    }
    let mut by_minute: std::collections::BTreeMap<i64, Vec<(f64, i64)>> =
        std::collections::BTreeMap::new();
    for ((minute, segment), (sum, n)) in sums {
        by_minute
            .entry(minute)
            .or_default()
            .push((sum / n, segment));
    }
    let mut want = Vec::new();
    for (minute, mut segments) in by_minute {
        segments.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (rank, (speed, segment)) in segments.into_iter().take(3).enumerate() {
            want.push((minute, rank as i64 + 1, segment, speed));
        }
    }
    assert!(want.len() > 3, "several minutes");

    let job = JobFile::load(&examples.join("traffic_slowest.sql"), &[]).expect("the example");
    for backend in backends() {
        let context = backend.name();
        let out = run(&job, backend);
        let minutes = arrow::compute::cast(out.column(0), &arrow::datatypes::DataType::Int64)
            .expect("minute as ms");
        let minutes = minutes.as_primitive::<arrow::datatypes::Int64Type>();
        let segments = out.column(1).as_primitive::<arrow::datatypes::Int64Type>();
        let speeds = out
            .column(2)
            .as_primitive::<arrow::datatypes::Float64Type>();
        let ranks = out.column(3).as_primitive::<arrow::datatypes::Int64Type>();
        let mut got: Vec<(i64, i64, i64, f64)> = (0..out.num_rows())
            .map(|i| {
                (
                    minutes.value(i),
                    ranks.value(i),
                    segments.value(i),
                    speeds.value(i),
                )
            })
            .collect();
        got.sort_by_key(|a| (a.0, a.1));
        assert_eq!(got.len(), want.len(), "{context}: rows");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((g.0, g.1, g.2), (w.0, w.1, w.2), "{context}");
            assert!((g.3 - w.3).abs() < 1e-9, "{context}: {g:?} vs {w:?}");
        }
    }
}

#[test]
fn the_fastest_readings_example_ranks_each_minutes_raw_rows() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    // The expected rows from the CSV: per minute, the three highest speeds of single readings.
    let mut by_minute: std::collections::BTreeMap<i64, Vec<f64>> =
        std::collections::BTreeMap::new();
    for (ms, _, speed) in traffic_readings(&examples) {
        by_minute
            .entry(ms - ms.rem_euclid(60_000))
            .or_default()
            .push(speed);
    }
    // Ties may be ranked either way round; the speed at each rank cannot.
    let mut want = Vec::new();
    for (minute, mut speeds) in by_minute {
        speeds.sort_by(|a, b| b.total_cmp(a));
        for (rank, speed) in speeds.into_iter().take(3).enumerate() {
            want.push((minute, rank as i64 + 1, speed));
        }
    }
    assert!(want.len() > 3, "several minutes");

    let job = JobFile::load(&examples.join("traffic_fastest.sql"), &[]).expect("the example");
    for backend in backends() {
        let context = backend.name();
        let out = run(&job, backend);
        let minutes = arrow::compute::cast(out.column(0), &arrow::datatypes::DataType::Int64)
            .expect("minute as ms");
        let minutes = minutes.as_primitive::<arrow::datatypes::Int64Type>();
        let ranks = out.column(1).as_primitive::<arrow::datatypes::Int64Type>();
        let speeds = out
            .column(2)
            .as_primitive::<arrow::datatypes::Float64Type>();
        let mut got: Vec<(i64, i64, f64)> = (0..out.num_rows())
            .map(|i| (minutes.value(i), ranks.value(i), speeds.value(i)))
            .collect();
        got.sort_by_key(|a| (a.0, a.1));
        assert_eq!(got, want, "{context}");
    }
}
