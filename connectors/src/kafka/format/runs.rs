//! Decodes a poll's messages into one batch, one row per message, so that a message that does
//! not decode costs only itself.
//!
//! Messages are pushed one by one into one columnar decoder (arrow-json's, arrow-csv's,
//! arrow-avro's), each push checked to have added exactly one complete row: so a message
//! holding two records, or half of one, is caught at the message, which a count over the whole
//! run would miss (`{"a":1} {"a":` then `2}` is two objects in two messages). A failed push
//! may leave part of a row in the decoder, so the messages pushed before it are decoded again
//! in a fresh one: each good message is pushed at most twice. Errors only found when the
//! decoder builds its columns (a JSON value of the wrong type) fail the whole run, which is
//! then split in halves down to the messages at fault, as the text file sources do: `k` bad
//! messages among `n` cost about `k log n` extra decodes, a clean run nothing.

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use sluice_engine::{Error, Result};

use super::Payload;
use crate::kafka::KafkaRecord;

/// What a payload format contributes to [`decode`].
pub(super) trait MessageFormat {
    /// A columnar decoder holding the rows pushed so far.
    type Decoder;

    /// Called once per poll before any push, with every message of the poll.
    fn prepare(&self, records: &[KafkaRecord<'_>]) -> Result<()> {
        let _ = records;
        Ok(())
    }

    /// A fresh decoder with room for `messages` rows.
    fn decoder(&self, messages: usize) -> Result<Self::Decoder>;

    /// Decodes `payload` as exactly one row, or says why it is not one. After an error the
    /// decoder may hold part of a row and is not used again.
    fn push(&self, decoder: &mut Self::Decoder, payload: &[u8]) -> Result<(), String>;

    /// The rows pushed, as one batch of [`MessageFormat::decoded_schema`].
    fn flush(&self, decoder: Self::Decoder) -> Result<RecordBatch, ArrowError>;

    /// The schema `flush` produces.
    fn decoded_schema(&self) -> SchemaRef;

    /// Why a single message failed at `flush`, naming the field where possible.
    fn reason(&self, error: &ArrowError) -> String;

    /// Turns decoded rows into the payload's columns, with per row the reason it is rejected,
    /// if any. The default keeps every row as decoded.
    fn finish(&self, batch: RecordBatch) -> Result<(RecordBatch, Vec<Option<String>>)> {
        let rows = batch.num_rows();
        Ok((batch, vec![None; rows]))
    }
}

/// The good rows found so far and the messages rejected.
struct Runs<'a, 'r, F: MessageFormat> {
    format: &'a F,
    records: &'a [KafkaRecord<'r>],
    pieces: Vec<RecordBatch>,
    rows: Vec<usize>,
    rejected: Vec<(usize, String)>,
}

/// Decodes `records` with `format`: a row per message that decodes, a reason per one that
/// does not (a tombstone, which has no payload, included).
pub(super) fn decode<F: MessageFormat>(format: &F, records: &[KafkaRecord<'_>]) -> Result<Payload> {
    format.prepare(records)?;
    let mut runs = Runs {
        format,
        records,
        pieces: Vec::new(),
        rows: Vec::with_capacity(records.len()),
        rejected: Vec::new(),
    };
    // Indices of the messages in `decoder`.
    let mut pending: Vec<usize> = Vec::with_capacity(records.len());
    let mut decoder = format.decoder(records.len())?;
    for (i, record) in records.iter().enumerate() {
        let Some(payload) = record.payload else {
            runs.rejected
                .push((i, "the message has no payload (a tombstone)".to_string()));
            continue;
        };
        match format.push(&mut decoder, payload) {
            Ok(()) => pending.push(i),
            Err(reason) => {
                runs.rejected.push((i, reason));
                decoder = format.decoder(records.len() - i)?;
                runs.flush(&pending, None)?;
                pending.clear();
            }
        }
    }
    runs.flush(&pending, Some(decoder))?;
    runs.finish()
}

impl<F: MessageFormat> Runs<'_, '_, F> {
    /// Flushes the messages `indices` (all pushed once without error) from `decoder`, or from
    /// a fresh decoder they are pushed into again; on failure splits them in halves.
    fn flush(&mut self, indices: &[usize], decoder: Option<F::Decoder>) -> Result<()> {
        if indices.is_empty() {
            return Ok(());
        }
        let decoder = match decoder {
            Some(decoder) => decoder,
            None => self.push_again(indices)?,
        };
        let error = match self.format.flush(decoder) {
            Ok(batch) if batch.num_rows() == indices.len() => {
                self.pieces.push(batch);
                self.rows.extend_from_slice(indices);
                return Ok(());
            }
            Ok(batch) => ArrowError::ParseError(format!(
                "{} messages decoded into {} rows",
                indices.len(),
                batch.num_rows()
            )),
            Err(error) => error,
        };
        if let [i] = indices {
            self.rejected.push((*i, self.format.reason(&error)));
            return Ok(());
        }
        let (left, right) = indices.split_at(indices.len() / 2);
        self.flush(left, None)?;
        self.flush(right, None)
    }

    /// A fresh decoder holding `indices`, which pushed without error before.
    fn push_again(&self, indices: &[usize]) -> Result<F::Decoder> {
        let mut decoder = self.format.decoder(indices.len())?;
        for &i in indices {
            let record = &self.records[i];
            let payload = record.payload.unwrap_or_default();
            self.format.push(&mut decoder, payload).map_err(|reason| {
                Error::Internal(format!(
                    "the message at {} offset {} decoded once, but not again: {reason}",
                    record.source(),
                    record.offset
                ))
            })?;
        }
        Ok(decoder)
    }

    /// The good rows as the payload's columns, rows rejected by [`MessageFormat::finish`]
    /// moved to the rejected.
    fn finish(mut self) -> Result<Payload> {
        let schema = self.format.decoded_schema();
        let context = "joining the decoded runs of Kafka messages";
        // A clean poll decodes in one piece: taken as is instead of copied.
        let batch = match <[RecordBatch; 1]>::try_from(self.pieces) {
            Ok([batch]) => batch,
            Err(pieces) => concat_batches(&schema, &pieces).map_err(Error::arrow(context))?,
        };
        let (batch, reasons) = self.format.finish(batch)?;
        let batch = if reasons.iter().any(Option::is_some) {
            let keep: BooleanArray = reasons.iter().map(|r| Some(r.is_none())).collect();
            let mut rows = Vec::with_capacity(self.rows.len());
            for (&i, reason) in self.rows.iter().zip(reasons) {
                match reason {
                    Some(reason) => self.rejected.push((i, reason)),
                    None => rows.push(i),
                }
            }
            self.rows = rows;
            filter_record_batch(&batch, &keep).map_err(Error::arrow(context))?
        } else {
            batch
        };
        self.rejected.sort_by_key(|&(i, _)| i);
        Ok(Payload {
            columns: batch.columns().to_vec(),
            rows: self.rows,
            rejected: self.rejected,
        })
    }
}
