//! A partition over one text file (CSV, JSON lines) that turns bad records into dead letters.
//!
//! Each chunk of records is decoded by Arrow in one call. When Arrow rejects a chunk, the chunk
//! is split in halves and each half retried, down to single records: a chunk with `k` bad records
//! among `n` costs about `k log n` extra decodes, and good chunks cost nothing extra. Records that
//! still fail alone become [`DeadLetter`]s located by line; the good rows keep their line numbers
//! and their text, so that a row rejected later (a bad event time) is a dead letter with its line
//! as read. A partition resumes by seeking its file to the byte offset after the last record it
//! returned.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use sluice_engine::source::{
    DeadLetter, Location, Locations, Position, RawRows, SourceBatch, SourcePartition,
};
use sluice_engine::{Error, Result};

use super::records::{Chunk, RecordReader};

/// What a text format contributes to [`TextPartition`].
pub trait TextFormat: Send + 'static {
    /// Decodes `rows` complete records (each ending in `\n`) into one batch of
    /// [`TextFormat::decoded_schema`]. More or fewer rows than `rows` counts as a rejection.
    fn decode(&self, bytes: &[u8], rows: usize) -> Result<RecordBatch, ArrowError>;

    /// The schema `decode` produces.
    fn decoded_schema(&self) -> SchemaRef;

    /// Why a single record failed to decode, naming the field where possible.
    fn reason(&self, raw: &str, error: &ArrowError) -> String;

    /// Turns a decoded batch into the source's schema, returning per row the reason it is
    /// rejected, if any. The default keeps every row as decoded.
    fn finish(&self, batch: RecordBatch) -> Result<(RecordBatch, Vec<Option<String>>)> {
        let rows = batch.num_rows();
        Ok((batch, vec![None; rows]))
    }

    /// Whether records may span lines inside double quotes.
    fn quoted_newlines(&self) -> bool;

    /// Whether the first record of the file is a header, not data.
    fn has_header(&self) -> bool;
}

/// The good rows of a chunk and what was rejected.
struct Decoded {
    batches: Vec<RecordBatch>,
    /// Index in the chunk of each good row's record.
    records: Vec<usize>,
    dead_letters: Vec<DeadLetter>,
}

/// One text file read as one partition.
pub struct TextPartition<F: TextFormat> {
    path: PathBuf,
    name: String,
    format: F,
    batch_rows: usize,
    /// Opened on the first `next_batch`, so that many files do not hold many descriptors.
    reader: Option<RecordReader>,
    /// Where the next record starts: where the reader opens, then where it has read to.
    position: Position,
    done: bool,
}

impl<F: TextFormat> TextPartition<F> {
    /// A partition reading `path` in chunks of `batch_rows` records.
    pub fn new(path: PathBuf, format: F, batch_rows: usize) -> Self {
        let name = path.display().to_string();
        TextPartition {
            path,
            name,
            format,
            batch_rows: batch_rows.max(1),
            reader: None,
            position: Position::default(),
            done: false,
        }
    }

    fn open(&mut self) -> Result<&mut RecordReader> {
        if self.reader.is_none() {
            let quoted_newlines = self.format.quoted_newlines();
            let mut reader = RecordReader::open_at(&self.path, quoted_newlines, self.position)?;
            // The header is the file's first record, so any later position is past it.
            if self.format.has_header() && self.position.offset == 0 {
                reader.next_chunk(1)?;
            }
            self.reader = Some(reader);
        }
        self.reader
            .as_mut()
            .ok_or_else(|| Error::Internal("text reader vanished".into()))
    }

    /// Decodes `chunk.records[range]`, splitting on rejection down to single records.
    fn decode_range(&self, chunk: &Chunk, range: Range<usize>, out: &mut Decoded) {
        let rows = range.len();
        if rows == 0 {
            return;
        }
        let error = match self.format.decode(chunk.slice(range.clone()), rows) {
            Ok(batch) if batch.num_rows() == rows => {
                out.batches.push(batch);
                out.records.extend(range);
                return;
            }
            Ok(batch) => {
                ArrowError::ParseError(format!("expected one record, found {}", batch.num_rows()))
            }
            Err(error) => error,
        };
        if rows > 1 {
            let middle = range.start + rows / 2;
            self.decode_range(chunk, range.start..middle, out);
            self.decode_range(chunk, middle..range.end, out);
            return;
        }
        let bytes = chunk.record_bytes(range.start);
        let reason = match std::str::from_utf8(bytes) {
            Ok(text) => self.format.reason(text, &error),
            Err(e) => {
                let valid = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
                format!(
                    "not valid UTF-8: byte {} of the record (after `{valid}`)",
                    e.valid_up_to() + 1
                )
            }
        };
        out.dead_letters
            .push(self.dead_letter(chunk, range.start, reason));
    }

    fn dead_letter(&self, chunk: &Chunk, i: usize, reason: String) -> DeadLetter {
        DeadLetter {
            source: self.name.clone(),
            location: Location::Line(chunk.records[i].line),
            reason,
            raw: chunk.raw(i),
        }
    }
}

impl<F: TextFormat> SourcePartition for TextPartition<F> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        if self.done {
            return Ok(None);
        }
        let batch_rows = self.batch_rows;
        let reader = self.open()?;
        let chunk = reader.next_chunk(batch_rows)?;
        self.position = reader.position();
        let Some(chunk) = chunk else {
            self.done = true;
            self.reader = None;
            return Ok(None);
        };
        let mut decoded = Decoded {
            batches: Vec::new(),
            records: Vec::new(),
            dead_letters: Vec::new(),
        };
        // Records cut back to a line by an unclosed quote are dead letters as they are; the
        // runs between them are decoded.
        let mut run = 0;
        for (i, record) in chunk.records.iter().enumerate() {
            if let Some(unclosed) = record.unclosed {
                self.decode_range(&chunk, run..i, &mut decoded);
                let letter = self.dead_letter(&chunk, i, unclosed.reason());
                decoded.dead_letters.push(letter);
                run = i + 1;
            }
        }
        self.decode_range(&chunk, run..chunk.records.len(), &mut decoded);
        let context = || format!("joining the good records of {}", self.name);
        // A clean chunk decodes in one piece: take it as is instead of copying it.
        let batch = match <[RecordBatch; 1]>::try_from(decoded.batches) {
            Ok([batch]) => batch,
            Err(pieces) => concat_batches(&self.format.decoded_schema(), &pieces)
                .map_err(Error::arrow(context()))?,
        };
        let (batch, rejected) = self.format.finish(batch)?;
        let mut records = decoded.records;
        let mut dead_letters = decoded.dead_letters;
        let batch = if rejected.iter().any(Option::is_some) {
            let keep: BooleanArray = rejected.iter().map(|r| Some(r.is_none())).collect();
            for (&i, reason) in records.iter().zip(rejected) {
                if let Some(reason) = reason {
                    dead_letters.push(self.dead_letter(&chunk, i, reason));
                }
            }
            let mut kept = keep.values().iter();
            records.retain(|_| kept.next().unwrap_or(false));
            filter_record_batch(&batch, &keep).map_err(Error::arrow(context()))?
        } else {
            batch
        };
        dead_letters.sort_by_key(|d| match d.location {
            Location::Line(n) | Location::Row(n) | Location::Offset(n) => n,
        });
        let lines: Arc<[u64]> = records.iter().map(|&i| chunk.records[i].line).collect();
        let spans = records
            .iter()
            .map(|&i| chunk.records[i].start..chunk.records[i].end)
            .collect();
        Ok(Some(SourceBatch {
            batch,
            dead_letters,
            locations: Some(Locations::lines(lines)),
            raw: Some(RawRows::new(chunk.bytes, spans)),
            watermark: None,
        }))
    }

    /// The byte offset after the last record returned (blank lines after it may follow) and the
    /// lines up to there, the header included.
    fn position(&self) -> Option<Position> {
        Some(self.position)
    }

    /// Reads on from `position.offset`, with line numbers going on from `position.records`.
    /// The position is checked now (a line must end just before it), so that a file changed
    /// since the checkpoint fails the restore; the file is opened again on the first batch.
    fn seek(&mut self, position: Position) -> Result<()> {
        // A pipe can be read only once: it is checked when the first batch opens it.
        if std::fs::metadata(&self.path).is_ok_and(|m| m.is_file()) {
            RecordReader::open_at(&self.path, self.format.quoted_newlines(), position)?;
        }
        self.position = position;
        self.reader = None;
        self.done = false;
        Ok(())
    }
}
