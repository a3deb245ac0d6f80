//! What a source is: named partitions that each yield Arrow batches in order.
//!
//! A partition is the unit of watermarking (a file, a generator shard): the runtime reads every
//! partition on its own thread, tracks its maximum event time, and takes the minimum over live
//! partitions as the stream's watermark. Sources are synchronous; the runtime provides the
//! threads and the bounded channels that give backpressure.

use std::fmt::Debug;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A producer of batches, split into partitions.
pub trait Source: Send + Debug {
    /// A short name for logs and dead letters (`transactions`, `data/*.csv`).
    fn name(&self) -> &str;

    /// The schema of every batch this source yields, known before any data moves.
    fn schema(&self) -> SchemaRef;

    /// Opens the partitions. `ctx` carries hints; a source may ignore them.
    fn open(self: Box<Self>, ctx: &SourceContext) -> Result<Vec<Box<dyn SourcePartition>>>;

    /// Who to tell when a checkpoint is complete, for a source whose system keeps its own
    /// record of progress (Kafka's committed offsets); asked once, before `open`.
    fn checkpoint_listener(&self) -> Option<Arc<dyn CheckpointListener>> {
        None
    }
}

/// Told each time a checkpoint is durable, with where the source's partitions stood in it.
///
/// The checkpoint is the truth a job resumes from; a listener only mirrors it elsewhere (so
/// that lag tools see progress), and a failure to do so is a warning, not a job failure.
pub trait CheckpointListener: Send + Sync + Debug {
    /// `positions` holds each partition of the source by its [`SourcePartition::name`].
    fn checkpoint_complete(&self, positions: &[(String, Position)]) -> Result<()>;
}

/// Hints the runtime gives a source when it opens it.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// The preferred number of rows per batch.
    pub batch_rows: usize,
    /// The columns the job reads, as ascending indices into [`Source::schema`]; `None` means
    /// all. A source may return only these columns, in this order (cheaper to produce), or all
    /// of them: the runtime drops the rest.
    pub projection: Option<Vec<usize>>,
}

impl Default for SourceContext {
    fn default() -> Self {
        SourceContext {
            batch_rows: 64 * 1024,
            projection: None,
        }
    }
}

/// One ordered stream of batches (a file, a generator shard).
pub trait SourcePartition: Send {
    /// Names the partition in dead letters and logs (a file path, `transactions[3]`).
    fn name(&self) -> String;

    /// The next batch, or `None` at the end of bounded input. Unbounded partitions never
    /// return `None`; throttled ones block until their next batch is due. A batch with no
    /// rows and no dead letters means "nothing yet": a partition waiting for data (a quiet
    /// Kafka partition) returns one after a short wait rather than block its reader thread,
    /// and it does not count as activity (the partition may turn idle).
    fn next_batch(&mut self) -> Result<Option<SourceBatch>>;

    /// Where the partition stands after the last batch `next_batch` returned (or after the
    /// position given to `seek`, before any batch): what a checkpoint stores so that a
    /// restarted job reads on from exactly there. `None` means this partition cannot resume,
    /// and a job that checkpoints refuses it before any data moves.
    fn position(&self) -> Option<Position> {
        None
    }

    /// How many records the partition's input holds beyond what it has read: a Kafka
    /// partition's consumer lag (its high watermark minus the next offset). `None` where the
    /// source cannot tell (files, generators); asked after every batch, so it must be cheap.
    fn backlog(&self) -> Option<u64> {
        None
    }

    /// Why the source's set of partitions no longer matches the one the job opened (a Kafka
    /// topic gained partitions), said once: a job that checkpoints then stops with a
    /// checkpoint for its caller to run it again over every partition. Asked after every
    /// batch, so it must be cheap.
    fn partitions_changed(&self) -> Option<String> {
        None
    }

    /// Whether this partition's event-time progress is the watermark its batches carry
    /// ([`SourceBatch::watermark`]) rather than the largest event time of its rows minus the
    /// stream's delay: a partition fed by several upstream writers (a repartition topic) is
    /// complete only up to the slowest writer's watermark, whatever times its rows show.
    fn watermarks_from_source(&self) -> bool {
        false
    }

    /// Moves to `position` (one this partition's `position` returned, in an earlier run over
    /// the same input) before the first `next_batch`: the next batch starts with the first
    /// record after it, and locations (line numbers) continue from it.
    fn seek(&mut self, position: Position) -> Result<()> {
        let _ = position;
        Err(crate::error::Error::Source {
            name: self.name(),
            message: "this source cannot resume from a checkpoint".into(),
        })
    }
}

/// How far a partition has read: what it needs to resume right after its last batch.
///
/// Meaning per source: text files (CSV, JSON lines) keep the byte offset of the next unread
/// record in `offset` and the lines consumed in `records` (so line numbers continue);
/// Parquet keeps rows consumed in both; generators keep how many events the partition has
/// produced in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    /// Where to resume, in the source's own unit (bytes, rows, events).
    pub offset: u64,
    /// Records consumed so far, good and malformed (lines for text files).
    pub records: u64,
}

/// A batch from a partition with what the source could not parse.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    /// The good rows.
    pub batch: RecordBatch,
    /// Records the source could not parse; they do not appear in `batch`.
    pub dead_letters: Vec<DeadLetter>,
    /// For each row of `batch`, where it came from (a line number for text formats, an offset
    /// for Kafka, a row number otherwise), so that rows rejected later (a bad event time) can
    /// be located.
    pub locations: Option<Locations>,
    /// For each row of `batch`, its text as read (text formats), so that a row rejected later
    /// is a dead letter with its own raw line rather than one rebuilt from its values.
    pub raw: Option<RawRows>,
    /// The partition's watermark after this batch, for a partition whose
    /// [`SourcePartition::watermarks_from_source`] is true (`None`: unchanged).
    pub watermark: Option<i64>,
}

/// The text of a batch's rows as a text source read them: one buffer and a span per row.
///
/// The buffer is the source's own read buffer, handed over without copying; it lives only until
/// the runtime has checked the batch's event times.
#[derive(Debug, Clone)]
pub struct RawRows {
    text: bytes::Bytes,
    spans: Arc<[Range<usize>]>,
}

impl RawRows {
    /// Row `i` is `text[spans[i]]`.
    pub fn new(text: Vec<u8>, spans: Vec<Range<usize>>) -> Self {
        RawRows {
            text: bytes::Bytes::from(text),
            spans: spans.into(),
        }
    }

    /// The text of row `i` (invalid UTF-8 replaced), if there is such a row.
    pub fn row(&self, i: usize) -> Option<String> {
        let span = self.spans.get(i)?;
        let bytes = self.text.get(span.clone())?;
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

impl SourceBatch {
    /// A batch with no dead letters and no row locations.
    pub fn new(batch: RecordBatch) -> Self {
        SourceBatch {
            batch,
            dead_letters: Vec::new(),
            locations: None,
            raw: None,
            watermark: None,
        }
    }
}

/// Where each row of a batch came from: one kind of [`Location`] for the whole batch, and a
/// number per row (it derefs to those numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    kind: LocationKind,
    values: Arc<[u64]>,
}

/// Which [`Location`] the numbers of a [`Locations`] are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocationKind {
    Line,
    Row,
    Offset,
}

impl Locations {
    /// 1-based line numbers (text files).
    pub fn lines(values: impl Into<Arc<[u64]>>) -> Self {
        Locations {
            kind: LocationKind::Line,
            values: values.into(),
        }
    }

    /// 0-based row numbers (Parquet, generators).
    pub fn rows(values: impl Into<Arc<[u64]>>) -> Self {
        Locations {
            kind: LocationKind::Row,
            values: values.into(),
        }
    }

    /// Kafka message offsets.
    pub fn offsets(values: impl Into<Arc<[u64]>>) -> Self {
        Locations {
            kind: LocationKind::Offset,
            values: values.into(),
        }
    }

    /// Where row `i` came from, if the batch has such a row.
    pub fn get(&self, i: usize) -> Option<Location> {
        let &n = self.values.get(i)?;
        Some(match self.kind {
            LocationKind::Line => Location::Line(n),
            LocationKind::Row => Location::Row(n),
            LocationKind::Offset => Location::Offset(n),
        })
    }
}

impl std::ops::Deref for Locations {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        &self.values
    }
}

/// Where in its source a record was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A 1-based line number in a text file (CSV counts the header as line 1).
    Line(u64),
    /// A 0-based row number (Parquet, generators).
    Row(u64),
    /// A message's offset in its Kafka partition.
    Offset(u64),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Row(n) => write!(f, "row {n}"),
            Location::Offset(n) => write!(f, "offset {n}"),
        }
    }
}

/// A record that could not be processed, kept with enough context to fix and replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The partition it came from: a file path, `topic/partition` for Kafka.
    pub source: String,
    /// Where in that partition.
    pub location: Location,
    /// Why it was rejected, naming the field.
    pub reason: String,
    /// The record as it was read (the raw line for text formats).
    pub raw: String,
}

impl DeadLetter {
    /// The schema of dead-letter batches: `source, line, row, offset, reason, raw`; one of
    /// `line`, `row` and `offset` is set, as the source locates its records.
    pub fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("source", DataType::Utf8, false),
            Field::new("line", DataType::UInt64, true),
            Field::new("row", DataType::UInt64, true),
            Field::new("offset", DataType::UInt64, true),
            Field::new("reason", DataType::Utf8, false),
            Field::new("raw", DataType::Utf8, false),
        ]))
    }

    /// Packs dead letters into one batch of [`DeadLetter::schema`].
    pub fn to_batch(letters: &[DeadLetter]) -> Result<RecordBatch> {
        let line = |l: &DeadLetter| match l.location {
            Location::Line(n) => Some(n),
            _ => None,
        };
        let row = |l: &DeadLetter| match l.location {
            Location::Row(n) => Some(n),
            _ => None,
        };
        let offset = |l: &DeadLetter| match l.location {
            Location::Offset(n) => Some(n),
            _ => None,
        };
        RecordBatch::try_new(
            Self::schema(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    letters.iter().map(|l| &l.source),
                )),
                Arc::new(letters.iter().map(line).collect::<UInt64Array>()),
                Arc::new(letters.iter().map(row).collect::<UInt64Array>()),
                Arc::new(letters.iter().map(offset).collect::<UInt64Array>()),
                Arc::new(StringArray::from_iter_values(
                    letters.iter().map(|l| &l.reason),
                )),
                Arc::new(StringArray::from_iter_values(
                    letters.iter().map(|l| &l.raw),
                )),
            ],
        )
        .map_err(Error::arrow("building the dead-letter batch"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_pack_into_a_batch_with_line_row_or_offset() {
        let letters = vec![
            DeadLetter {
                source: "a.csv".into(),
                location: Location::Line(3),
                reason: "amount: not a number".into(),
                raw: "1,x".into(),
            },
            DeadLetter {
                source: "b.parquet".into(),
                location: Location::Row(7),
                reason: "ts: null".into(),
                raw: "{}".into(),
            },
            DeadLetter {
                source: "payments/3".into(),
                location: Location::Offset(41),
                reason: "not JSON".into(),
                raw: "{".into(),
            },
        ];
        let batch = DeadLetter::to_batch(&letters).expect("batch");
        assert_eq!(batch.num_rows(), 3);
        let line = batch
            .column(1)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("u64");
        let row = batch
            .column(2)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("u64");
        let offset = batch
            .column(3)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("u64");
        assert_eq!(line.iter().collect::<Vec<_>>(), vec![Some(3), None, None]);
        assert_eq!(row.iter().collect::<Vec<_>>(), vec![None, Some(7), None]);
        assert_eq!(
            offset.iter().collect::<Vec<_>>(),
            vec![None, None, Some(41)]
        );
        let kinds = Locations::offsets(vec![5, 9]);
        assert_eq!(
            (kinds.get(1), kinds.get(2)),
            (Some(Location::Offset(9)), None)
        );
        assert_eq!(&kinds[..], &[5, 9]);
    }
}
