//! Seeded mutation test (issue 12): files of known-good CSV and JSON lines, a known subset of
//! them mutated, read by the sources and run as whole jobs. Every good line must come out
//! exactly, by line and value, and every mutated line as a dead letter naming its line, or as
//! the record its mutation happens to leave. What a mutation leaves is decided here, by the
//! rules docs/jobs.md states (a quote opens a field only at its start; a CR that does not end
//! a line of an LF file is text; times outside 0000..=9999 are bad), never by running the code.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{Float64Type, Int64Type, SchemaRef, TimestampMillisecondType, UInt64Type};
use sluice::job::{BackendChoice, JobFile};
use sluice_connectors::SourceSpec;
use sluice_engine::source::{DeadLetter, Location, SourceContext};

use crate::common::Rng;

/// Lines per file, and the share of them mutated.
const LINES: usize = 600;
const MUTATED: f64 = 0.2;

/// A good record's values.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    id: i64,
    ts: i64,
    name: String,
    note: String,
    amount: Option<f64>,
}

/// What must come of a line.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Row(Row),
    Dead,
    /// A blank line: nothing at all.
    Nothing,
}

/// A file with what must come of each of its lines (1-based).
struct Case {
    text: Vec<u8>,
    lines: BTreeMap<u64, (Outcome, Vec<u8>)>,
}

impl Case {
    fn rows(&self) -> BTreeMap<u64, Row> {
        let rows = self.lines.iter().filter_map(|(&n, (o, _))| match o {
            Outcome::Row(row) => Some((n, row.clone())),
            _ => None,
        });
        rows.collect()
    }

    /// The dead lines and their text as read.
    fn dead(&self) -> BTreeMap<u64, String> {
        let dead = self.lines.iter().filter(|(_, (o, _))| *o == Outcome::Dead);
        dead.map(|(&n, (_, raw))| (n, String::from_utf8_lossy(raw).into_owned()))
            .collect()
    }
}

/// The good record of line `i`: ids from 1 000, a second apart from 2026-01-01T00:00:00Z.
fn good_row(i: usize) -> Row {
    let id = 1_000 + i as i64;
    let note = match i % 3 {
        0 => format!("say \"hi\" {id}"),
        _ => format!("a,{id}"),
    };
    Row {
        id,
        ts: 1_767_225_600_000 + i as i64 * 1_000 + (i % 7) as i64,
        name: format!("n{id}"),
        note,
        amount: Some(id as f64 + 0.25),
    }
}

/// Event time as text: RFC 3339 on even lines, integer ms on odd ones.
fn ts_text(i: usize, ms: i64) -> String {
    if i % 2 == 1 {
        return ms.to_string();
    }
    let of_day = ms - 1_767_225_600_000;
    let (s, milli) = (of_day / 1_000, of_day % 1_000);
    format!(
        "2026-01-01T{:02}:{:02}:{:02}.{milli:03}Z",
        s / 3_600,
        s / 60 % 60,
        s % 60
    )
}

const NANOS: fn(i64) -> String = |ms| (ms * 1_000_000).to_string();
const MIN: &str = "-9223372036854775808";

/// A CSV line from its fields: `id,ts,name,"note",amount`.
fn csv_line(fields: &[Vec<u8>]) -> Vec<u8> {
    fields.join(&b","[..])
}

/// Line `i` of a CSV file, mutated by `kind` (if any): its bytes and what must come of it.
fn csv_record(i: usize, kind: Option<u64>, rng: &mut Rng) -> (Vec<u8>, Outcome) {
    let row = good_row(i);
    let mut fields: Vec<Vec<u8>> = vec![
        row.id.to_string().into_bytes(),
        ts_text(i, row.ts).into_bytes(),
        row.name.clone().into_bytes(),
        format!("\"{}\"", row.note.replace('"', "\"\"")).into_bytes(),
        format!("{:?}", row.amount.unwrap_or_default()).into_bytes(),
    ];
    let id = row.id;
    let kind = match kind {
        None => return (csv_line(&fields), Outcome::Row(row)),
        Some(k) => k % 15,
    };
    let outcome = match kind {
        // A quote inside a field is text.
        0 => {
            fields[2] = format!("n\"{id}").into_bytes();
            let name = format!("n\"{id}");
            Outcome::Row(Row { name, ..row })
        }
        1 => {
            fields[4] = format!("{id}.2\"5").into_bytes();
            Outcome::Dead
        }
        // A quote at the start of the last field never closes: its line alone is dead.
        2 => {
            fields[4].insert(0, b'"');
            Outcome::Dead
        }
        // At the start of `name` it opens a field that the note's opening quote closes
        // improperly; the rest of the note is text. `"n1,"a,1",1.25` has 5 fields (`n1,a`,
        // `1"`); `"n3,"say ""hi"" 3",3.25` has 4.
        3 => {
            fields[2].insert(0, b'"');
            match row.note.strip_prefix("a,") {
                Some(rest) => Outcome::Row(Row {
                    name: format!("n{id},a"),
                    note: format!("{rest}\""),
                    ..row
                }),
                None => Outcome::Dead,
            }
        }
        // Cut before the last comma: fewer fields, or a quote left open.
        4 => {
            let line = csv_line(&fields);
            let last_comma = line.iter().rposition(|&b| b == b',').unwrap_or(1);
            let cut = 1 + rng.below(last_comma as u64 - 1) as usize;
            return (line[..cut].to_vec(), Outcome::Dead);
        }
        5 => {
            fields[4].insert(0, b'x');
            Outcome::Dead
        }
        6 => {
            fields[2].insert(1, 0xFF);
            Outcome::Dead
        }
        7 => {
            fields[0] = b"99999999999999999999".to_vec();
            Outcome::Dead
        }
        8 => {
            fields[1] = NANOS(row.ts).into_bytes();
            Outcome::Dead
        }
        9 => {
            fields[1] = MIN.as_bytes().to_vec();
            Outcome::Dead
        }
        // In a file of LF lines a CR elsewhere is text: no number, but a fine name.
        10 => {
            fields[4].insert(2, b'\r');
            Outcome::Dead
        }
        11 => {
            fields.push(b"extra".to_vec());
            Outcome::Dead
        }
        12 => return (Vec::new(), Outcome::Nothing),
        13 => {
            fields[1] = b"yesterday".to_vec();
            Outcome::Dead
        }
        _ => {
            fields[2].insert(1, b'\r');
            let name = format!("n\r{id}");
            Outcome::Row(Row { name, ..row })
        }
    };
    (csv_line(&fields), outcome)
}

/// Line `i` of a JSON-lines file, mutated by `kind` (if any).
fn json_record(i: usize, kind: Option<u64>, rng: &mut Rng) -> (Vec<u8>, Outcome) {
    let row = good_row(i);
    let ts = match i % 2 {
        1 => row.ts.to_string(),
        _ => format!("\"{}\"", ts_text(i, row.ts)),
    };
    let note = row.note.replace('"', "\\\"");
    let amount = format!("{:?}", row.amount.unwrap_or_default());
    let (id, name) = (row.id, row.name.clone());
    let line = |id: &str, ts: &str, name: &[u8], amount: Option<&str>, extra: &str| {
        let mut out = format!("{{\"id\":{id},\"ts\":{ts},\"name\":\"").into_bytes();
        out.extend_from_slice(name);
        out.extend(format!("\",\"note\":\"{note}\"").bytes());
        if let Some(amount) = amount {
            out.extend(format!(",\"amount\":{amount}").bytes());
        }
        out.extend(format!("{extra}}}").bytes());
        out
    };
    let good = line(&id.to_string(), &ts, name.as_bytes(), Some(&amount), "");
    let kind = match kind {
        None => return (good, Outcome::Row(row)),
        Some(k) => k % 13,
    };
    let id = id.to_string();
    let (bytes, outcome) = match kind {
        // Any proper prefix of an object is not JSON.
        0 => {
            let cut = 1 + rng.below(good.len() as u64 - 1) as usize;
            (good[..cut].to_vec(), Outcome::Dead)
        }
        1 => {
            let text = format!("\"x{amount}\"");
            (
                line(&id, &ts, name.as_bytes(), Some(&text), ""),
                Outcome::Dead,
            )
        }
        2 => {
            let name = format!("n\"{id}");
            (
                line(&id, &ts, name.as_bytes(), Some(&amount), ""),
                Outcome::Dead,
            )
        }
        3 => {
            let mut name = name.clone().into_bytes();
            name.insert(1, 0xFF);
            (line(&id, &ts, &name, Some(&amount), ""), Outcome::Dead)
        }
        4 => {
            let huge = "100000000000000000000";
            (
                line(huge, &ts, name.as_bytes(), Some(&amount), ""),
                Outcome::Dead,
            )
        }
        5 => (
            line(&id, &NANOS(row.ts), name.as_bytes(), Some(&amount), ""),
            Outcome::Dead,
        ),
        6 => (
            line(&id, MIN, name.as_bytes(), Some(&amount), ""),
            Outcome::Dead,
        ),
        // Keys the source does not know are ignored.
        7 => (
            line(&id, &ts, name.as_bytes(), Some(&amount), ",\"extra\":[1]"),
            Outcome::Row(row),
        ),
        8 => {
            let mut two = good.clone();
            two.push(b' ');
            two.extend_from_slice(&good);
            (two, Outcome::Dead)
        }
        // A CR between tokens is JSON whitespace (the file's lines end with LF).
        9 => {
            let mut spaced = good.clone();
            let at = spaced.iter().position(|&b| b == b',').unwrap_or(1) + 1;
            spaced.insert(at, b'\r');
            (spaced, Outcome::Row(row))
        }
        10 => (Vec::new(), Outcome::Nothing),
        // A missing key is null.
        11 => (
            line(&id, &ts, name.as_bytes(), None, ""),
            Outcome::Row(Row {
                amount: None,
                ..row
            }),
        ),
        _ => (
            line(&id, "\"yesterday\"", name.as_bytes(), Some(&amount), ""),
            Outcome::Dead,
        ),
    };
    (bytes, outcome)
}

type Record = fn(usize, Option<u64>, &mut Rng) -> (Vec<u8>, Outcome);

/// A file of `LINES` lines after `header`, a seeded share of them mutated (never the first,
/// whose line end decides how lines end).
fn case(seed: u64, header: Option<&str>, record: Record) -> Case {
    let mut rng = Rng::new(seed);
    let mut text = Vec::new();
    let mut lines = BTreeMap::new();
    let mut number = 0u64;
    if let Some(header) = header {
        text.extend_from_slice(header.as_bytes());
        text.push(b'\n');
        number += 1;
    }
    for i in 0..LINES {
        let kind = (i > 0 && rng.unit() < MUTATED).then(|| rng.next_u64());
        let (bytes, outcome) = record(i, kind, &mut rng);
        text.extend_from_slice(&bytes);
        text.push(b'\n');
        number += 1;
        lines.insert(number, (outcome, bytes));
    }
    Case { text, lines }
}

const CSV_HEADER: &str = "id,ts,name,note,amount";

fn csv_case(seed: u64) -> Case {
    case(seed, Some(CSV_HEADER), csv_record)
}

fn json_case(seed: u64) -> Case {
    case(seed, None, json_record)
}

/// The declared columns, in TOML; `ts` only when `declare_ts`.
fn columns(declare_ts: bool) -> String {
    let ts = if declare_ts {
        r#"{ name = "ts", type = "timestamp" }, "#
    } else {
        ""
    };
    format!(
        r#"[{{ name = "id", type = "int64" }}, {ts}{{ name = "name", type = "string" }}, {{ name = "note", type = "string" }}, {{ name = "amount", type = "float64" }}]"#
    )
}

/// The rows of `batch` (columns found by name), in order.
fn rows_of(batch: &RecordBatch) -> Vec<Row> {
    let column = |name: &str| {
        let index = batch.schema().index_of(name).expect("column");
        batch.column(index).clone()
    };
    let (id, ts, name, note, amount) = (
        column("id"),
        column("ts"),
        column("name"),
        column("note"),
        column("amount"),
    );
    let (id, ts) = (
        id.as_primitive::<Int64Type>(),
        ts.as_primitive::<TimestampMillisecondType>(),
    );
    let (name, note) = (name.as_string::<i32>(), note.as_string::<i32>());
    let amount = amount.as_primitive::<Float64Type>();
    (0..batch.num_rows())
        .map(|r| Row {
            id: id.value(r),
            ts: ts.value(r),
            name: name.value(r).to_string(),
            note: note.value(r).to_string(),
            amount: amount.is_valid(r).then(|| amount.value(r)),
        })
        .collect()
}

/// Reads `case` with the source `spec` (TOML) names, in batches of 64 records; checks every
/// line's outcome.
fn check_source(case: &Case, spec: &str, file: &str, seed: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join(file), &case.text).expect("write");
    let spec: SourceSpec = toml::from_str(spec).expect("source spec");
    let source = spec.build(dir.path()).expect("source");
    let ctx = SourceContext {
        batch_rows: 64,
        projection: None,
    };
    let (mut rows, mut dead) = (BTreeMap::new(), BTreeMap::new());
    for mut partition in source.open(&ctx).expect("open") {
        while let Some(read) = partition.next_batch().expect("batch") {
            let lines = read
                .locations
                .clone()
                .expect("text sources locate rows by line");
            for (&line, row) in lines.iter().zip(rows_of(&read.batch)) {
                assert!(rows.insert(line, row).is_none(), "line {line} twice");
            }
            for letter in read.dead_letters {
                let Location::Line(line) = letter.location else {
                    panic!("a dead letter without its line: {letter:?}");
                };
                assert!(letter.source.ends_with(file), "{letter:?}");
                assert!(dead.insert(line, letter.raw).is_none(), "line {line} twice");
            }
        }
    }
    assert_eq!(rows, case.rows(), "{file} seed {seed}: good rows");
    assert_eq!(dead, case.dead(), "{file} seed {seed}: dead letters");
}

#[test]
fn every_good_csv_line_comes_out_and_every_bad_one_is_a_dead_letter() {
    for seed in [1, 2, 3] {
        let case = csv_case(seed);
        let spec = format!(
            "type = \"csv\"\npath = \"in.csv\"\ncolumns = {}",
            columns(true)
        );
        check_source(&case, &spec, "in.csv", seed);
    }
}

#[test]
fn every_good_json_line_comes_out_and_every_bad_one_is_a_dead_letter() {
    for seed in [1, 2, 3] {
        let case = json_case(seed);
        let spec = format!(
            "type = \"jsonl\"\npath = \"in.jsonl\"\ncolumns = {}",
            columns(true)
        );
        check_source(&case, &spec, "in.jsonl", seed);
    }
}

fn job_text(format: &str, file: &str, declare_ts: bool) -> String {
    format!(
        r#"
[source]
type = "{format}"
path = "{file}"
batch_rows = 50
columns = {columns}
[event_time]
column = "ts"
[sink]
type = "jsonl"
path = "out/rows.jsonl"
[dead_letter]
type = "jsonl"
path = "out/dead.jsonl"
"#,
        columns = columns(declare_ts)
    )
}

fn read_jsonl(path: &Path, schema: SchemaRef) -> RecordBatch {
    let text = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = arrow::json::ReaderBuilder::new(schema.clone())
        .build(std::io::Cursor::new(text))
        .expect("reader");
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("json");
    concat_batches(&schema, &batches).expect("concat")
}

/// Checks a job's output folder against `case`: rows by id (the sink has no lines), dead
/// letters by line, every dead letter with all five keys.
fn check_job_output(case: &Case, out: &Path, output: SchemaRef, what: &str) {
    let rows = rows_of(&read_jsonl(&out.join("rows.jsonl"), output));
    let got: BTreeMap<i64, Row> = rows.into_iter().map(|r| (r.id, r)).collect();
    let want: BTreeMap<i64, Row> = case.rows().into_values().map(|r| (r.id, r)).collect();
    assert_eq!(got, want, "{what}: rows");
    let text = fs::read_to_string(out.join("dead.jsonl")).expect("dead letters");
    for line in text.lines() {
        for key in ["source", "line", "row", "reason", "raw"] {
            assert!(
                line.contains(&format!("\"{key}\":")),
                "{what}: {key} in {line}"
            );
        }
    }
    let dead = read_jsonl(&out.join("dead.jsonl"), DeadLetter::schema());
    let lines = dead.column(1).as_primitive::<UInt64Type>();
    let raws = dead.column_by_name("raw").expect("raw").as_string::<i32>();
    let got: BTreeMap<u64, String> = (0..dead.num_rows())
        .map(|r| (lines.value(r), raws.value(r).to_string()))
        .collect();
    assert_eq!(got, case.dead(), "{what}: dead letters");
}

#[test]
fn a_mutated_csv_file_runs_through_the_sluice_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let case = csv_case(7);
    fs::write(dir.path().join("in.csv"), &case.text).expect("write");
    let job = dir.path().join("job.toml");
    fs::write(&job, job_text("csv", "in.csv", true)).expect("job");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--backend", "cpu"])
        .arg(&job)
        .output()
        .expect("run sluice");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let dead = case.dead().len();
    assert!(stderr.contains(&format!("malformed   {dead}")), "{stderr}");
    let schemas = JobFile::load(&job, &[])
        .expect("job")
        .validate()
        .expect("valid");
    check_job_output(&case, &dir.path().join("out"), schemas.output, "csv job");
}

#[test]
fn a_mutated_json_file_runs_as_a_job_with_event_times_checked_at_ingestion() {
    // `ts` is not declared: JSON lines hold it as text and as numbers, so it is read as
    // text, and the runtime parses and range-checks it.
    let dir = tempfile::tempdir().expect("tempdir");
    let case = json_case(8);
    fs::write(dir.path().join("in.jsonl"), &case.text).expect("write");
    let job = JobFile::parse(
        &job_text("jsonl", "in.jsonl", false),
        &dir.path().join("job.toml"),
        &[],
    )
    .expect("job");
    let schemas = job.validate().expect("valid");
    let summary = job
        .pipeline(BackendChoice::Cpu)
        .expect("pipeline")
        .run_blocking()
        .expect("run");
    assert_eq!(summary.counts.malformed, case.dead().len() as u64);
    assert_eq!(summary.counts.events_out, case.rows().len() as u64);
    check_job_output(&case, &dir.path().join("out"), schemas.output, "json job");
}
