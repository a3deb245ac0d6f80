//! Seeded synthetic sources: validated settings, partitions over the event index, throttling.
//!
//! Event `i` (a global index) belongs to partition `i % partitions` and is due at event time
//! `start + i * 1000 / event_time_rate` ms, moved back by up to `disorder`. Its values depend
//! only on the seed and `i`, so a run is reproducible whatever the batch size or the partition
//! count, and each partition's maximum event time advances steadily (good watermarks). The
//! same purity makes a partition's position just the count of events it has produced.

mod columns;
mod logins;
mod rng;
mod telemetry;
mod transactions;
mod zipf;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
use arrow::datatypes::SchemaRef;
use sluice_engine::source::{Position, Source, SourceBatch, SourceContext, SourcePartition};
use sluice_engine::{Error, Result};

use crate::spec::{GeneratorKind, GeneratorSpec};
use columns::Span;
use zipf::ZipfTable;

/// Checked generator settings, shared by the partitions.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    kind: GeneratorKind,
    seed: u64,
    events: Option<u64>,
    rate: Option<u64>,
    keys: u64,
    merchants: u64,
    zipf: Option<Arc<ZipfTable>>,
    disorder_ms: u64,
    partitions: u64,
    event_time_rate: u64,
    start_ms: i64,
}

impl Settings {
    fn new(spec: &GeneratorSpec) -> Result<Self> {
        let keys = spec.key_count();
        if keys == 0 {
            return Err(Error::config("source.keys", "must be at least 1"));
        }
        if spec.kind == GeneratorKind::Transactions && spec.merchants == 0 {
            return Err(Error::config("source.merchants", "must be at least 1"));
        }
        if !(spec.skew >= 0.0 && spec.skew.is_finite()) {
            return Err(Error::config(
                "source.skew",
                format!("must be a number ≥ 0, got {}", spec.skew),
            ));
        }
        if spec.skew > 0.0 && keys > ZipfTable::MAX_KEYS {
            let message = format!(
                "skewed keys are limited to {}, got {keys}",
                ZipfTable::MAX_KEYS
            );
            return Err(Error::config("source.keys", message));
        }
        if spec.partitions == 0 {
            return Err(Error::config("source.partitions", "must be at least 1"));
        }
        if spec.event_time_rate == 0 {
            return Err(Error::config(
                "source.event_time_rate",
                "must be at least 1 event per second",
            ));
        }
        let disorder_ms = u64::try_from(spec.disorder.as_millis())
            .map_err(|_| Error::config("source.disorder", "must not be negative"))?;
        let start_ms = string_to_timestamp_nanos(&spec.start)
            .map(|ns| ns.div_euclid(1_000_000))
            .map_err(|e| {
                Error::config(
                    "source.start",
                    format!("`{}` is not an RFC 3339 time: {e}", spec.start),
                )
            })?;
        let zipf = (spec.skew > 0.0).then(|| Arc::new(ZipfTable::new(keys, spec.skew)));
        Ok(Settings {
            kind: spec.kind,
            seed: spec.seed,
            events: spec.events,
            rate: spec.rate.filter(|&r| r > 0),
            keys,
            merchants: spec.merchants,
            zipf,
            disorder_ms,
            partitions: spec.partitions as u64,
            event_time_rate: spec.event_time_rate,
            start_ms,
        })
    }

    /// The event-time column of `span`, drawn from random stream `stream`.
    fn event_times(&self, span: Span, stream: u64) -> Vec<i64> {
        let bits = rng::Stream::new(self.seed, stream);
        columns::event_times(
            span,
            self.start_ms,
            self.event_time_rate,
            self.disorder_ms,
            bits,
        )
    }

    /// The key column of `span` (uniform or Zipf over `1..=keys`), from random stream `stream`.
    fn keys(&self, span: Span, stream: u64) -> Vec<i64> {
        columns::keys(
            span,
            self.keys,
            self.zipf.as_deref(),
            rng::Stream::new(self.seed, stream),
        )
    }

    /// How many of the `events` fall to partition `p`.
    fn partition_events(&self, p: u64) -> Option<u64> {
        self.events.map(|n| {
            if n > p {
                (n - p - 1) / self.partitions + 1
            } else {
                0
            }
        })
    }

    #[cfg(test)]
    pub(crate) fn for_test(keys: u64, skew: f64) -> Self {
        let spec = GeneratorSpec {
            keys: Some(keys),
            skew,
            ..GeneratorSpec::new(GeneratorKind::Transactions)
        };
        Settings::new(&spec).expect("valid test settings")
    }
}

/// A synthetic source of `transactions`, `telemetry` or `logins` events.
///
/// Its batches carry no row locations: every value is valid by construction, and a partition's
/// `n`-th row (0-based, over all its batches) is event `partition + n * partitions`.
#[derive(Debug)]
pub struct GeneratorSource {
    settings: Arc<Settings>,
    schema: SchemaRef,
}

impl GeneratorSource {
    /// Checks the settings (an [`Error::Config`] names the bad key) and builds the source.
    pub fn new(spec: &GeneratorSpec) -> Result<Self> {
        let settings = Settings::new(spec)?;
        let schema = match settings.kind {
            GeneratorKind::Transactions => transactions::schema(),
            GeneratorKind::Telemetry => telemetry::schema(),
            GeneratorKind::Logins => logins::schema(),
        };
        Ok(GeneratorSource {
            settings: Arc::new(settings),
            schema,
        })
    }
}

impl Source for GeneratorSource {
    fn name(&self) -> &str {
        self.settings.kind.name()
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn open(self: Box<Self>, ctx: &SourceContext) -> Result<Vec<Box<dyn SourcePartition>>> {
        let settings = &self.settings;
        let mut batch_rows = ctx.batch_rows.max(1);
        let throttle_per_second = settings
            .rate
            .map(|rate| rate as f64 / settings.partitions as f64);
        if let Some(per_second) = throttle_per_second {
            // Aim for about ten batches a second, so a slow stream still trickles in smoothly.
            batch_rows = batch_rows.min((per_second / 10.0).ceil().max(1.0) as usize);
        }
        // Generate only the columns the job reads.
        let width = self.schema.fields().len();
        let (schema, wanted) = match &ctx.projection {
            Some(indices) if indices.iter().all(|&i| i < width) => {
                let projected = self
                    .schema
                    .project(indices)
                    .map_err(Error::arrow("projecting the generator schema"))?;
                let wanted: Vec<bool> = (0..width).map(|i| indices.contains(&i)).collect();
                (Arc::new(projected), wanted)
            }
            _ => (self.schema.clone(), vec![true; width]),
        };
        let wanted: Arc<[bool]> = wanted.into();
        let partitions = (0..settings.partitions)
            .map(|p| {
                Box::new(GeneratorPartition {
                    settings: self.settings.clone(),
                    schema: schema.clone(),
                    wanted: wanted.clone(),
                    partition: p,
                    emitted: 0,
                    resumed_at: 0,
                    remaining: settings.partition_events(p),
                    batch_rows,
                    throttle: throttle_per_second.map(Throttle::new),
                }) as Box<dyn SourcePartition>
            })
            .collect();
        Ok(partitions)
    }
}

/// Keeps a partition's cumulative events at or below `per_second × elapsed` wall-clock time.
#[derive(Debug)]
struct Throttle {
    per_second: f64,
    started: Option<Instant>,
}

impl Throttle {
    fn new(per_second: f64) -> Self {
        Throttle {
            per_second,
            started: None,
        }
    }

    /// Blocks until `total` events in all may have been emitted.
    fn wait_until(&mut self, total: u64) {
        let started = *self.started.get_or_insert_with(Instant::now);
        let due = Duration::from_secs_f64(total as f64 / self.per_second);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// One shard of a generator: the events `partition, partition + partitions, ...`.
struct GeneratorPartition {
    settings: Arc<Settings>,
    schema: SchemaRef,
    wanted: Arc<[bool]>,
    partition: u64,
    /// Events emitted so far by this partition, in this run and the runs before a `seek`.
    emitted: u64,
    /// The value of `emitted` when this run started (the position sought, or 0).
    resumed_at: u64,
    /// Events left, or `None` when unbounded.
    remaining: Option<u64>,
    batch_rows: usize,
    throttle: Option<Throttle>,
}

impl SourcePartition for GeneratorPartition {
    fn name(&self) -> String {
        format!("{}[{}]", self.settings.kind.name(), self.partition)
    }

    fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        let len = match self.remaining {
            Some(0) => return Ok(None),
            Some(left) => left.min(self.batch_rows as u64) as usize,
            None => self.batch_rows,
        };
        if let Some(throttle) = &mut self.throttle {
            // The throttle paces this run only: events produced before a restart were already
            // paced then, and waiting for them again would stall a resumed job.
            throttle.wait_until(self.emitted - self.resumed_at + len as u64);
        }
        let settings = &self.settings;
        let span = Span {
            first: self.partition + self.emitted * settings.partitions,
            step: settings.partitions,
            len,
        };
        let batch = match settings.kind {
            GeneratorKind::Transactions => {
                transactions::batch(settings, &self.schema, span, &self.wanted)?
            }
            GeneratorKind::Telemetry => {
                telemetry::batch(settings, &self.schema, span, &self.wanted)?
            }
            GeneratorKind::Logins => logins::batch(settings, &self.schema, span, &self.wanted)?,
        };
        self.emitted += len as u64;
        self.remaining = self.remaining.map(|left| left - len as u64);
        Ok(Some(SourceBatch::new(batch)))
    }

    /// Events produced so far, in both fields.
    fn position(&self) -> Option<Position> {
        Some(Position {
            offset: self.emitted,
            records: self.emitted,
        })
    }

    /// Resumes after `position.offset` events: values and event times are pure functions of the
    /// event index, so nothing is replayed.
    fn seek(&mut self, position: Position) -> Result<()> {
        let refuse = |message: String| Error::Source {
            name: self.name(),
            message: format!("cannot resume at {position:?}: {message}"),
        };
        let Position { offset, records } = position;
        if offset != records {
            return Err(refuse(
                "a generator position counts events in both fields".into(),
            ));
        }
        let remaining = match self.settings.partition_events(self.partition) {
            Some(events) if offset > events => {
                return Err(refuse(format!("this partition has only {events} events")));
            }
            Some(events) => Some(events - offset),
            None => None,
        };
        // The last event this partition may still produce must have an index that fits a u64.
        let fits = offset
            .checked_mul(self.settings.partitions)
            .and_then(|i| i.checked_add(self.partition));
        if fits.is_none() {
            return Err(refuse("beyond the last event index".into()));
        }
        self.emitted = offset;
        self.resumed_at = offset;
        self.remaining = remaining;
        if let Some(throttle) = &mut self.throttle {
            throttle.started = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray};
    use arrow::datatypes::DataType;
    use sluice_engine::duration::DurationMs;

    /// 2026-01-01T00:00:00Z in ms: 56 years of 365 days plus 14 leap days, times 86 400 000.
    const START_MS: i64 = (56 * 365 + 14) * 86_400_000;

    fn run(spec: &GeneratorSpec, batch_rows: usize) -> Vec<Vec<RecordBatch>> {
        run_projected(spec, batch_rows, None)
    }

    fn run_projected(
        spec: &GeneratorSpec,
        batch_rows: usize,
        projection: Option<Vec<usize>>,
    ) -> Vec<Vec<RecordBatch>> {
        let source = Box::new(GeneratorSource::new(spec).expect("valid spec"));
        let partitions = source
            .open(&SourceContext {
                batch_rows,
                projection,
            })
            .expect("open");
        partitions
            .into_iter()
            .map(|mut p| {
                std::iter::from_fn(|| p.next_batch().expect("batch"))
                    .map(|b| b.batch)
                    .collect()
            })
            .collect()
    }

    fn int64s(batches: &[RecordBatch], column: &str) -> Vec<i64> {
        let column = |b: &RecordBatch| b.column_by_name(column).expect("column").clone();
        batches
            .iter()
            .flat_map(|b| {
                let array = column(b);
                match array.as_any().downcast_ref::<TimestampMillisecondArray>() {
                    Some(ts) => ts.values().to_vec(),
                    None => array
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .expect("int64")
                        .values()
                        .to_vec(),
                }
            })
            .collect()
    }

    fn spec(events: u64, partitions: usize) -> GeneratorSpec {
        GeneratorSpec {
            events: Some(events),
            partitions,
            keys: Some(100),
            merchants: 7,
            skew: 0.8,
            disorder: DurationMs(500),
            event_time_rate: 1_000,
            ..GeneratorSpec::new(GeneratorKind::Transactions)
        }
    }

    #[test]
    fn same_settings_give_the_same_events() {
        let first = run(&spec(5_000, 2), 700);
        assert_eq!(first, run(&spec(5_000, 2), 700));
        let other_seed = run(
            &GeneratorSpec {
                seed: 7,
                ..spec(5_000, 2)
            },
            700,
        );
        assert_ne!(
            int64s(&first[0], "card_id"),
            int64s(&other_seed[0], "card_id")
        );
    }

    #[test]
    fn partitions_split_the_event_indices_and_respect_the_bounds() {
        let out = run(&spec(10, 3), 2);
        let counts: Vec<usize> = out
            .iter()
            .map(|p| p.iter().map(|b| b.num_rows()).sum())
            .collect();
        assert_eq!(counts, vec![4, 3, 3]);
        // Event i is the same whatever the partition count: compare against one partition.
        let single = run(&spec(10, 1), 4);
        let all_cards = int64s(&single[0], "card_id");
        assert_eq!(
            int64s(&out[1], "card_id"),
            vec![all_cards[1], all_cards[4], all_cards[7]]
        );

        let big = run(&spec(20_000, 2), 1_000);
        for (p, batches) in big.iter().enumerate() {
            let ts = int64s(batches, "ts");
            let mut max_so_far = i64::MIN;
            for (k, &t) in ts.iter().enumerate() {
                // Rate 1000/s: event i is due at start + i ms and may be up to 500 ms early.
                let base = START_MS + (p + 2 * k) as i64;
                assert!(
                    (base - 500..=base).contains(&t),
                    "event {} at {t}, base {base}",
                    p + 2 * k
                );
                max_so_far = max_so_far.max(t);
                assert!(max_so_far - t <= 500);
            }
            assert!(
                int64s(batches, "card_id")
                    .iter()
                    .all(|c| (1..=100).contains(c))
            );
            assert!(
                int64s(batches, "merchant_id")
                    .iter()
                    .all(|m| (1..=7).contains(m))
            );
        }
    }

    #[test]
    fn skew_concentrates_events_on_the_hottest_key() {
        let top_share = |skew: f64| {
            let spec = GeneratorSpec {
                skew,
                keys: Some(1_000),
                ..spec(100_000, 1)
            };
            let mut counts = vec![0u32; 1_001];
            for card in int64s(&run(&spec, 10_000)[0], "card_id") {
                counts[card as usize] += 1;
            }
            f64::from(counts.iter().copied().max().unwrap_or(0)) / 100_000.0
        };
        let (uniform, skewed) = (top_share(0.0), top_share(1.2));
        // Uniform: 0.1% expected per key. Zipf 1.2 over 1000 keys: 1 / sum(k^-1.2) = 1 / 4.336 = 23.1%.
        assert!(uniform < 0.002, "uniform top share {uniform}");
        assert!((0.20..0.25).contains(&skewed), "skewed top share {skewed}");
    }

    #[test]
    fn telemetry_has_its_own_columns() {
        let spec = GeneratorSpec {
            events: Some(3),
            ..GeneratorSpec::new(GeneratorKind::Telemetry)
        };
        let out = run(&spec, 10);
        let names: Vec<String> = out[0][0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            ["ts", "segment_id", "sensor_id", "speed_kmh", "vehicles"]
        );
        // Default rate 10 000 events/s: events 0, 1, 2 are 0.1 ms apart, so all at the start.
        assert_eq!(int64s(&out[0], "ts"), vec![START_MS; 3]);
    }

    fn logins(events: u64, partitions: usize) -> GeneratorSpec {
        GeneratorSpec {
            events: Some(events),
            partitions,
            keys: Some(500),
            skew: 0.5,
            disorder: DurationMs(200),
            event_time_rate: 100,
            ..GeneratorSpec::new(GeneratorKind::Logins)
        }
    }

    #[test]
    fn logins_have_their_columns_and_repeat_with_the_seed() {
        let first = run(&logins(3_000, 2), 400);
        let schema = first[0][0].schema();
        let names: Vec<(&str, &DataType)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(
            names,
            [
                ("ts", &crate::spec::timestamp_type()),
                ("card_id", &DataType::Int64),
                ("device_id", &DataType::Int64),
                ("success", &DataType::Boolean),
            ]
        );
        assert_eq!(first, run(&logins(3_000, 2), 400));
        // The batch size and the partition count change nothing about event i.
        let single = run(&logins(3_000, 1), 1_000);
        let cards = int64s(&single[0], "card_id");
        let evens: Vec<i64> = cards.iter().step_by(2).copied().collect();
        assert_eq!(int64s(&first[0], "card_id"), evens);
        let other_seed = run(
            &GeneratorSpec {
                seed: 9,
                ..logins(3_000, 1)
            },
            1_000,
        );
        assert_ne!(cards, int64s(&other_seed[0], "card_id"));
        // Rate 100/s: event i is due at start + 10 i ms, at most 200 ms early.
        for (i, t) in int64s(&single[0], "ts").into_iter().enumerate() {
            let due = START_MS + 10 * i as i64;
            assert!((due - 200..=due).contains(&t), "event {i} at {t}");
        }
        assert!(cards.iter().all(|c| (1..=500).contains(c)));
    }

    #[test]
    fn logins_resume_at_every_batch_boundary() {
        let read = crate::resume::assert_resumes_everywhere(&|| open_spec(&logins(29, 2), 4));
        let whole = run(&logins(29, 2), 100);
        for (p, partition) in read.iter().enumerate() {
            assert_eq!(
                int64s(&batches(partition), "device_id"),
                int64s(&whole[p], "device_id")
            );
        }
        // Only the success flags: the card is not needed, the values are the same.
        let projected = || open_projected(&logins(13, 1), 5, Some(vec![3]));
        let read = crate::resume::assert_resumes_everywhere(&projected);
        let full = run(&logins(13, 1), 100);
        let got = batches(&read[0]);
        let flags = |batches: &[RecordBatch], column: usize| -> Vec<bool> {
            let column = |b: &RecordBatch| b.column(column).as_boolean().clone();
            batches
                .iter()
                .flat_map(|b| column(b).iter().flatten().collect::<Vec<_>>())
                .collect()
        };
        assert_eq!(flags(&got, 0), flags(&full[0], 3));
        assert_eq!(flags(&got, 0).len(), 13);
    }

    #[test]
    fn bad_settings_name_their_key() {
        let bad = |spec: GeneratorSpec| {
            GeneratorSource::new(&spec)
                .expect_err("invalid")
                .to_string()
        };
        let base = GeneratorSpec::new(GeneratorKind::Transactions);
        assert_eq!(
            bad(GeneratorSpec {
                keys: Some(0),
                ..base.clone()
            }),
            "source.keys: must be at least 1"
        );
        assert!(
            bad(GeneratorSpec {
                skew: -1.0,
                ..base.clone()
            })
            .starts_with("source.skew: ")
        );
        assert!(
            bad(GeneratorSpec {
                partitions: 0,
                ..base.clone()
            })
            .starts_with("source.partitions: ")
        );
        let start = bad(GeneratorSpec {
            start: "yesterday".into(),
            ..base
        });
        assert!(start.starts_with("source.start: `yesterday`"), "{start}");
    }

    #[test]
    fn rate_throttles_wall_clock_time() {
        let spec = GeneratorSpec {
            events: Some(40),
            rate: Some(200),
            ..GeneratorSpec::new(GeneratorKind::Telemetry)
        };
        let started = Instant::now();
        let out = run(&spec, 1_000);
        // Batches of 20 (a tenth of a second each); the second may only leave after 0.2 s.
        assert_eq!(
            out[0].iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            vec![20, 20]
        );
        assert!(
            started.elapsed() >= Duration::from_millis(195),
            "{:?}",
            started.elapsed()
        );
        assert!(out[0][0].column(0).null_count() == 0);
    }

    #[test]
    fn a_projection_generates_only_the_named_columns_with_the_same_values() {
        for kind in [
            GeneratorKind::Transactions,
            GeneratorKind::Telemetry,
            GeneratorKind::Logins,
        ] {
            let spec = GeneratorSpec {
                events: Some(5_000),
                skew: 0.7,
                ..GeneratorSpec::new(kind)
            };
            let full = run(&spec, 1_000);
            let projected = run_projected(&spec, 1_000, Some(vec![0, 1, 3]));
            for (f, p) in full[0].iter().zip(&projected[0]) {
                assert_eq!(p.num_columns(), 3);
                assert_eq!(p, &f.project(&[0, 1, 3]).expect("project"), "{kind:?}");
            }
        }
    }

    fn open_spec(spec: &GeneratorSpec, batch_rows: usize) -> Vec<Box<dyn SourcePartition>> {
        open_projected(spec, batch_rows, None)
    }

    fn open_projected(
        spec: &GeneratorSpec,
        batch_rows: usize,
        projection: Option<Vec<usize>>,
    ) -> Vec<Box<dyn SourcePartition>> {
        let source = Box::new(GeneratorSource::new(spec).expect("valid spec"));
        source
            .open(&SourceContext {
                batch_rows,
                projection,
            })
            .expect("open")
    }

    fn batches(read: &[sluice_engine::source::SourceBatch]) -> Vec<RecordBatch> {
        read.iter().map(|b| b.batch.clone()).collect()
    }

    #[test]
    fn bounded_partitions_resume_at_every_batch_boundary() {
        let open = || open_spec(&spec(23, 3), 2);
        let read = crate::resume::assert_resumes_everywhere(&open);
        // Event i is partition i % 3's: check the whole read against one unsplit partition.
        let single = int64s(&run(&spec(23, 1), 100)[0], "card_id");
        for (p, partition) in read.iter().enumerate() {
            let want: Vec<i64> = single.iter().skip(p).step_by(3).copied().collect();
            assert_eq!(
                int64s(&batches(partition), "card_id"),
                want,
                "partition {p}"
            );
        }
        let sizes: Vec<usize> = read.iter().map(Vec::len).collect();
        // 8, 8 and 7 events in batches of 2.
        assert_eq!(sizes, vec![4, 4, 4]);
    }

    #[test]
    fn telemetry_and_projected_generators_resume_at_every_batch_boundary() {
        let telemetry = GeneratorSpec {
            events: Some(17),
            partitions: 2,
            disorder: DurationMs(3),
            ..GeneratorSpec::new(GeneratorKind::Telemetry)
        };
        crate::resume::assert_resumes_everywhere(&|| open_spec(&telemetry, 3));
        let projected = || open_projected(&spec(11, 1), 4, Some(vec![0, 3]));
        let read = crate::resume::assert_resumes_everywhere(&projected);
        let full = run(&spec(11, 1), 100);
        assert_eq!(int64s(&batches(&read[0]), "ts"), int64s(&full[0], "ts"));
        assert_eq!(
            int64s(&batches(&read[0]), "amount_cents"),
            int64s(&full[0], "amount_cents")
        );
    }

    #[test]
    fn an_unbounded_generator_resumes_where_it_stopped() {
        let unbounded = GeneratorSpec {
            events: None,
            ..spec(0, 2)
        };
        let mut whole = open_spec(&unbounded, 5).remove(1);
        let want: Vec<RecordBatch> = (0..5)
            .map(|_| whole.next_batch().expect("batch").expect("unbounded").batch)
            .collect();
        let mut first = open_spec(&unbounded, 5).remove(1);
        let mut got: Vec<RecordBatch> = (0..2)
            .map(|_| first.next_batch().expect("batch").expect("unbounded").batch)
            .collect();
        let at = first.position().expect("position");
        assert_eq!(
            at,
            Position {
                offset: 10,
                records: 10
            }
        );
        let mut second = open_spec(&unbounded, 5).remove(1);
        second.seek(at).expect("seek");
        got.extend((0..3).map(|_| {
            second
                .next_batch()
                .expect("batch")
                .expect("unbounded")
                .batch
        }));
        assert_eq!(got, want);
    }

    #[test]
    fn a_resumed_throttled_generator_paces_only_the_events_after_the_restart() {
        let throttled = GeneratorSpec {
            events: Some(2_040),
            rate: Some(200),
            ..GeneratorSpec::new(GeneratorKind::Telemetry)
        };
        let mut partition = open_spec(&throttled, 1_000).remove(0);
        partition
            .seek(Position {
                offset: 2_000,
                records: 2_000,
            })
            .expect("seek");
        let started = Instant::now();
        let rest: Vec<RecordBatch> = std::iter::from_fn(|| partition.next_batch().expect("batch"))
            .map(|b| b.batch)
            .collect();
        let elapsed = started.elapsed();
        // Two batches of 20 at 200 events/s take 0.2 s; pacing the 2 000 earlier events again
        // would take 10 s.
        assert_eq!(
            rest.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            [20, 20]
        );
        assert!(
            (Duration::from_millis(195)..Duration::from_secs(3)).contains(&elapsed),
            "{elapsed:?}"
        );
        // The rate paces wall-clock time only: the events are those of an unthrottled run.
        let unthrottled = run(
            &GeneratorSpec {
                rate: None,
                ..throttled
            },
            10_000,
        );
        let all = &unthrottled[0][0];
        let tail = all.slice(2_000, 40);
        let joined = arrow::compute::concat_batches(&tail.schema(), &rest).expect("concat");
        assert_eq!(joined, tail);
    }

    #[test]
    fn positions_from_another_generator_are_refused() {
        let mut partition = open_spec(&spec(10, 3), 2).remove(1);
        let at = |offset, records| Position { offset, records };
        let err = partition
            .seek(at(4, 4))
            .expect_err("partition 1 has 3 events");
        assert_eq!(
            err.to_string(),
            "source transactions[1]: cannot resume at Position { offset: 4, records: 4 }: \
             this partition has only 3 events"
        );
        assert!(partition.seek(at(2, 3)).is_err());
        let mut unbounded = open_spec(
            &GeneratorSpec {
                events: None,
                ..spec(0, 3)
            },
            2,
        )
        .remove(2);
        assert!(unbounded.seek(at(u64::MAX / 2, u64::MAX / 2)).is_err());
        partition.seek(at(3, 3)).expect("the end is a position");
        assert!(partition.next_batch().expect("batch").is_none());
    }
}
