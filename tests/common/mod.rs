//! Shared test fixtures: seeded random event streams, a pipeline runner, and comparisons.

pub mod kafka;
pub mod kafka_log;
pub mod oracle;
pub mod over_oracle;
pub mod proxy;
pub mod rng;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sluice_engine::memory::{CollectSink, MemorySource};
use sluice_engine::prelude::*;

pub use rng::Rng;

/// How test keys look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// One Int64 column `k`.
    Int,
    /// One Utf8 column `k`.
    Str,
    /// Two columns: `k` (Int64) and `region` (Utf8).
    Multi,
}

/// A random event stream, column by column; `None` is null.
#[derive(Debug, Clone)]
pub struct Events {
    pub ts: Vec<i64>,
    pub key: Vec<i64>,
    pub region: Vec<String>,
    pub v_int: Vec<Option<i64>>,
    pub v_float: Vec<Option<f64>>,
    pub partition: Vec<usize>,
}

/// Parameters of a random stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamShape {
    pub rows: usize,
    pub keys: u64,
    /// Zipf-like skew: most rows on few keys.
    pub skew: bool,
    /// Maximum event-time disorder (ms) within a partition.
    pub disorder: i64,
    /// Event-time step between consecutive events (ms).
    pub step: i64,
    pub partitions: usize,
    pub seed: u64,
}

/// Event time of the first event: 2023-11-14T22:13:20Z, far from zero so offsets stay positive.
pub const T0: i64 = 1_700_000_000_000;

impl Events {
    pub fn generate(shape: StreamShape) -> Events {
        let mut rng = Rng::new(shape.seed);
        let n = shape.rows;
        let mut e = Events {
            ts: Vec::with_capacity(n),
            key: Vec::with_capacity(n),
            region: Vec::with_capacity(n),
            v_int: Vec::with_capacity(n),
            v_float: Vec::with_capacity(n),
            partition: Vec::with_capacity(n),
        };
        for i in 0..n {
            let base = T0 + i as i64 * shape.step;
            e.ts.push(base - rng.below(shape.disorder as u64 + 1) as i64);
            let key = if shape.skew {
                // Squaring a uniform draw puts most of the mass on small keys.
                let u = rng.unit();
                (u * u * u * shape.keys as f64) as i64
            } else {
                rng.below(shape.keys) as i64
            };
            e.key.push(key);
            e.region
                .push(["north", "south", "east|west", ""][rng.below(4) as usize].to_string());
            e.v_int
                .push((rng.below(20) != 0).then(|| rng.below(2_001) as i64 - 1_000));
            e.v_float
                .push((rng.below(20) != 0).then(|| rng.below(10_000) as f64 / 8.0 + 0.125));
            e.partition.push(i % shape.partitions);
        }
        e
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// The stream as one Arrow batch with `ts, k, [region], v_int, v_float`.
    pub fn to_batch(&self, kind: KeyKind, rows: &[usize]) -> RecordBatch {
        let ts =
            TimestampMillisecondArray::from(rows.iter().map(|&r| self.ts[r]).collect::<Vec<_>>());
        let mut columns: Vec<ArrayRef> = vec![Arc::new(ts)];
        match kind {
            KeyKind::Int => columns.push(Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|&r| self.key[r]),
            ))),
            KeyKind::Str => columns.push(Arc::new(StringArray::from_iter(
                rows.iter().map(|&r| string_key(self.key[r])),
            ))),
            KeyKind::Multi => {
                columns.push(Arc::new(Int64Array::from_iter_values(
                    rows.iter().map(|&r| self.key[r] % 50),
                )));
                columns.push(Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|&r| self.region[r].as_str()),
                )));
            }
        }
        columns.push(Arc::new(
            rows.iter().map(|&r| self.v_int[r]).collect::<Int64Array>(),
        ));
        columns.push(Arc::new(
            rows.iter()
                .map(|&r| self.v_float[r])
                .collect::<Float64Array>(),
        ));
        RecordBatch::try_new(schema(kind), columns).expect("test batch")
    }

    /// The rows of each partition, cut into batches of `batch_rows`.
    pub fn partitioned(
        &self,
        kind: KeyKind,
        partitions: usize,
        batch_rows: usize,
    ) -> Vec<Vec<RecordBatch>> {
        (0..partitions)
            .map(|p| {
                let rows: Vec<usize> = (0..self.len())
                    .filter(|&r| self.partition[r] == p)
                    .collect();
                rows.chunks(batch_rows.max(1))
                    .map(|chunk| self.to_batch(kind, chunk))
                    .collect()
            })
            .collect()
    }
}

/// The string form of a key: `key-N`, and null for every 37th key (a null key is a group).
pub fn string_key(key: i64) -> Option<String> {
    (key % 37 != 36).then(|| format!("key-{key}"))
}

/// The schema of [`Events::to_batch`].
pub fn schema(kind: KeyKind) -> SchemaRef {
    let mut fields = vec![Field::new(
        "ts",
        DataType::Timestamp(TimeUnit::Millisecond, None),
        false,
    )];
    match kind {
        KeyKind::Int => fields.push(Field::new("k", DataType::Int64, false)),
        KeyKind::Str => fields.push(Field::new("k", DataType::Utf8, true)),
        KeyKind::Multi => {
            fields.push(Field::new("k", DataType::Int64, false));
            fields.push(Field::new("region", DataType::Utf8, false));
        }
    }
    fields.push(Field::new("v_int", DataType::Int64, true));
    fields.push(Field::new("v_float", DataType::Float64, true));
    Arc::new(Schema::new(fields))
}

/// `ts` (Timestamp ms) and one Int64 column `name`: the shape of the hand-written cases.
pub fn ts_int_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new(name, DataType::Int64, false),
    ]))
}

/// A batch of [`ts_int_schema`]`(name)`.
pub fn ts_int_batch(name: &str, ts: Vec<i64>, values: Vec<i64>) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(ts)),
        Arc::new(Int64Array::from(values)),
    ];
    RecordBatch::try_new(ts_int_schema(name), columns).expect("test batch")
}

/// The key column names for `kind`.
pub fn key_names(kind: KeyKind) -> Vec<String> {
    match kind {
        KeyKind::Multi => vec!["k".into(), "region".into()],
        _ => vec!["k".into()],
    }
}

/// Every aggregate over both value columns.
pub fn all_aggregates() -> Vec<AggregateSpec> {
    use AggregateFunction::*;
    let mut out = vec![AggregateSpec::count("n")];
    for column in ["v_int", "v_float"] {
        for f in [Count, Sum, Min, Max, Avg, CountDistinct] {
            out.push(AggregateSpec::new(
                f,
                column,
                format!("{}_{column}", f.name()),
            ));
        }
    }
    out
}

/// What a test run produced.
pub struct Outcome {
    pub output: RecordBatch,
    pub late: Option<RecordBatch>,
    pub summary: RunSummary,
}

/// The backends every oracle test runs on: the CPU, and the GPU when an adapter opens
/// (lavapipe in CI). Without one the GPU run is skipped with a printed reason, unless
/// `REQUIRE_GPU=1`, which makes that a failure.
pub fn backends() -> Vec<Arc<dyn Backend>> {
    let mut all: Vec<Arc<dyn Backend>> = vec![cpu()];
    if let Some(gpu) = GpuBackend::for_tests() {
        all.push(Arc::new(gpu));
    }
    all
}

/// The CPU backend.
pub fn cpu() -> Arc<dyn Backend> {
    Arc::new(CpuBackend::new())
}

/// Runs `partitions` through a window operator on `backend` and collects everything.
pub fn run_window(
    backend: Arc<dyn Backend>,
    schema: SchemaRef,
    partitions: Vec<Vec<RecordBatch>>,
    spec: WindowAggregateSpec,
    delay: i64,
    max_rows: usize,
) -> Outcome {
    let batching = BatchingSpec {
        max_rows,
        max_delay: Duration::from_millis(50),
    };
    run_window_batched(backend, schema, partitions, spec, delay, batching)
}

/// [`run_window`] with micro-batches cut as `batching` says.
pub fn run_window_batched(
    backend: Arc<dyn Backend>,
    schema: SchemaRef,
    partitions: Vec<Vec<RecordBatch>>,
    spec: WindowAggregateSpec,
    delay: i64,
    batching: BatchingSpec,
) -> Outcome {
    let sink = CollectSink::new();
    let late = CollectSink::new();
    let builder = Pipeline::builder(
        Box::new(MemorySource::new(schema, partitions)),
        EventTimeSpec::new("ts", delay),
    )
    .batching(batching)
    .backend(backend)
    .window(spec);
    let schemas = builder.schemas().expect("schemas");
    let pipeline = builder
        .sink(Box::new(sink.clone()))
        .late_sink(Box::new(late.clone()))
        .build()
        .expect("pipeline");
    let summary = pipeline.run_blocking().expect("run");
    let late_schema = schemas.late.expect("late schema");
    Outcome {
        output: sink.concat(&schemas.output).expect("output"),
        late: Some(late.concat(&late_schema).expect("late")),
        summary,
    }
}

/// Runs integer-keyed `events` (two partitions, watermark 401 ms behind, micro-batches of at
/// most 700 rows) through `operators` on `backend` and collects the output.
pub fn run_operators(
    events: &Events,
    operators: Vec<OperatorSpec>,
    backend: Arc<dyn Backend>,
) -> RecordBatch {
    let sink = CollectSink::new();
    let mut builder = Pipeline::builder(
        Box::new(MemorySource::new(
            schema(KeyKind::Int),
            events.partitioned(KeyKind::Int, 2, 101),
        )),
        EventTimeSpec::new("ts", 401),
    )
    .batching(BatchingSpec {
        max_rows: 700,
        max_delay: Duration::from_millis(50),
    })
    .backend(backend);
    for operator in operators {
        builder = builder.operator(operator);
    }
    let output = builder.schemas().expect("schemas").output;
    builder
        .sink(Box::new(sink.clone()))
        .build()
        .expect("pipeline")
        .run_blocking()
        .expect("run");
    sink.concat(&output).expect("output")
}

/// A fresh URL prefix for test `name` in the S3 test bucket (`SLUICE_TEST_S3`, which
/// `scripts/test` points at a moto server), or `None` after printing why when there is none:
/// unless `REQUIRE_S3=1`, which makes a missing server a failure.
pub fn s3_test_prefix(name: &str) -> Option<String> {
    let base = std::env::var("SLUICE_TEST_S3").unwrap_or_default();
    if base.is_empty() {
        let why = "SLUICE_TEST_S3 is not set (scripts/test starts moto and sets it)";
        assert!(
            std::env::var("REQUIRE_S3").as_deref() != Ok("1"),
            "{name}: {why}, and REQUIRE_S3=1 forbids skipping"
        );
        eprintln!("skipping {name}: {why}");
        return None;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    Some(format!(
        "{}/{name}-{}-{nanos}",
        base.trim_end_matches('/'),
        std::process::id()
    ))
}
