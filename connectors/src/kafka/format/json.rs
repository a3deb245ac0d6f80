//! `format = "json"`: one JSON object per message, decoded by arrow-json into declared or
//! inferred columns.
//!
//! Declared `columns` are the whole schema. Without them the columns are inferred from the
//! sampled messages by the JSON-lines files' rule (`file/infer.rs`: a key takes the type most of
//! its values have, a stray bad value does not decide it). Keys not in the schema are ignored,
//! missing keys read as null, and timestamps are RFC 3339 text or integer ms, as in JSON-lines
//! files.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::ReaderBuilder;
use arrow::json::reader::Decoder;
use sluice_engine::{Error, Result};

use super::runs::MessageFormat;
use super::{EMPTY_PAYLOAD, payload_text};
use crate::file::{Order, check_time_ranges, json_columns, json_reason, normalise, with_declared};
use crate::kafka::KafkaRecord;
use crate::spec::ColumnSpec;

/// The columns of JSON messages: as declared, else inferred from `sample`.
pub(super) fn fields(columns: &[ColumnSpec], sample: &[KafkaRecord<'_>]) -> Result<Vec<Field>> {
    if !columns.is_empty() {
        let declared = with_declared(&Schema::empty(), columns, Order::DeclaredFirst, "")?;
        return Ok(declared
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect());
    }
    let payloads: Vec<&[u8]> = sample.iter().filter_map(|r| r.payload).collect();
    let inferred = normalise(&json_columns(&payloads));
    if inferred.fields().is_empty() {
        let message = format!(
            "cannot infer the columns of JSON messages: none of the {} messages sampled from \
             the topic is a JSON object; declare the columns",
            sample.len()
        );
        return Err(Error::config("source.columns", message));
    }
    Ok(inferred
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect())
}

/// Decodes JSON messages straight into the payload's columns.
#[derive(Debug)]
pub(super) struct JsonMessages {
    schema: SchemaRef,
}

impl JsonMessages {
    pub(super) fn new(fields: &[Field]) -> Self {
        JsonMessages {
            schema: Arc::new(Schema::new(fields.to_vec())),
        }
    }
}

impl MessageFormat for JsonMessages {
    type Decoder = Decoder;

    fn decoder(&self, messages: usize) -> Result<Decoder> {
        // One row more than messages, so that a message holding a second object is seen to.
        // A text column reads numbers and booleans as their text, as JSON-lines files do.
        ReaderBuilder::new(self.schema.clone())
            .with_batch_size(messages + 1)
            .with_coerce_primitive(true)
            .build_decoder()
            .map_err(Error::arrow("building a JSON decoder"))
    }

    fn push(&self, decoder: &mut Decoder, payload: &[u8]) -> Result<(), String> {
        let text = payload_text(payload)?;
        match text.trim_start().chars().next() {
            Some('{') => {}
            Some(c) => return Err(format!("not a JSON object: it starts with `{c}`")),
            None => return Err(EMPTY_PAYLOAD.to_string()),
        }
        let before = decoder.len();
        let used = decoder.decode(payload).map_err(|e| json_reason(&e))?;
        if used < payload.len() || decoder.len() > before + 1 {
            return Err("expected one JSON object per message, found more".to_string());
        }
        if decoder.has_partial_record() {
            return Err("invalid JSON: the object does not end".to_string());
        }
        Ok(())
    }

    fn flush(&self, mut decoder: Decoder) -> Result<RecordBatch, ArrowError> {
        Ok(decoder
            .flush()?
            .unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone())))
    }

    fn decoded_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn reason(&self, error: &ArrowError) -> String {
        json_reason(error)
    }

    fn finish(&self, batch: RecordBatch) -> Result<(RecordBatch, Vec<Option<String>>)> {
        let reasons = check_time_ranges(&batch);
        Ok((batch, reasons))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType};
    use base64::Engine;

    use super::super::testing::{SplitMix, decode_in_polls, message, messages};
    use super::super::{FormatSpec, MetadataColumn, PayloadDecoder};
    use crate::spec::{ColumnType, timestamp_type};

    fn declared() -> Vec<ColumnSpec> {
        vec![
            ColumnSpec::new("ts", ColumnType::Timestamp),
            ColumnSpec::new("id", ColumnType::Int64),
            ColumnSpec::new("v", ColumnType::Float64),
            ColumnSpec::new("name", ColumnType::String),
            ColumnSpec::new("flag", ColumnType::Bool),
        ]
    }

    fn json_decoder(columns: &[ColumnSpec], sample: &[KafkaRecord<'_>]) -> PayloadDecoder {
        PayloadDecoder::new(&FormatSpec::Json, columns, &[], sample, Path::new("."))
            .expect("decoder")
    }

    const MIXED: [Option<&[u8]>; 17] = [
        Some(br#"{"ts":"2026-01-01T00:00:00Z","id":1,"v":1.5,"name":"a","flag":true}"#),
        Some(br#"{"ts":1767225601000,"id":2,"v":2,"extra":[1,2]}"#),
        Some(br#"{"ts":"2026-01-01T00:00:02Z","id":"two"}"#),
        Some(b"not json"),
        Some(br#"[{"id":4}]"#),
        Some(br#"{"id":5} {"id":6}"#),
        Some(br#"{"id":7,"#),
        // Half an object at the end of one message, the rest in the next: both are bad.
        Some(br#"{"id":8} {"id":"#),
        Some(b"9}"),
        None,
        Some(b"{\"name\":\"caf\xe9\"}"),
        Some(br#"{"id":12,"v":null,"name":null}"#),
        Some(b" \n "),
        Some(br#"{"ts":1700000000000000000,"id":14}"#),
        Some(br#"{"id":15,"flag":"yes"}"#),
        Some(b"{\n  \"id\": 16,\n  \"v\": 1e3,\n  \"name\": \"line\\nbreak\"\n}\n"),
        Some(br#"{"id":17,"v":-0.25,"flag":false,"name":"\u00e9"}"#),
    ];

    #[test]
    fn good_messages_decode_and_each_bad_one_is_one_dead_letter() {
        let decoder = json_decoder(&declared(), &[]);
        let records = messages(&MIXED);
        for poll in [MIXED.len(), 1, 2, 3, 5] {
            let read = decode_in_polls(&decoder, &records, poll);
            assert_eq!(read.offsets, [100, 101, 111, 115, 116], "poll {poll}");
            let batch = &read.batch;
            let ts = batch.column(0).as_primitive::<TimestampMillisecondType>();
            // 2026-01-01T00:00:00Z is 1 767 225 600 000 ms; the second message gives ms.
            assert_eq!(
                ts.iter().collect::<Vec<_>>(),
                [
                    Some(1_767_225_600_000),
                    Some(1_767_225_601_000),
                    None,
                    None,
                    None
                ]
            );
            let ids = batch.column(1).as_primitive::<Int64Type>();
            assert_eq!(ids.values().to_vec(), [1, 2, 12, 16, 17]);
            let v = batch.column(2).as_primitive::<Float64Type>();
            assert_eq!(
                v.iter().collect::<Vec<_>>(),
                [Some(1.5), Some(2.0), None, Some(1000.0), Some(-0.25)]
            );
            let names: Vec<Option<&str>> = batch.column(3).as_string::<i32>().iter().collect();
            assert_eq!(
                names,
                [Some("a"), None, None, Some("line\nbreak"), Some("é")]
            );
            let flags: Vec<Option<bool>> = batch.column(4).as_boolean().iter().collect();
            assert_eq!(flags, [Some(true), None, None, None, Some(false)]);

            let reasons = read.reasons();
            let range = "0000-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999Z";
            let out_of_range = format!(
                "column `ts`: `1700000000000000000` is outside the valid time range {range}"
            );
            let want: Vec<(u64, &str)> = vec![
                (102, "column `id`: cannot parse `two` as Int64"),
                (103, "not a JSON object: it starts with `n`"),
                (104, "not a JSON object: it starts with `[`"),
                (105, "expected one JSON object per message, found more"),
                (106, "invalid JSON: the object does not end"),
                (107, "expected one JSON object per message, found more"),
                (108, "not a JSON object: it starts with `9`"),
                (109, "the message has no payload (a tombstone)"),
                (
                    110,
                    "not valid UTF-8: byte 13 of the payload (after `{\"name\":\"caf`) \
                     (raw: the payload as base64, it is not UTF-8)",
                ),
                (112, "the payload is empty"),
                (113, out_of_range.as_str()),
            ];
            assert_eq!(reasons[..want.len()], want[..], "poll {poll}");
            assert_eq!(reasons.len(), want.len() + 1);
            assert_eq!(reasons[want.len()].0, 114);
            assert!(
                reasons[want.len()].1.starts_with("column `flag`: "),
                "{}",
                reasons[want.len()].1
            );
            // The payload as it came, base64 when it is not UTF-8.
            let raw: Vec<&str> = read.dead_letters.iter().map(|d| d.raw.as_str()).collect();
            assert_eq!(raw[0], r#"{"ts":"2026-01-01T00:00:02Z","id":"two"}"#);
            assert_eq!(raw[6], "9}");
            assert_eq!(raw[7], "", "a tombstone has no payload");
            let latin1 =
                base64::engine::general_purpose::STANDARD.encode(b"{\"name\":\"caf\xe9\"}");
            assert_eq!(raw[8], latin1);
        }
    }

    #[test]
    fn columns_are_inferred_from_the_sample_and_a_minority_of_bad_values_is_dead_letters() {
        // 150 messages: `k` is an integer in all but one, which has text; one is not JSON.
        let mut payloads: Vec<String> = (0..150)
            .map(|i| {
                format!(
                    r#"{{"ts":{},"k":{i},"s":"x{i}","n":null}}"#,
                    1_767_225_600_000i64 + i
                )
            })
            .collect();
        payloads[40] = r#"{"ts":1767225600040,"k":"oops","s":"y"}"#.to_string();
        payloads[41] = "garbage".to_string();
        let payloads: Vec<Option<&[u8]>> = payloads.iter().map(|p| Some(p.as_bytes())).collect();
        let records = messages(&payloads);
        let decoder = PayloadDecoder::new(
            &FormatSpec::Json,
            &[],
            &[MetadataColumn::Offset],
            &records,
            Path::new("."),
        )
        .expect("decoder");
        let schema = decoder.schema();
        // Keys in the order the file sources' inference gives them, the metadata column last.
        let type_of = |name: &str| {
            schema
                .field_with_name(name)
                .expect(name)
                .data_type()
                .clone()
        };
        assert_eq!(type_of("ts"), DataType::Int64);
        assert_eq!(type_of("k"), DataType::Int64);
        assert_eq!(type_of("s"), DataType::Utf8);
        assert_eq!(type_of("n"), DataType::Utf8, "always null: text");
        assert_eq!(schema.fields().len(), 5);
        assert_eq!(schema.field(4).name(), "kafka_offset");
        let k_index = schema.index_of("k").expect("k");
        let n_index = schema.index_of("n").expect("n");
        let read = decode_in_polls(&decoder, &records, 64);
        assert_eq!(read.batch.num_rows(), 148);
        let reasons = read.reasons();
        assert_eq!(
            reasons[0],
            (140, "column `k`: cannot parse `oops` as Int64")
        );
        assert_eq!(reasons[1], (141, "not a JSON object: it starts with `g`"));
        let k = read.batch.column(k_index).as_primitive::<Int64Type>();
        let want: Vec<i64> = (0..150).filter(|i| ![40, 41].contains(i)).collect();
        assert_eq!(k.values().to_vec(), want);
        let offsets = read.batch.column(4).as_primitive::<Int64Type>();
        let want_offsets: Vec<i64> = want.iter().map(|i| 100 + i).collect();
        assert_eq!(offsets.values().to_vec(), want_offsets);
        assert_eq!(read.batch.column(n_index).null_count(), 148);
    }

    #[test]
    fn nothing_to_infer_from_is_refused_naming_the_columns_setting() {
        for sample in [vec![], vec![message(0, Some(b"[1,2]")), message(1, None)]] {
            let err = PayloadDecoder::new(&FormatSpec::Json, &[], &[], &sample, Path::new("."))
                .expect_err("no columns");
            assert!(
                err.to_string().starts_with("source.columns: cannot infer"),
                "{err}"
            );
        }
        assert!(PayloadDecoder::needs_sample(&FormatSpec::Json, &[]));
        assert!(!PayloadDecoder::needs_sample(
            &FormatSpec::Json,
            &declared()
        ));
        let twice = [
            ColumnSpec::new("a", ColumnType::Int64),
            ColumnSpec::new("a", ColumnType::String),
        ];
        let err = PayloadDecoder::new(&FormatSpec::Json, &twice, &[], &[], Path::new("."))
            .expect_err("twice");
        assert_eq!(
            err.to_string(),
            "source.columns: column `a` is declared twice"
        );
    }

    /// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`.
    fn civil(days: i64) -> (i64, i64, i64) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(month <= 2), month, day)
    }

    fn rfc3339(ms: i64) -> String {
        let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
        let (y, mo, d) = civil(days);
        let (h, mi, s, milli) = (
            rest / 3_600_000,
            rest / 60_000 % 60,
            rest / 1000 % 60,
            rest % 1000,
        );
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
    }

    #[test]
    fn rfc3339_of_the_test_is_right() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }

    /// The values of one object as written, `None` for null or missing.
    struct Written {
        ts: Option<i64>,
        id: Option<i64>,
        v: Option<f64>,
        name: Option<String>,
        flag: Option<bool>,
    }

    #[test]
    fn seeded_random_objects_written_by_serde_json_decode_to_the_values_written() {
        let mut rng = SplitMix(13);
        let alphabet: Vec<char> = "ab \"\\/\n\t\u{1}é€😀,{}[]:".chars().collect();
        let mut payloads = Vec::new();
        let mut want: Vec<Written> = Vec::new();
        for _ in 0..600 {
            // Each key is present, null or missing.
            let mut object = serde_json::Map::new();
            let pick = |rng: &mut SplitMix| rng.below(5);
            let ts = match pick(&mut rng) {
                0 => None,
                _ => Some(rng.below(4_000_000_000_000) as i64 + 1_000_000_000_000),
            };
            if let Some(ts) = ts {
                let value = if rng.below(2) == 0 {
                    serde_json::json!(ts)
                } else {
                    serde_json::json!(rfc3339(ts))
                };
                object.insert("ts".into(), value);
            }
            let id = (pick(&mut rng) != 0).then(|| rng.next() as i64);
            let v = (pick(&mut rng) != 0).then(|| {
                let x = f64::from_bits(rng.next());
                if x.is_finite() {
                    x
                } else {
                    rng.below(1000) as f64 / 8.0
                }
            });
            let name = (pick(&mut rng) != 0).then(|| {
                let len = rng.below(12) as usize;
                (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                    .collect::<String>()
            });
            let flag = (pick(&mut rng) != 0).then(|| rng.below(2) == 1);
            for (key, value) in [
                ("id", id.map(serde_json::Value::from)),
                ("v", v.map(serde_json::Value::from)),
                ("name", name.clone().map(serde_json::Value::from)),
                ("flag", flag.map(serde_json::Value::from)),
            ] {
                match (value, rng.below(2)) {
                    (Some(value), _) => {
                        object.insert(key.into(), value);
                    }
                    (None, 0) => {
                        object.insert(key.into(), serde_json::Value::Null);
                    }
                    (None, _) => {}
                }
            }
            let object = serde_json::Value::Object(object);
            let text = if rng.below(4) == 0 {
                serde_json::to_string_pretty(&object)
            } else {
                serde_json::to_string(&object)
            };
            payloads.push(text.expect("serialise"));
            want.push(Written {
                ts,
                id,
                v,
                name,
                flag,
            });
        }
        let payloads: Vec<Option<&[u8]>> = payloads.iter().map(|p| Some(p.as_bytes())).collect();
        let records = messages(&payloads);
        let decoder = json_decoder(&declared(), &[]);
        assert_eq!(decoder.schema().field(0).data_type(), &timestamp_type());
        for poll in [600, 7, 1] {
            let read = decode_in_polls(&decoder, &records, poll);
            assert!(read.dead_letters.is_empty(), "{:?}", read.dead_letters);
            let batch = &read.batch;
            let ts = batch.column(0).as_primitive::<TimestampMillisecondType>();
            let ids = batch.column(1).as_primitive::<Int64Type>();
            let v = batch.column(2).as_primitive::<Float64Type>();
            let names = batch.column(3).as_string::<i32>();
            let flags = batch.column(4).as_boolean();
            for (row, written) in want.iter().enumerate() {
                let get = |a: &dyn Array| a.is_valid(row);
                assert_eq!(get(ts).then(|| ts.value(row)), written.ts, "row {row}");
                assert_eq!(get(ids).then(|| ids.value(row)), written.id, "row {row}");
                assert_eq!(
                    get(v).then(|| v.value(row).to_bits()),
                    written.v.map(f64::to_bits),
                    "row {row}"
                );
                assert_eq!(
                    get(names).then(|| names.value(row)),
                    written.name.as_deref(),
                    "row {row}"
                );
                assert_eq!(
                    get(flags).then(|| flags.value(row)),
                    written.flag,
                    "row {row}"
                );
            }
        }
    }
}
