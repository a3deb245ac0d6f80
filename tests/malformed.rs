//! Malformed input: the dead-letter output holds exactly the bad lines with their line numbers,
//! and every good row is processed; `strict` stops at the first bad line instead. One bad
//! record costs only itself (issue 12); [`super::mutations`] checks it on seeded mutations.

use std::fs;
use std::io::BufReader;
use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{Int64Type, SchemaRef, UInt64Type};
use sluice::job::{BackendChoice, JobFile};
use sluice_engine::source::DeadLetter;

fn read_jsonl(path: &Path, schema: SchemaRef) -> RecordBatch {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = arrow::json::ReaderBuilder::new(schema.clone())
        .build(BufReader::new(file))
        .expect("reader");
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("json");
    concat_batches(&schema, &batches).expect("concat")
}

fn job(dir: &Path, format: &str, input: &str, strict: bool) -> JobFile {
    let text = format!(
        r#"
strict = {strict}
[source]
type = "{format}"
path = "{input}"
batch_rows = 4
columns = [{{ name = "ts", type = "timestamp" }}, {{ name = "sensor", type = "int64" }}, {{ name = "speed", type = "float64" }}]
[event_time]
column = "ts"
[sink]
type = "jsonl"
path = "out/rows.jsonl"
[dead_letter]
type = "jsonl"
path = "out/dead.jsonl"
"#
    );
    JobFile::parse(&text, &dir.join("job.toml"), &[]).expect("job")
}

/// Lines 3, 6, 7 and 10 are bad (a bad number, too few fields, a bad event time, a bad count).
const CSV: &str = "ts,sensor,speed\n\
2026-01-01T00:00:00Z,1,50.5\n\
2026-01-01T00:00:01Z,2,fast\n\
2026-01-01T00:00:02Z,3,61.0\n\
2026-01-01T00:00:03Z,4,70.0\n\
2026-01-01T00:00:04Z,5\n\
yesterday,6,40.0\n\
2026-01-01T00:00:06Z,7,41.0\n\
2026-01-01T00:00:07Z,8,42.0\n\
2026-01-01T00:00:08Z,x9,43.0\n\
2026-01-01T00:00:09Z,10,44.0\n";

fn check_dead_letters(dir: &Path, source_file: &str, want: &[(u64, &str)], reasons: &[&str]) {
    // Issue 12: JSON-lines dead letters left out the `row` key (null for text files).
    let text = fs::read_to_string(dir.join("out/dead.jsonl")).expect("dead letters");
    for line in text.lines() {
        assert!(line.contains("\"row\":null"), "{line}");
    }
    let dead = read_jsonl(&dir.join("out/dead.jsonl"), DeadLetter::schema());
    let lines: Vec<u64> = dead
        .column(1)
        .as_primitive::<UInt64Type>()
        .iter()
        .map(|l| l.expect("line"))
        .collect();
    let raws: Vec<&str> = (0..dead.num_rows())
        .map(|i| {
            dead.column_by_name("raw")
                .expect("raw")
                .as_string::<i32>()
                .value(i)
        })
        .collect();
    let mut got: Vec<(u64, &str)> = lines.into_iter().zip(raws).collect();
    got.sort();
    assert_eq!(got, want);
    for i in 0..dead.num_rows() {
        assert!(
            dead.column(0)
                .as_string::<i32>()
                .value(i)
                .ends_with(source_file)
        );
        let reason = dead
            .column_by_name("reason")
            .expect("reason")
            .as_string::<i32>()
            .value(i);
        assert!(
            reasons.iter().any(|r| reason.contains(r)),
            "unexpected reason: {reason}"
        );
    }
}

#[test]
fn bad_csv_lines_go_to_the_dead_letter_file_and_good_rows_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("in.csv"), CSV).expect("write");
    let job = job(dir.path(), "csv", "in.csv", false);
    let schemas = job.validate().expect("valid");
    let summary = job
        .pipeline(BackendChoice::Cpu)
        .expect("pipeline")
        .run_blocking()
        .expect("run");
    assert_eq!(summary.counts.malformed, 4);
    assert_eq!(summary.counts.events_in, 6);
    assert_eq!(summary.counts.events_out, 6);
    let want = [
        (3, "2026-01-01T00:00:01Z,2,fast"),
        (6, "2026-01-01T00:00:04Z,5"),
        (7, "yesterday,6,40.0"),
        (10, "2026-01-01T00:00:08Z,x9,43.0"),
    ];
    check_dead_letters(
        dir.path(),
        "in.csv",
        &want,
        &["speed", "fields", "ts", "sensor"],
    );
    let rows = read_jsonl(&dir.path().join("out/rows.jsonl"), schemas.output);
    let sensors: Vec<i64> = rows.column(1).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(sensors, vec![1, 3, 4, 7, 8, 10], "every good row, in order");
}

#[test]
fn bad_json_lines_go_to_the_dead_letter_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "{\"ts\": \"2026-01-01T00:00:00Z\", \"sensor\": 1, \"speed\": 1.5}\n\
                {\"ts\": \"2026-01-01T00:00:01Z\", \"sensor\": 2, \"speed\": \"fast\"}\n\
                not json at all\n\
                {\"ts\": \"2026-01-01T00:00:03Z\", \"sensor\": 4, \"speed\": 3.5}\n\
                {\"sensor\": 5, \"speed\": 4.5}\n";
    fs::write(dir.path().join("in.jsonl"), text).expect("write");
    let job = job(dir.path(), "jsonl", "in.jsonl", false);
    let summary = job
        .pipeline(BackendChoice::Cpu)
        .expect("pipeline")
        .run_blocking()
        .expect("run");
    assert_eq!(summary.counts.events_out, 2);
    assert_eq!(summary.counts.malformed, 3);
    let want = [
        (
            2,
            "{\"ts\": \"2026-01-01T00:00:01Z\", \"sensor\": 2, \"speed\": \"fast\"}",
        ),
        (3, "not json at all"),
        // Issue 12: the line as read, not a row rebuilt from its values.
        (5, "{\"sensor\": 5, \"speed\": 4.5}"),
    ];
    check_dead_letters(
        dir.path(),
        "in.jsonl",
        &want,
        &["speed", "json", "JSON", "ts", "event time"],
    );
}

#[test]
fn strict_mode_fails_at_the_first_bad_line_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("in.csv"), CSV).expect("write");
    let job = job(dir.path(), "csv", "in.csv", true);
    let err = job
        .pipeline(BackendChoice::Cpu)
        .expect("pipeline")
        .run_blocking()
        .expect_err("strict");
    let text = err.to_string();
    assert!(
        text.contains("in.csv") && text.contains("line 3") && text.contains("speed"),
        "{text}"
    );
}

/// Runs a job over `input` (written to `in.<format>`) with the given `[source]` extras and
/// operators, JSON-lines output: (summary, output rows, dead letters as (line, raw, reason)).
fn run_job(
    format: &str,
    input: &[u8],
    source_extra: &str,
    rest: &str,
) -> (
    sluice_engine::metrics::RunSummary,
    RecordBatch,
    Vec<(u64, String, String)>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join(format!("in.{format}")), input).expect("write");
    let text = format!(
        r#"
[source]
type = "{format}"
path = "in.{format}"
{source_extra}
[event_time]
column = "ts"
{rest}
[sink]
type = "jsonl"
path = "out/rows.jsonl"
[dead_letter]
type = "jsonl"
path = "out/dead.jsonl"
"#
    );
    let job = JobFile::parse(&text, &dir.path().join("job.toml"), &[]).expect("job");
    let schemas = job.validate().expect("valid");
    let summary = job
        .pipeline(BackendChoice::Cpu)
        .expect("pipeline")
        .run_blocking()
        .expect("run");
    let rows = read_jsonl(&dir.path().join("out/rows.jsonl"), schemas.output);
    let dead = read_jsonl(&dir.path().join("out/dead.jsonl"), DeadLetter::schema());
    let letters = (0..dead.num_rows())
        .map(|i| {
            (
                dead.column(1).as_primitive::<UInt64Type>().value(i),
                dead.column_by_name("raw")
                    .expect("raw")
                    .as_string::<i32>()
                    .value(i)
                    .to_string(),
                dead.column_by_name("reason")
                    .expect("reason")
                    .as_string::<i32>()
                    .value(i)
                    .to_string(),
            )
        })
        .collect();
    (summary, rows, letters)
}

fn ints(batch: &RecordBatch, name: &str) -> Vec<i64> {
    let index = batch.schema().index_of(name).expect("column");
    batch
        .column(index)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

#[test]
fn a_stray_quote_costs_only_its_line() {
    // Issue 12: `x"y` made the rest of the file (3 999 999 good rows) one dead letter.
    let input = "id,ts,name\n1,1700000000000,a\n2,1700000000001,x\"y\n3,1700000000002,\"open\n4,1700000000003,b\n";
    let (summary, rows, dead) = run_job("csv", input.as_bytes(), "", "");
    assert_eq!(ints(&rows, "id"), [1, 2, 4]);
    assert_eq!(summary.counts.malformed, 1);
    assert_eq!(dead[0].0, 4);
    assert_eq!(dead[0].1, "3,1700000000002,\"open");
    assert!(dead[0].2.contains("quoted field"), "{}", dead[0].2);
}

#[test]
fn a_bad_value_in_the_inference_sample_costs_only_its_row() {
    // Issue 12: `oops` among the sampled times made `ts` text: 0 rows out of 3.
    let input = "id,ts,v\n1,1700000000000,5\n2,oops,5\n3,1700000000002,5\n";
    let (summary, rows, dead) = run_job("csv", input.as_bytes(), "", "");
    assert_eq!(ints(&rows, "id"), [1, 3]);
    assert_eq!(summary.counts.malformed, 1);
    assert_eq!(
        dead,
        [(
            3,
            "2,oops,5".to_string(),
            "column `ts`: cannot parse `oops` as Int64".to_string()
        )]
    );
}

#[test]
fn event_times_out_of_range_are_dead_letters_and_windows_stay_in_range() {
    // Issue 12: i64::MIN wrapped window bounds; 1.7e18 (ns read as ms) failed the CSV sink on
    // every restart. Both are dead letters; the window of the good rows is right.
    let input =
        "ts,k\n1700000000000,1\n-9223372036854775808,1\n1700000000000000000,1\n1700000000500,1\n";
    let window = r#"
[[operators]]
type = "window"
key = "k"
window = { type = "tumbling", size = "1s" }
aggregates = [{ fn = "count", as = "n" }]
"#;
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("in.csv"), input).expect("write");
    let text = format!(
        "[source]\ntype = \"csv\"\npath = \"in.csv\"\n[event_time]\ncolumn = \"ts\"\n{window}\n\
         [sink]\ntype = \"csv\"\npath = \"out/windows.csv\"\n\
         [dead_letter]\ntype = \"jsonl\"\npath = \"out/dead.jsonl\"\n"
    );
    let job = JobFile::parse(&text, &dir.path().join("job.toml"), &[]).expect("job");
    let summary = job
        .pipeline(BackendChoice::Cpu)
        .expect("pipeline")
        .run_blocking()
        .expect("the CSV sink prints every window");
    assert_eq!(summary.counts.malformed, 2);
    let windows = fs::read_to_string(dir.path().join("out/windows.csv")).expect("windows");
    // 1 700 000 000 000 ms is 2023-11-14T22:13:20Z.
    assert_eq!(
        windows,
        "k,window_start,window_end,n\n1,2023-11-14T22:13:20Z,2023-11-14T22:13:21Z,2\n"
    );
    let dead = read_jsonl(&dir.path().join("out/dead.jsonl"), DeadLetter::schema());
    let lines: Vec<u64> = dead
        .column(1)
        .as_primitive::<UInt64Type>()
        .values()
        .to_vec();
    assert_eq!(lines, [3, 4]);
    let raws: Vec<&str> = (0..2)
        .map(|i| {
            dead.column_by_name("raw")
                .expect("raw")
                .as_string::<i32>()
                .value(i)
        })
        .collect();
    assert_eq!(raws, ["-9223372036854775808,1", "1700000000000000000,1"]);
}

#[test]
fn a_time_no_sink_can_print_is_a_dead_letter_not_a_sink_failure() {
    // Issue 12: an event time in ns (year 53 million as ms) failed the CSV sink ("Failed to
    // convert ... to datetime") on every restart, so nothing was published again.
    let dir = tempfile::tempdir().expect("tempdir");
    let input = "ts,k\n1700000000000,1\n1700000000000000000,2\n1700000000001,3\n";
    fs::write(dir.path().join("in.csv"), input).expect("write");
    let text = "[source]\ntype = \"csv\"\npath = \"in.csv\"\n[event_time]\ncolumn = \"ts\"\n\
        [sink]\ntype = \"csv\"\npath = \"out/rows.csv\"\n\
        [dead_letter]\ntype = \"jsonl\"\npath = \"out/dead.jsonl\"\n";
    let job = JobFile::parse(text, &dir.path().join("job.toml"), &[]).expect("job");
    let summary = job
        .pipeline(BackendChoice::Cpu)
        .expect("pipeline")
        .run_blocking()
        .expect("the sink prints every row it gets");
    assert_eq!(summary.counts.malformed, 1);
    let rows = fs::read_to_string(dir.path().join("out/rows.csv")).expect("rows");
    // 1 700 000 000 000 ms is 2023-11-14T22:13:20Z.
    assert_eq!(
        rows,
        "ts,k\n2023-11-14T22:13:20Z,1\n2023-11-14T22:13:20.001Z,3\n"
    );
    let dead = fs::read_to_string(dir.path().join("out/dead.jsonl")).expect("dead");
    assert!(
        dead.contains("\"line\":3") && dead.contains("\"raw\":\"1700000000000000000,2\""),
        "{dead}"
    );
}

#[test]
fn a_file_with_lone_cr_line_ends_is_read_line_by_line() {
    // Issue 12: 0 rows and 0 dead letters, exit 0.
    let input = "ts,k\r1700000000000,1\r1700000000001,2\rbad\r";
    let (summary, rows, dead) = run_job("csv", input.as_bytes(), "", "");
    assert_eq!(ints(&rows, "k"), [1, 2]);
    assert_eq!(summary.counts.malformed, 1);
    assert_eq!(
        dead,
        [(
            4,
            "bad".to_string(),
            "expected 2 fields, found 1".to_string()
        )]
    );
}

#[test]
fn outputs_on_one_path_are_refused_before_any_file_is_touched() {
    // Issue 12: `[sink]` and `[dead_letter]` on one path were accepted and the file clobbered.
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("in.csv"), CSV).expect("write");
    fs::create_dir(dir.path().join("out")).expect("mkdir");
    fs::write(dir.path().join("out/rows.jsonl"), "keep me\n").expect("write");
    let text = "[source]\ntype = \"csv\"\npath = \"in.csv\"\n[event_time]\ncolumn = \"ts\"\n\
        [sink]\ntype = \"jsonl\"\npath = \"out/rows.jsonl\"\n\
        [dead_letter]\ntype = \"jsonl\"\npath = \"out/./rows.jsonl\"\n";
    let job = JobFile::parse(text, &dir.path().join("job.toml"), &[]).expect("job");
    let err = job.validate().expect_err("one path twice").to_string();
    assert!(
        err.ends_with(
            "job.toml: dead_letter.path: `out/./rows.jsonl` is the path of `sink.path` \
             (`out/rows.jsonl`) too; the two outputs would overwrite each other: give each \
             its own path"
        ),
        "{err}"
    );
    assert!(job.pipeline(BackendChoice::Cpu).is_err());
    let kept = fs::read_to_string(dir.path().join("out/rows.jsonl")).expect("read");
    assert_eq!(kept, "keep me\n");
}
