//! `format = { type = "avro", ... }`: one Avro record per message, bare or after the Confluent
//! header, decoded by arrow-avro into the columns of the writer schema the job gives.
//!
//! The schema's fields are the columns, in the schema's order, as arrow-avro maps them (`long`
//! to int64, `["null", T]` to a nullable T, `timestamp-millis` to a UTC timestamp, records to
//! structs, ...). Declared `columns` retype fields (each must be one of the schema's): a value
//! that does not convert makes its message a dead letter naming the column.
//!
//! sluice reads no schema registry: every message is read with the job's schema, whatever id
//! its Confluent header carries, unless `schema_id` picks the one id to read.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow_avro::codec::Tz;
use arrow_avro::reader::{Decoder, DecoderMode, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, SchemaStore};
use sluice_engine::{Error, Result};

use super::AvroOptions;
use super::framing::FramingChoice;
use super::runs::MessageFormat;
use crate::file::{Order, check_time_ranges, parse_column, type_name, with_declared};
use crate::kafka::KafkaRecord;
use crate::spec::ColumnSpec;

/// Decodes Avro messages of one writer schema.
#[derive(Debug)]
pub(super) struct AvroMessages {
    store: SchemaStore,
    fingerprint: Fingerprint,
    /// What arrow-avro produces from the schema.
    decoded_schema: SchemaRef,
    /// The payload's columns: `decoded_schema` with declared types laid over it.
    schema: SchemaRef,
    framing: FramingChoice,
}

impl AvroMessages {
    /// Reads the schema `options` name (relative to `base_dir`), lays the declared `columns`
    /// over its fields and settles the framing, from `sample` when `confluent` is absent.
    /// Fails naming the setting at fault.
    pub(super) fn new(
        options: &AvroOptions,
        columns: &[ColumnSpec],
        sample: &[KafkaRecord<'_>],
        base_dir: &Path,
    ) -> Result<Self> {
        let SchemaText { text, key, name } = schema_text(options, base_dir)?;
        if options.confluent == Some(false) && options.schema_id.is_some() {
            return Err(Error::config(
                "source.format.schema_id",
                "only messages with the Confluent header carry a schema id, and confluent = false",
            ));
        }
        let avro_schema = AvroSchema::new(text);
        let mut store = SchemaStore::new();
        let not_a_schema =
            |e: ArrowError| Error::config(key, format!("{name} is not an Avro record schema: {e}"));
        let fingerprint = store.register(avro_schema).map_err(not_a_schema)?;
        let decoder = build_decoder(&store, fingerprint, 1).map_err(not_a_schema)?;
        // Without metadata: the schema's JSON rides on arrow-avro's, and no sink needs it.
        let found = Schema::new(
            decoder
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_metadata(HashMap::new()))
                .collect::<Vec<_>>(),
        );
        let schema = retyped(&found, columns)?;
        let messages = AvroMessages {
            store,
            fingerprint,
            decoded_schema: Arc::new(found),
            schema: Arc::new(schema),
            framing: FramingChoice::new(options.confluent, options.schema_id),
        };
        messages
            .framing
            .settle(sample, |bodies| messages.decodable(bodies))?;
        Ok(messages)
    }

    /// The payload's columns.
    pub(super) fn fields(&self) -> Vec<Field> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect()
    }

    /// How many of `bodies` decode as exactly one record of the schema.
    fn decodable(&self, bodies: &[&[u8]]) -> Result<usize> {
        let mut decoder = self.decoder(bodies.len())?;
        let mut count = 0;
        for body in bodies {
            if self.push_body(&mut decoder, body).is_ok() {
                count += 1;
            } else {
                decoder = self.decoder(bodies.len())?;
            }
        }
        Ok(count)
    }

    fn push_body(&self, decoder: &mut Decoder, body: &[u8]) -> Result<(), String> {
        let used = decoder
            .decode(body)
            .map_err(|e| format!("not an Avro record of the job's schema: {e}"))?;
        match body.len() - used {
            0 => Ok(()),
            1 => Err("1 byte is left after the Avro record".to_string()),
            left => Err(format!("{left} bytes are left after the Avro record")),
        }
    }
}

/// An Avro schema's text and where it came from.
struct SchemaText {
    text: String,
    /// The setting that gave it.
    key: &'static str,
    /// How errors name it: the file, or "the schema" when inline.
    name: String,
}

/// The schema `options` give, inline or in a file relative to `base_dir`.
fn schema_text(options: &AvroOptions, base_dir: &Path) -> Result<SchemaText> {
    match (&options.schema_file, &options.schema) {
        (Some(_), Some(_)) => Err(Error::config(
            "source.format.schema",
            "give the Avro schema once: schema_file or schema, not both",
        )),
        (None, None) => Err(Error::config(
            "source.format.schema_file",
            "format \"avro\" needs the writer schema: schema_file = \"payment.avsc\" (or the \
             schema's JSON inline, schema = '{\"type\": \"record\", ...}')",
        )),
        (None, Some(text)) => Ok(SchemaText {
            text: text.clone(),
            key: "source.format.schema",
            name: "the schema".to_string(),
        }),
        (Some(file), None) => {
            let path = base_dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::config(
                    "source.format.schema_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            Ok(SchemaText {
                text,
                key: "source.format.schema_file",
                name: path.display().to_string(),
            })
        }
    }
}

/// An unframed-datum decoder of the schema under `fingerprint`, with room for `rows`.
fn build_decoder(
    store: &SchemaStore,
    fingerprint: Fingerprint,
    rows: usize,
) -> Result<Decoder, ArrowError> {
    // Framing is read here (Confluent header, schema id), so arrow-avro sees bare datums.
    ReaderBuilder::new()
        .with_writer_schema_store(store.clone())
        .with_active_fingerprint(fingerprint)
        .with_decoder_mode(DecoderMode::UnframedDatum)
        .with_batch_size(rows.max(1))
        .with_tz(Tz::Utc)
        .build_decoder()
}

/// `found` with the declared types laid over its fields; a retyped column is nullable, since a
/// value that does not convert is null until its message is rejected.
fn retyped(found: &Schema, columns: &[ColumnSpec]) -> Result<Schema> {
    let laid = with_declared(found, columns, Order::File, "the Avro schema")?;
    let fields: Vec<Field> = found
        .fields()
        .iter()
        .zip(laid.fields())
        .map(|(from, to)| {
            if from.data_type() == to.data_type() {
                return Ok(to.as_ref().clone());
            }
            if !can_cast_types(from.data_type(), to.data_type()) {
                return Err(Error::config(
                    "source.columns",
                    format!(
                        "`{}` is {} in the Avro schema and cannot be read as {}",
                        from.name(),
                        from.data_type(),
                        to.data_type()
                    ),
                ));
            }
            Ok(to.as_ref().clone().with_nullable(true))
        })
        .collect::<Result<_>>()?;
    Ok(Schema::new(fields))
}

/// `column` as `field`'s type, and per row the reason a present value did not convert.
fn convert(column: &ArrayRef, field: &Field) -> Result<(ArrayRef, Vec<Option<String>>)> {
    let context = || format!("converting Avro field `{}`", field.name());
    let converted = match column.as_string_opt::<i32>() {
        // Text reads as CSV values do: timestamps as RFC 3339 or integer ms.
        Some(strings) => parse_column(strings, field.data_type()),
        None => cast_with_options(
            column,
            field.data_type(),
            &CastOptions {
                safe: true,
                ..CastOptions::default()
            },
        ),
    }
    .map_err(Error::arrow(context()))?;
    let mut reasons = vec![None; column.len()];
    if converted.null_count() > column.null_count() {
        let shown = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default())
            .map_err(Error::arrow(context()))?;
        for (row, reason) in reasons.iter_mut().enumerate() {
            if column.is_valid(row) && converted.is_null(row) {
                *reason = Some(format!(
                    "column `{}`: cannot read `{}` as {}",
                    field.name(),
                    shown.value(row),
                    type_name(field.data_type())
                ));
            }
        }
    }
    Ok((converted, reasons))
}

impl MessageFormat for AvroMessages {
    type Decoder = Decoder;

    fn prepare(&self, records: &[KafkaRecord<'_>]) -> Result<()> {
        self.framing
            .settle(records, |bodies| self.decodable(bodies))
    }

    fn decoder(&self, messages: usize) -> Result<Decoder> {
        build_decoder(&self.store, self.fingerprint, messages)
            .map_err(Error::arrow("building an Avro decoder"))
    }

    fn push(&self, decoder: &mut Decoder, payload: &[u8]) -> Result<(), String> {
        let body = self.framing.body(payload)?;
        self.push_body(decoder, body)
    }

    fn flush(&self, mut decoder: Decoder) -> Result<RecordBatch, ArrowError> {
        let batch = match decoder.flush()? {
            Some(batch) => batch,
            None => return Ok(RecordBatch::new_empty(self.decoded_schema.clone())),
        };
        RecordBatch::try_new(self.decoded_schema.clone(), batch.columns().to_vec())
    }

    fn decoded_schema(&self) -> SchemaRef {
        self.decoded_schema.clone()
    }

    fn reason(&self, error: &ArrowError) -> String {
        format!("not an Avro record of the job's schema: {error}")
    }

    fn finish(&self, batch: RecordBatch) -> Result<(RecordBatch, Vec<Option<String>>)> {
        let mut reasons: Vec<Option<String>> = vec![None; batch.num_rows()];
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (column, field) in batch.columns().iter().zip(self.schema.fields()) {
            if column.data_type() == field.data_type() {
                columns.push(column.clone());
                continue;
            }
            let (converted, failed) = convert(column, field)?;
            for (reason, failure) in reasons.iter_mut().zip(failed) {
                if reason.is_none() {
                    *reason = failure;
                }
            }
            columns.push(converted);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(Error::arrow("retyping declared Avro columns"))?;
        for (reason, out_of_range) in reasons.iter_mut().zip(check_time_ranges(&batch)) {
            if reason.is_none() {
                *reason = out_of_range;
            }
        }
        Ok((batch, reasons))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        BooleanArray, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
    };
    use arrow::datatypes::{DataType, Int64Type, TimestampMillisecondType};
    use arrow_avro::schema::SCHEMA_METADATA_KEY;
    use arrow_avro::writer::WriterBuilder;
    use arrow_avro::writer::format::AvroBinaryFormat;
    use base64::Engine;

    use super::super::testing::{SplitMix, decode_in_polls, message, messages};
    use super::super::{BASE64_NOTE, FormatSpec, PayloadDecoder};
    use super::*;
    use crate::spec::{ColumnType, timestamp_type};

    const PAYMENT: &str = r#"{"type": "record", "name": "Payment", "fields": [
        {"name": "id", "type": "long"},
        {"name": "card", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "note", "type": ["null", "string"], "default": null},
        {"name": "ok", "type": "boolean"}
    ]}"#;

    /// Avro's `long`: zig-zag, then 7 bits a byte, low first.
    fn long(out: &mut Vec<u8>, value: i64) {
        let mut z = ((value << 1) ^ (value >> 63)) as u64;
        while z >= 0x80 {
            out.push((z & 0x7f) as u8 | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }

    fn bytes(out: &mut Vec<u8>, value: &[u8]) {
        long(out, value.len() as i64);
        out.extend_from_slice(value);
    }

    /// A Payment record, encoded by hand.
    fn payment(
        id: i64,
        card: &[u8],
        amount: f64,
        ts: i64,
        note: Option<&str>,
        ok: bool,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        long(&mut out, id);
        bytes(&mut out, card);
        out.extend_from_slice(&amount.to_le_bytes());
        long(&mut out, ts);
        match note {
            None => long(&mut out, 0),
            Some(note) => {
                long(&mut out, 1);
                bytes(&mut out, note.as_bytes());
            }
        }
        out.push(u8::from(ok));
        out
    }

    fn confluent(id: u32, body: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn avro(confluent: Option<bool>, schema_id: Option<u32>) -> FormatSpec {
        FormatSpec::Avro(AvroOptions {
            schema_file: None,
            schema: Some(PAYMENT.to_string()),
            confluent,
            schema_id,
        })
    }

    fn avro_decoder(format: &FormatSpec, sample: &[KafkaRecord<'_>]) -> PayloadDecoder {
        PayloadDecoder::new(format, &[], &[], sample, Path::new(".")).expect("decoder")
    }

    #[test]
    fn hand_encoded_records_decode_and_each_bad_one_is_one_dead_letter() {
        let start = 1_767_225_600_000;
        let first = payment(1, b"4111", 12.5, start, None, true);
        let second = payment(-2, b"5500", 0.25, start + 1_000, Some("gift"), false);
        let truncated = payment(3, b"4111", 1.0, start, None, true);
        let mut trailing = payment(4, b"4111", 1.0, start, None, true);
        trailing.push(0);
        let mut bad_branch = Vec::new();
        long(&mut bad_branch, 5);
        bytes(&mut bad_branch, b"4111");
        bad_branch.extend_from_slice(&1.0f64.to_le_bytes());
        long(&mut bad_branch, start);
        long(&mut bad_branch, 2);
        let not_utf8 = payment(6, b"\xff\xfe", 1.0, start, None, true);
        let edge = payment(i64::MIN, b"", -1e300, 0, Some(""), true);
        let payloads: Vec<Option<&[u8]>> = vec![
            Some(&first),
            Some(&second),
            Some(&truncated[..truncated.len() - 3]),
            Some(&trailing),
            None,
            Some(&bad_branch),
            Some(&not_utf8),
            Some(&edge),
            Some(b""),
        ];
        let records = messages(&payloads);
        let decoder = avro_decoder(&avro(Some(false), None), &[]);
        let schema = decoder.schema();
        let types: Vec<(&str, &DataType, bool)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type(), f.is_nullable()))
            .collect();
        assert_eq!(
            types,
            [
                ("id", &DataType::Int64, false),
                ("card", &DataType::Utf8, false),
                ("amount", &DataType::Float64, false),
                ("ts", &timestamp_type(), false),
                ("note", &DataType::Utf8, true),
                ("ok", &DataType::Boolean, false),
            ]
        );
        for poll in [payloads.len(), 1, 2, 4] {
            let read = decode_in_polls(&decoder, &records, poll);
            assert_eq!(read.offsets, [100, 101, 107], "poll {poll}");
            let batch = &read.batch;
            let want_columns: [ArrayRef; 6] = [
                Arc::new(Int64Array::from(vec![1, -2, i64::MIN])),
                Arc::new(StringArray::from(vec!["4111", "5500", ""])),
                Arc::new(Float64Array::from(vec![12.5, 0.25, -1e300])),
                Arc::new(
                    TimestampMillisecondArray::from(vec![start, start + 1_000, 0])
                        .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(vec![None, Some("gift"), Some("")])),
                Arc::new(BooleanArray::from(vec![true, false, true])),
            ];
            for (i, want) in want_columns.iter().enumerate() {
                assert_eq!(
                    batch.column(i).as_ref(),
                    want.as_ref(),
                    "column {i}, poll {poll}"
                );
            }
            let reasons = read.reasons();
            let offsets: Vec<u64> = reasons.iter().map(|r| r.0).collect();
            assert_eq!(offsets, [102, 103, 104, 105, 106, 108]);
            assert_eq!(
                reasons[1].1,
                format!("1 byte is left after the Avro record {BASE64_NOTE}")
            );
            assert_eq!(reasons[2].1, "the message has no payload (a tombstone)");
            for i in [0, 3, 4, 5] {
                assert!(
                    reasons[i]
                        .1
                        .starts_with("not an Avro record of the job's schema: "),
                    "{:?}",
                    reasons[i]
                );
            }
            let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
            assert_eq!(
                read.dead_letters[0].raw,
                encode(&truncated[..truncated.len() - 3])
            );
            assert_eq!(read.dead_letters[4].raw, encode(&not_utf8));
            assert!(read.dead_letters[4].reason.ends_with(BASE64_NOTE));
        }
    }

    #[test]
    fn confluent_framing_is_read_and_a_schema_id_picks_the_messages() {
        let start = 1_767_225_600_000;
        let body = payment(1, b"4111", 12.5, start, None, true);
        let framed = confluent(7, &body);
        let other_id = confluent(8, &payment(2, b"5500", 1.0, start, None, false));
        let payloads: Vec<Option<&[u8]>> = vec![
            Some(&framed),
            Some(&body),
            Some(&framed[..3]),
            Some(&other_id),
        ];
        let records = messages(&payloads);
        let ids = |decoder: &PayloadDecoder| {
            let read = decode_in_polls(decoder, &records, 4);
            let ids = read
                .batch
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec();
            let reasons: Vec<(u64, String)> = read
                .reasons()
                .into_iter()
                .map(|(o, r)| (o, r.to_string()))
                .collect();
            (ids, reasons)
        };
        let note = format!(" {BASE64_NOTE}");
        let any_id = avro_decoder(&avro(Some(true), None), &[]);
        assert!(!PayloadDecoder::needs_sample(&avro(Some(true), None), &[]));
        let (got, reasons) = ids(&any_id);
        assert_eq!(got, [1, 2]);
        // The bare record starts with id 1, zig-zag 0x02.
        assert_eq!(
            reasons,
            [
                (
                    101,
                    format!("no Confluent header: the first byte is 0x02, not 0{note}")
                ),
                (
                    102,
                    "3 bytes are too few for the Confluent header (byte 0, then a 4-byte \
                     schema id)"
                        .to_string()
                ),
            ]
        );
        // A schema id alone implies the Confluent header.
        for format in [avro(Some(true), Some(7)), avro(None, Some(7))] {
            let only_seven = avro_decoder(&format, &[]);
            let (got, reasons) = ids(&only_seven);
            assert_eq!(got, [1]);
            assert_eq!(
                reasons[2],
                (
                    103,
                    format!(
                        "Confluent schema id 8, but source.format.schema_id reads only 7{note}"
                    )
                )
            );
        }
    }

    fn as_records(payloads: &[Vec<u8>]) -> Vec<KafkaRecord<'_>> {
        payloads
            .iter()
            .enumerate()
            .map(|(i, p)| message(i as i64, Some(p.as_slice())))
            .collect()
    }

    #[test]
    fn the_framing_is_told_from_the_sample_or_else_from_the_first_readable_poll() {
        let start = 1_767_225_600_000;
        let bare: Vec<Vec<u8>> = (0..20)
            .map(|i| payment(i, b"4111", 1.0, start + i, None, i % 2 == 0))
            .collect();
        let framed: Vec<Vec<u8>> = bare.iter().map(|b| confluent(1, b)).collect();
        let (bare_records, framed_records) = (as_records(&bare), as_records(&framed));
        assert!(PayloadDecoder::needs_sample(&avro(None, None), &[]));
        let from_framed = avro_decoder(&avro(None, None), &framed_records[..10]);
        let read = decode_in_polls(&from_framed, &framed_records, 20);
        assert_eq!(read.batch.num_rows(), 20, "{:?}", read.dead_letters);
        let from_bare = avro_decoder(&avro(None, None), &bare_records[..10]);
        let read = decode_in_polls(&from_bare, &bare_records, 20);
        assert_eq!(read.batch.num_rows(), 20);
        assert_eq!(
            decode_in_polls(&from_bare, &framed_records, 20)
                .batch
                .num_rows(),
            0
        );

        // An empty topic at the start: the first poll with a readable message decides.
        let later = avro_decoder(&avro(None, None), &[]);
        let garbage = [message(0, Some(b"\x07\x07"))];
        assert_eq!(decode_in_polls(&later, &garbage, 1).dead_letters.len(), 1);
        let read = decode_in_polls(&later, &framed_records, 20);
        assert_eq!(read.batch.num_rows(), 20);
        let ids = read.batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(ids.values().to_vec(), (0..20).collect::<Vec<i64>>());
        // Decided: bare records are now dead letters, but for the one starting with byte 0
        // (id 0) whose bytes after the first five happen to read as a Payment: one message
        // cannot tell the framings apart. A schema id narrows what passes for a header.
        let read = decode_in_polls(&later, &bare_records, 20);
        assert_eq!(read.offsets, [0]);
        let with_id = avro_decoder(&avro(None, Some(1)), &[]);
        assert_eq!(
            decode_in_polls(&with_id, &bare_records, 20)
                .dead_letters
                .len(),
            20
        );
        assert_eq!(
            decode_in_polls(&with_id, &framed_records, 20)
                .batch
                .num_rows(),
            20
        );
    }

    #[test]
    fn messages_that_read_as_well_both_ways_ask_for_the_framing() {
        // { a: long, b: string }. Framed: id 0x0c000000, a = 1, b = "x". Bare: a = 0, then the
        // byte 0x0c is b's length, 6, which takes the rest.
        let schema = r#"{"type": "record", "name": "T", "fields": [
            {"name": "a", "type": "long"}, {"name": "b", "type": "string"}]}"#;
        let payload = [0x00, 0x0c, 0x00, 0x00, 0x00, 0x02, 0x02, b'x'];
        let format = FormatSpec::Avro(AvroOptions {
            schema: Some(schema.to_string()),
            ..AvroOptions::default()
        });
        let sample = [message(0, Some(&payload))];
        let err =
            PayloadDecoder::new(&format, &[], &[], &sample, Path::new(".")).expect_err("ambiguous");
        assert!(
            err.to_string().starts_with(
                "source.format.confluent: 1 of the first 1 messages read as Avro records both \
                 with and without the Confluent header"
            ),
            "{err}"
        );
        for (confluent, want) in [(true, (1, "x")), (false, (0, "\0\0\0\u{2}\u{2}x"))] {
            let format = FormatSpec::Avro(AvroOptions {
                schema: Some(schema.to_string()),
                confluent: Some(confluent),
                ..AvroOptions::default()
            });
            let decoder = avro_decoder(&format, &sample);
            let read = decode_in_polls(&decoder, &sample, 1);
            let a = read.batch.column(0).as_primitive::<Int64Type>().value(0);
            let b = read.batch.column(1).as_string::<i32>().value(0);
            assert_eq!((a, b), want);
        }
    }

    #[test]
    fn records_written_by_arrow_avro_read_back_equal() {
        let mut metadata = HashMap::new();
        metadata.insert(SCHEMA_METADATA_KEY.to_string(), PAYMENT.to_string());
        let decoder = avro_decoder(&avro(Some(true), None), &[]);
        let schema = Schema::new_with_metadata(decoder.schema().fields().clone(), metadata);
        let mut rng = SplitMix(5);
        let rows = 300;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|_| rng.next() as i64),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("card-{i}-é")),
            )),
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|_| rng.below(1 << 40) as f64 / 64.0),
            )),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(
                    (0..rows).map(|_| rng.below(4_000_000_000_000) as i64),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter(
                (0..rows).map(|i| (i % 3 == 0).then(|| format!("note {i}"))),
            )),
            Arc::new(BooleanArray::from_iter((0..rows).map(|i| Some(i % 2 == 0)))),
        ];
        let batch = RecordBatch::try_new(Arc::new(schema.clone()), columns).expect("batch");
        let mut encoder = WriterBuilder::new(schema)
            .build_encoder::<AvroBinaryFormat>()
            .expect("encoder");
        encoder.encode(&batch).expect("encode");
        let encoded = encoder.flush();
        let framed: Vec<Vec<u8>> = encoded.iter().map(|row| confluent(3, &row)).collect();
        assert_eq!(framed.len(), rows);
        let records: Vec<KafkaRecord<'_>> = framed
            .iter()
            .enumerate()
            .map(|(i, p)| message(i as i64, Some(p.as_slice())))
            .collect();
        let read = decode_in_polls(&decoder, &records, 64);
        assert!(read.dead_letters.is_empty(), "{:?}", read.dead_letters);
        for i in 0..batch.num_columns() {
            assert_eq!(
                read.batch.column(i).as_ref(),
                batch.column(i).as_ref(),
                "column {i}"
            );
        }
    }

    #[test]
    fn random_bytes_and_damaged_records_never_panic_and_each_is_a_row_or_a_dead_letter() {
        let mut rng = SplitMix(99);
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        for i in 0..3_000 {
            let payload = if i % 2 == 0 {
                let len = rng.below(40) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let mut record = payment(i, b"4111", 1.0, 5, Some("n"), true);
                let at = rng.below(record.len() as u64) as usize;
                match rng.below(3) {
                    0 => record.truncate(at),
                    1 => record[at] = rng.next() as u8,
                    _ => record.insert(at, rng.next() as u8),
                }
                record
            };
            payloads.push(payload);
        }
        let records: Vec<KafkaRecord<'_>> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| message(i as i64, Some(p.as_slice())))
            .collect();
        let decoder = avro_decoder(&avro(Some(false), None), &[]);
        for poll in [3_000, 17] {
            let read = decode_in_polls(&decoder, &records, poll);
            assert!(
                read.dead_letters.len() > 1_000,
                "{}",
                read.dead_letters.len()
            );
        }
    }

    #[test]
    fn declared_columns_retype_fields_and_bad_values_are_dead_letters() {
        let schema = r#"{"type": "record", "name": "E", "fields": [
            {"name": "card", "type": "string"},
            {"name": "when", "type": "string"},
            {"name": "amount", "type": "double"}]}"#;
        let format = FormatSpec::Avro(AvroOptions {
            schema: Some(schema.to_string()),
            confluent: Some(false),
            ..AvroOptions::default()
        });
        let columns = [
            ColumnSpec::new("card", ColumnType::Int64),
            ColumnSpec::new("when", ColumnType::Timestamp),
            ColumnSpec::new("amount", ColumnType::String),
        ];
        let decoder =
            PayloadDecoder::new(&format, &columns, &[], &[], Path::new(".")).expect("decoder");
        let record = |card: &str, when: &str, amount: f64| {
            let mut out = Vec::new();
            bytes(&mut out, card.as_bytes());
            bytes(&mut out, when.as_bytes());
            out.extend_from_slice(&amount.to_le_bytes());
            out
        };
        let payloads = [
            record("4111", "2026-01-01T00:00:00Z", 12.5),
            record("abc", "2026-01-01T00:00:00Z", 1.0),
            record("5500", "1767225601000", -0.5),
            record("6011", "soon", 2.0),
        ];
        let payloads: Vec<Option<&[u8]>> = payloads.iter().map(|p| Some(p.as_slice())).collect();
        let read = decode_in_polls(&decoder, &messages(&payloads), 4);
        assert_eq!(read.offsets, [100, 102]);
        let cards = read.batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(cards.values().to_vec(), [4111, 5500]);
        let when = read
            .batch
            .column(1)
            .as_primitive::<TimestampMillisecondType>();
        assert_eq!(
            when.values().to_vec(),
            [1_767_225_600_000, 1_767_225_601_000]
        );
        let amounts: Vec<Option<&str>> = read.batch.column(2).as_string::<i32>().iter().collect();
        assert_eq!(amounts, [Some("12.5"), Some("-0.5")]);
        let reasons: Vec<(u64, &str)> = read
            .reasons()
            .into_iter()
            .map(|(offset, reason)| (offset, reason.trim_end_matches(BASE64_NOTE).trim_end()))
            .collect();
        assert_eq!(
            reasons,
            [
                (101, "column `card`: cannot read `abc` as Int64"),
                (
                    103,
                    "column `when`: cannot read `soon` as a timestamp (RFC 3339 or integer ms)"
                ),
            ]
        );
    }

    #[test]
    fn schema_settings_that_do_not_fit_are_refused_naming_the_setting() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("payment.avsc"), PAYMENT).expect("write");
        std::fs::write(dir.path().join("broken.avsc"), "{\"type\": \"record\", ").expect("write");
        std::fs::write(dir.path().join("text.avsc"), "\"string\"").expect("write");
        let options = |schema_file: Option<&str>, schema: Option<&str>| AvroOptions {
            schema_file: schema_file.map(str::to_string),
            schema: schema.map(str::to_string),
            confluent: Some(true),
            schema_id: None,
        };
        let new = |options: AvroOptions, columns: &[ColumnSpec]| {
            PayloadDecoder::new(&FormatSpec::Avro(options), columns, &[], &[], dir.path())
                .map(|d| d.schema().fields().len())
                .map_err(|e| e.to_string())
        };
        assert_eq!(new(options(Some("payment.avsc"), None), &[]), Ok(6));
        let starts = |result: Result<usize, String>, prefix: &str| {
            let err = result.expect_err(prefix);
            assert!(err.starts_with(prefix), "{err}");
        };
        starts(
            new(options(Some("missing.avsc"), None), &[]),
            &format!(
                "source.format.schema_file: cannot read {}",
                dir.path().join("missing.avsc").display()
            ),
        );
        starts(
            new(options(Some("broken.avsc"), None), &[]),
            &format!(
                "source.format.schema_file: {} is not an Avro record schema: ",
                dir.path().join("broken.avsc").display()
            ),
        );
        starts(
            new(options(Some("text.avsc"), None), &[]),
            "source.format.schema_file: ",
        );
        starts(
            new(options(None, Some("{\"type\": \"enum\"}")), &[]),
            "source.format.schema: the schema is not an Avro record schema: ",
        );
        starts(
            new(options(Some("payment.avsc"), Some(PAYMENT)), &[]),
            "source.format.schema: give the Avro schema once",
        );
        starts(
            new(options(None, None), &[]),
            "source.format.schema_file: format \"avro\" needs the writer schema",
        );
        let mut no_header = options(None, Some(PAYMENT));
        no_header.confluent = Some(false);
        no_header.schema_id = Some(3);
        starts(new(no_header, &[]), "source.format.schema_id: ");
        let unknown = [ColumnSpec::new("cvv", ColumnType::Int64)];
        starts(
            new(options(None, Some(PAYMENT)), &unknown),
            "column `cvv`: declared in source.columns, but the Avro schema has no such column",
        );
    }
}
