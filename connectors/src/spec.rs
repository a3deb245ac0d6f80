//! The `[source]` and `[sink]` tables of a job file, and how each builds its connector.
//!
//! Every spec is checked when it is built, before any data moves: a bad setting is an
//! [`Error::Config`] naming its key (`source.keys`), a file that cannot be read is an
//! [`Error::Io`] naming the path.

use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use serde::Deserialize;
use sluice_engine::checkpoint::{Place, StoreOptions, open_location};
use sluice_engine::duration::DurationMs;
use sluice_engine::sink::Sink;
use sluice_engine::source::Source;
use sluice_engine::{Error, Result};

use crate::file::{CsvSource, JsonlSource, ParquetSource};
use crate::generator::GeneratorSource;
use crate::kafka::{
    Delivery, KafkaSink, KafkaSinkSpec, KafkaSource, KafkaSourceSpec, TransactionScope,
    TransactionalKafkaSink,
};
use crate::sink::{
    CsvSink, DiscardSink, JsonlSink, ParquetSink, PartSink, StdoutSink, open_output,
};

/// Where a job's events come from: `[source]` with `type = "generator" | "csv" | "jsonl" |
/// "parquet" | "kafka"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceSpec {
    /// Synthetic events from a seeded generator.
    Generator(GeneratorSpec),
    /// CSV files with a header line.
    Csv(FileSourceSpec),
    /// JSON lines: one object per line.
    Jsonl(FileSourceSpec),
    /// Parquet files sharing one schema.
    Parquet(FileSourceSpec),
    /// The partitions of Kafka topics (boxed: its settings outweigh the others').
    Kafka(Box<KafkaSourceSpec>),
}

impl SourceSpec {
    /// Checks the settings and builds the source; relative paths are resolved against `base_dir`
    /// (the job file's folder).
    pub fn build(&self, base_dir: &Path) -> Result<Box<dyn Source>> {
        Ok(match self {
            SourceSpec::Generator(spec) => Box::new(GeneratorSource::new(spec)?),
            SourceSpec::Csv(spec) => Box::new(CsvSource::from_spec(spec, base_dir)?),
            SourceSpec::Jsonl(spec) => Box::new(JsonlSource::from_spec(spec, base_dir)?),
            SourceSpec::Parquet(spec) => Box::new(ParquetSource::from_spec(spec, base_dir)?),
            SourceSpec::Kafka(spec) => Box::new(KafkaSource::from_spec(spec, base_dir)?),
        })
    }

    /// The columns the source produces, checking its settings as [`SourceSpec::build`] does
    /// but reaching no server where the settings decide the columns (a Kafka source with
    /// declared columns); the other sources are built, which is cheap.
    pub fn schema(&self, base_dir: &Path) -> Result<SchemaRef> {
        match self {
            SourceSpec::Kafka(spec) => KafkaSource::schema_of(spec, base_dir),
            other => Ok(other.build(base_dir)?.schema()),
        }
    }
}

/// Which synthetic stream a generator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeneratorKind {
    /// Card payments: `ts, card_id, merchant_id, amount_cents, country, channel`.
    Transactions,
    /// Road sensors: `ts, segment_id, sensor_id, speed_kmh, vehicles`.
    Telemetry,
    /// Card logins: `ts, card_id, device_id, success` (the cards of `transactions`).
    Logins,
}

impl GeneratorKind {
    /// The name used in logs and partition names.
    pub fn name(self) -> &'static str {
        match self {
            GeneratorKind::Transactions => "transactions",
            GeneratorKind::Telemetry => "telemetry",
            GeneratorKind::Logins => "logins",
        }
    }
}

/// Settings of a synthetic source. The same settings always give the same events.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorSpec {
    /// The stream to generate: `"transactions"`, `"telemetry"` or `"logins"`.
    #[serde(rename = "generator")]
    pub kind: GeneratorKind,
    /// Seed of every random column (default 42).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How many events in all partitions together; absent means unbounded.
    #[serde(default)]
    pub events: Option<u64>,
    /// Wall-clock throttle in events per second over all partitions; absent or 0 is unthrottled.
    #[serde(default)]
    pub rate: Option<u64>,
    /// Number of distinct keys (cards or road segments); default 10 000 for transactions and
    /// logins, 500 for telemetry.
    #[serde(default)]
    pub keys: Option<u64>,
    /// Number of distinct merchants (transactions only; default 1 000).
    #[serde(default = "default_merchants")]
    pub merchants: u64,
    /// Zipf exponent over keys: 0 (default) is uniform, 1.2 makes a few keys very hot.
    #[serde(default)]
    pub skew: f64,
    /// The most an event's time may lag the latest event time so far (default 0: in order).
    #[serde(default)]
    pub disorder: DurationMs,
    /// Number of partitions; partition `p` generates the events whose index `i % partitions == p`
    /// (default 1).
    #[serde(default = "default_partitions")]
    pub partitions: usize,
    /// Events per second of event time (default 10 000), so the event-time span of a run does not
    /// depend on how fast it runs: event `i` is due at `start + i * 1000 / event_time_rate` ms.
    #[serde(default = "default_event_time_rate")]
    pub event_time_rate: u64,
    /// Event time of the first event, RFC 3339 (default `"2026-01-01T00:00:00Z"`).
    #[serde(default = "default_start")]
    pub start: String,
}

impl GeneratorSpec {
    /// A spec with every default for `kind`.
    pub fn new(kind: GeneratorKind) -> Self {
        GeneratorSpec {
            kind,
            seed: default_seed(),
            events: None,
            rate: None,
            keys: None,
            merchants: default_merchants(),
            skew: 0.0,
            disorder: DurationMs(0),
            partitions: default_partitions(),
            event_time_rate: default_event_time_rate(),
            start: default_start(),
        }
    }

    /// The number of keys, with the kind's default applied.
    pub fn key_count(&self) -> u64 {
        self.keys.unwrap_or(match self.kind {
            GeneratorKind::Transactions | GeneratorKind::Logins => 10_000,
            GeneratorKind::Telemetry => 500,
        })
    }
}

fn default_seed() -> u64 {
    42
}
fn default_merchants() -> u64 {
    1_000
}
fn default_partitions() -> usize {
    1
}
fn default_event_time_rate() -> u64 {
    10_000
}
fn default_start() -> String {
    "2026-01-01T00:00:00Z".to_string()
}
fn default_true() -> bool {
    true
}

/// Settings of a file source (CSV, JSON lines or Parquet). Every file is one partition.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceSpec {
    /// A file, a glob (`data/*.csv`) or a directory (every file in it with the format's
    /// extension: `.csv`; `.jsonl`, `.ndjson` or `.json`; `.parquet`), read in sorted order.
    pub path: String,
    /// Declared column types, in order: `columns = [{ name = "ts", type = "timestamp" }, ...]`.
    /// Columns not declared are inferred from the first file (integers as `int64`, decimals as
    /// `float64`, `true`/`false` as `bool`, date-times as `timestamp`, the rest as `string`); a
    /// stray bad value among the first 1000 records makes its column `string`, so declare the
    /// columns whose bad values should become dead letters. The file decides the column
    /// order (CSV header, Parquet schema), except for JSON lines, where declared columns come
    /// first in declared order and may be absent from the data (null).
    #[serde(default)]
    pub columns: Vec<ColumnSpec>,
    /// Rows per batch; absent means the runtime's preference.
    #[serde(default)]
    pub batch_rows: Option<usize>,
}

impl FileSourceSpec {
    /// A spec reading `path` with inferred columns.
    pub fn new(path: impl Into<String>) -> Self {
        FileSourceSpec {
            path: path.into(),
            columns: Vec::new(),
            batch_rows: None,
        }
    }
}

/// One declared column of a file source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// The column name as it appears in the file.
    pub name: String,
    /// How its values are parsed.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
}

impl ColumnSpec {
    /// The column `name`, parsed as `column_type`.
    pub fn new(name: impl Into<String>, column_type: ColumnType) -> Self {
        ColumnSpec {
            name: name.into(),
            column_type,
        }
    }
}

/// The column types a file source can be told to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// 64-bit signed integer.
    Int64,
    /// 32-bit signed integer.
    Int32,
    /// 64-bit float.
    Float64,
    /// UTF-8 text.
    String,
    /// `true` / `false`.
    Bool,
    /// Milliseconds since the epoch in UTC, parsed from RFC 3339 text or integer milliseconds.
    Timestamp,
}

impl ColumnType {
    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::String => DataType::Utf8,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Timestamp => timestamp_type(),
        }
    }
}

/// The one event-time type of sluice: `Timestamp(Millisecond, "UTC")`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Where a job's results go: `[sink]` with `type = "stdout" | "csv" | "jsonl" | "parquet" | "discard"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkSpec {
    /// Human-readable output on standard output.
    Stdout {
        /// `"table"` (default: aligned tables) or `"jsonl"`.
        #[serde(default)]
        format: StdoutFormat,
    },
    /// One CSV file (exactly-once: a folder of parts, see [`SinkSpec::build_exactly_once`]).
    Csv {
        /// The file to write (parent folders are created).
        path: String,
        /// Whether to write a header line (default true).
        #[serde(default = "default_true")]
        header: bool,
    },
    /// One JSON-lines file (exactly-once: a folder of parts).
    Jsonl {
        /// The file to write (parent folders are created).
        path: String,
    },
    /// Parquet output (exactly-once: a folder of parts, several per epoch with `rotate_rows`).
    Parquet {
        /// The file to write; with `rotate_rows`, the folder that receives `part-00000.parquet`, ...
        path: String,
        /// Start a new part file after this many rows; absent means a single file.
        #[serde(default)]
        rotate_rows: Option<usize>,
    },
    /// Counts rows and writes nothing (benchmarks).
    Discard,
    /// One message per row to a Kafka topic (boxed: its settings outweigh the others').
    Kafka(Box<KafkaSinkSpec>),
}

/// How the stdout sink prints batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdoutFormat {
    /// Aligned tables, one per batch.
    #[default]
    Table,
    /// One JSON object per row.
    Jsonl,
}

impl SinkSpec {
    /// Builds the sink for batches of `schema`; relative paths are resolved against `base_dir`.
    pub fn build(&self, schema: SchemaRef, base_dir: &Path) -> Result<Box<dyn Sink>> {
        let resolve = |path: &str| resolve_path(base_dir, path);
        Ok(match self {
            SinkSpec::Stdout { format } => Box::new(StdoutSink::new(*format)),
            SinkSpec::Csv { path, header } => {
                Box::new(CsvSink::create(resolve(path)?, schema, *header)?)
            }
            SinkSpec::Jsonl { path } => Box::new(JsonlSink::create(resolve(path)?, schema)?),
            SinkSpec::Parquet { path, rotate_rows } => {
                if *rotate_rows == Some(0) {
                    return Err(Error::config("sink.rotate_rows", "must be at least 1"));
                }
                Box::new(ParquetSink::create(resolve(path)?, schema, *rotate_rows)?)
            }
            SinkSpec::Discard => Box::new(DiscardSink::new()),
            SinkSpec::Kafka(spec) => Box::new(KafkaSink::create(spec, schema, "sink", base_dir)?),
        })
    }

    /// Builds the sink for a job with checkpoints, where output must appear exactly once.
    ///
    /// File sinks become transactional: `path` names a folder, or an object-store prefix
    /// (`s3://bucket/prefix`, `gs://...`, `az://...`), that receives one part per checkpoint
    /// epoch, `part-{epoch:08}.csv` (`.jsonl`, `.parquet`; with `rotate_rows`,
    /// `part-{epoch:08}-{n:03}.parquet`), staged in `path/_staging/` until the checkpoint
    /// commits. On object storage each part is written to a local temporary file and uploaded
    /// at the checkpoint. `stdout` and `discard` are built as by [`SinkSpec::build`]: they
    /// write through, so after a restart they may repeat what they wrote since the last
    /// checkpoint (at-least-once).
    pub fn build_exactly_once(&self, schema: SchemaRef, base_dir: &Path) -> Result<Box<dyn Sink>> {
        self.build_in_job(schema, base_dir, None)
    }

    /// As [`SinkSpec::build_exactly_once`], for a sink of a job: `scope` names the job, the
    /// sink's role and the checkpoint location, which a Kafka sink with `delivery =
    /// "exactly_once"` needs for its transactional id and its journal.
    pub fn build_in_job(
        &self,
        schema: SchemaRef,
        base_dir: &Path,
        scope: Option<&TransactionScope>,
    ) -> Result<Box<dyn Sink>> {
        let output = |path: &str| open_output(path, base_dir);
        Ok(match self {
            SinkSpec::Kafka(spec) if spec.delivery == Delivery::ExactlyOnce => {
                let scope = scope.ok_or_else(|| {
                    Error::Internal("an exactly-once Kafka sink was built outside a job".into())
                })?;
                Box::new(TransactionalKafkaSink::create(
                    spec, schema, scope, base_dir,
                )?)
            }
            // Other Kafka sinks are at least once with or without checkpoints.
            SinkSpec::Kafka(spec) => {
                let role = scope.map_or("sink", |s| s.role.as_str());
                Box::new(KafkaSink::create(spec, schema, role, base_dir)?)
            }
            SinkSpec::Stdout { .. } | SinkSpec::Discard => self.build(schema, base_dir)?,
            SinkSpec::Csv { path, header } => Box::new(PartSink::<CsvSink>::new(
                output(path)?,
                (schema, *header),
                None,
            )?),
            SinkSpec::Jsonl { path } => {
                Box::new(PartSink::<JsonlSink>::new(output(path)?, schema, None)?)
            }
            SinkSpec::Parquet { path, rotate_rows } => {
                if *rotate_rows == Some(0) {
                    return Err(Error::config("sink.rotate_rows", "must be at least 1"));
                }
                Box::new(PartSink::<ParquetSink>::new(
                    output(path)?,
                    schema,
                    *rotate_rows,
                )?)
            }
        })
    }

    /// Checks the settings as building the sink would (`exactly_once`: for a job with
    /// checkpoints), without creating a file or sending a request: `sluice validate` refuses
    /// what `sluice run` refuses.
    pub fn check(&self, exactly_once: bool) -> Result<()> {
        let (path, rotate_rows) = match self {
            SinkSpec::Stdout { .. } | SinkSpec::Discard => return Ok(()),
            SinkSpec::Kafka(spec) => return spec.check("sink", exactly_once),
            SinkSpec::Csv { path, .. } | SinkSpec::Jsonl { path } => (path, None),
            SinkSpec::Parquet { path, rotate_rows } => (path, *rotate_rows),
        };
        if rotate_rows == Some(0) {
            return Err(Error::config("sink.rotate_rows", "must be at least 1"));
        }
        if path.trim().is_empty() {
            return Err(Error::config("sink.path", "must not be empty"));
        }
        if exactly_once {
            open_location(path, "sink.path", &StoreOptions::default()).map(drop)
        } else {
            resolve_path(Path::new(""), path).map(drop)
        }
    }
}

/// `path` of a sink, resolved against `base_dir`: a local path or `file://` URL. Objects are
/// written whole, so a file sink without checkpoints, which appends until the job ends, cannot
/// write to object storage.
fn resolve_path(base_dir: &Path, path: &str) -> Result<PathBuf> {
    if path.trim().is_empty() {
        return Err(Error::config("sink.path", "must not be empty"));
    }
    match open_location(path, "sink.path", &StoreOptions::default())? {
        Place::Folder(folder) => Ok(base_dir.join(folder)),
        Place::Bucket(_) => Err(Error::config(
            "sink.path",
            format!(
                "`{path}`: writing to object storage needs a [checkpoint] section (parts \
                 are uploaded at each checkpoint); without one, write to a local path"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_generator_table_fills_in_defaults() {
        let spec: SourceSpec =
            toml::from_str("type = \"generator\"\ngenerator = \"telemetry\"\ndisorder = \"2s\"")
                .expect("parse");
        let SourceSpec::Generator(spec) = spec else {
            panic!("not a generator: {spec:?}")
        };
        assert_eq!(spec.kind, GeneratorKind::Telemetry);
        assert_eq!(
            (spec.seed, spec.events, spec.rate, spec.partitions),
            (42, None, None, 1)
        );
        assert_eq!(
            (spec.key_count(), spec.merchants, spec.event_time_rate),
            (500, 1_000, 10_000)
        );
        assert_eq!(spec.disorder, DurationMs(2_000));
        assert_eq!(spec.start, "2026-01-01T00:00:00Z");
    }

    #[test]
    fn unknown_keys_and_kinds_are_rejected_with_their_names() {
        let err = toml::from_str::<SourceSpec>("type = \"generator\"\ngenerator = \"traffic\"")
            .expect_err("kind");
        assert!(err.to_string().contains("traffic"), "{err}");
        let err = toml::from_str::<SourceSpec>("type = \"csv\"\npath = \"a.csv\"\nbatch = 3")
            .expect_err("key");
        assert!(err.to_string().contains("batch"), "{err}");
        let err = toml::from_str::<SinkSpec>("type = \"csv\"\npath = \"a.csv\"\nheaders = true")
            .expect_err("key");
        assert!(err.to_string().contains("headers"), "{err}");
    }

    #[test]
    fn declared_columns_keep_their_order_and_types() {
        let text = "type = \"csv\"\npath = \"in/*.csv\"\ncolumns = [{ name = \"ts\", type = \"timestamp\" }, \
                    { name = \"n\", type = \"int32\" }]";
        let SourceSpec::Csv(spec) = toml::from_str::<SourceSpec>(text).expect("parse") else {
            panic!("not csv")
        };
        let got: Vec<(&str, DataType)> = spec
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.column_type.data_type()))
            .collect();
        assert_eq!(got, vec![("ts", timestamp_type()), ("n", DataType::Int32)]);
    }

    #[test]
    fn an_exactly_once_kafka_sink_needs_checkpoints_and_is_refused_without() {
        let spec: SinkSpec = toml::from_str(
            "type = \"kafka\"\nbootstrap = \"127.0.0.1:9\"\ntopic = \"t\"\n\
             delivery = \"exactly_once\"",
        )
        .expect("kafka");
        spec.check(true).expect("with checkpoints");
        let err = spec.check(false).expect_err("without").to_string();
        assert!(
            err.starts_with("sink.delivery: exactly_once commits a Kafka transaction"),
            "{err}"
        );
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("x", DataType::Int64, false),
        ]));
        let err = spec
            .build(schema, Path::new("."))
            .expect_err("refused before connecting")
            .to_string();
        assert!(err.contains("needs a [checkpoint] section"), "{err}");
    }

    #[test]
    fn sink_tables_fill_in_defaults() {
        let stdout: SinkSpec = toml::from_str("type = \"stdout\"").expect("stdout");
        assert_eq!(
            stdout,
            SinkSpec::Stdout {
                format: StdoutFormat::Table
            }
        );
        let csv: SinkSpec = toml::from_str("type = \"csv\"\npath = \"o.csv\"").expect("csv");
        assert_eq!(
            csv,
            SinkSpec::Csv {
                path: "o.csv".into(),
                header: true
            }
        );
        let parquet: SinkSpec =
            toml::from_str("type = \"parquet\"\npath = \"o\"\nrotate_rows = 10").expect("pq");
        assert_eq!(
            parquet,
            SinkSpec::Parquet {
                path: "o".into(),
                rotate_rows: Some(10)
            }
        );
    }

    #[test]
    fn zero_rotation_is_a_config_error_naming_the_key() {
        let spec = SinkSpec::Parquet {
            path: "o".into(),
            rotate_rows: Some(0),
        };
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::empty());
        let err = spec.build(schema, Path::new(".")).expect_err("rotate 0");
        assert_eq!(err.to_string(), "sink.rotate_rows: must be at least 1");
    }

    #[test]
    fn exactly_once_file_sinks_publish_parts_in_a_folder() {
        use arrow::array::{ArrayRef, Int64Array, RecordBatch};
        let dir = tempfile::tempdir().expect("tempdir");
        let batch = RecordBatch::try_from_iter([(
            "id",
            Arc::new(Int64Array::from(vec![4, 5])) as ArrayRef,
        )])
        .expect("batch");
        let spec: SinkSpec = toml::from_str("type = \"csv\"\npath = \"out/o\"").expect("csv");
        let mut sink = spec
            .build_exactly_once(batch.schema(), dir.path())
            .expect("build");
        assert!(sink.transactional());
        sink.write(&batch).expect("write");
        let staged = sink.prepare(1).expect("prepare").expect("staged");
        sink.commit(&staged).expect("commit");
        let part = dir.path().join("out/o/part-00000001.csv");
        assert_eq!(std::fs::read_to_string(part).expect("read"), "id\n4\n5\n");

        for text in [
            "type = \"jsonl\"\npath = \"j\"",
            "type = \"parquet\"\npath = \"p\"\nrotate_rows = 3",
        ] {
            let spec: SinkSpec = toml::from_str(text).expect("spec");
            let sink = spec.build_exactly_once(batch.schema(), dir.path());
            assert!(sink.expect("build").transactional(), "{text}");
        }
        assert!(dir.path().join("j/_staging").is_dir());
        assert!(dir.path().join("p/_staging").is_dir());
    }

    #[test]
    fn object_store_paths_build_exactly_once_sinks_without_a_request() {
        let schema = Arc::new(arrow::datatypes::Schema::empty());
        for (text, url) in [
            (
                "type = \"csv\"\npath = \"s3://bucket/out\"",
                "s3://bucket/out",
            ),
            (
                "type = \"jsonl\"\npath = \"s3://bucket/j\"",
                "s3://bucket/j",
            ),
            (
                "type = \"parquet\"\npath = \"s3://bucket/p/\"\nrotate_rows = 3",
                "s3://bucket/p/",
            ),
        ] {
            let spec: SinkSpec = toml::from_str(text).expect("spec");
            // Whether or not an S3 server is configured, building sends no request.
            let sink = spec.build_exactly_once(schema.clone(), Path::new("."));
            let sink = sink.unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(sink.transactional(), "{text}");
            assert_eq!(sink.name(), url);
        }
    }

    #[test]
    fn an_object_store_path_without_checkpoints_is_a_config_error() {
        let spec: SinkSpec =
            toml::from_str("type = \"csv\"\npath = \"s3://bucket/o.csv\"").expect("csv");
        let schema = Arc::new(arrow::datatypes::Schema::empty());
        let err = spec
            .build(schema, Path::new("."))
            .expect_err("no checkpoints");
        let err = err.to_string();
        assert!(err.starts_with("sink.path: `s3://bucket/o.csv`: "), "{err}");
        assert!(err.contains("needs a [checkpoint] section"), "{err}");
    }

    #[test]
    fn exactly_once_stdout_and_discard_write_through() {
        let schema = Arc::new(arrow::datatypes::Schema::empty());
        for spec in [
            SinkSpec::Discard,
            SinkSpec::Stdout {
                format: StdoutFormat::Jsonl,
            },
        ] {
            let sink = spec
                .build_exactly_once(schema.clone(), Path::new("."))
                .expect("build");
            assert!(!sink.transactional(), "{spec:?}");
        }
        let spec = SinkSpec::Parquet {
            path: "o".into(),
            rotate_rows: Some(0),
        };
        let err = spec
            .build_exactly_once(schema, Path::new("."))
            .expect_err("rotate 0");
        assert_eq!(err.to_string(), "sink.rotate_rows: must be at least 1");
    }
}
