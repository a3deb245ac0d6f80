//! Malformed input: the dead-letter output holds exactly the bad lines with their line numbers,
//! and every good row is processed; `strict` stops at the first bad line instead.

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
    let dead = read_jsonl(&dir.join("out/dead.jsonl"), DeadLetter::schema());
    let lines: Vec<u64> = dead
        .column(1)
        .as_primitive::<UInt64Type>()
        .iter()
        .map(|l| l.expect("line"))
        .collect();
    let raws: Vec<&str> = (0..dead.num_rows())
        .map(|i| dead.column(4).as_string::<i32>().value(i))
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
        let reason = dead.column(3).as_string::<i32>().value(i);
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
        (5, "ts=null,sensor=5,speed=4.5"),
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
