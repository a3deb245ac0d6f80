//! How a Kafka sink turns output rows into message values: JSON objects, CSV records or Avro
//! records (bare or in the Confluent wire format), one message per row.
//!
//! The sink's `format` takes the same shape as a source's (`"json"`, `{ type = "csv",
//! delimiter = ";" }`, `{ type = "avro", ... }`), so a topic one job writes another reads with
//! the same setting.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::csv::WriterBuilder as CsvWriterBuilder;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::json::writer::{LineDelimited, WriterBuilder as JsonWriterBuilder};
use arrow_avro::schema::{FingerprintStrategy, SCHEMA_METADATA_KEY};
use arrow_avro::writer::format::{AvroBinaryFormat, AvroSoeFormat};
use arrow_avro::writer::{Encoder, WriterBuilder as AvroWriterBuilder};
use sluice_engine::{Error, Result};

use super::format::{AvroOptions, CsvOptions, FormatSpec};

/// Encodes batches of one schema into message values.
pub(crate) enum PayloadEncoder {
    Json,
    Csv { delimiter: u8 },
    Avro(Box<Encoder>),
}

impl std::fmt::Debug for PayloadEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PayloadEncoder::Json => "PayloadEncoder::Json",
            PayloadEncoder::Csv { .. } => "PayloadEncoder::Csv",
            PayloadEncoder::Avro(_) => "PayloadEncoder::Avro",
        })
    }
}

impl PayloadEncoder {
    /// Checks `format` against the rows' `schema`; `setting` names the sink table in errors
    /// and a schema file is read relative to `base_dir`.
    pub(crate) fn new(
        format: &FormatSpec,
        schema: &SchemaRef,
        setting: &str,
        base_dir: &Path,
    ) -> Result<Self> {
        match format {
            FormatSpec::Json => Ok(PayloadEncoder::Json),
            FormatSpec::Csv(CsvOptions { delimiter }) => {
                let delimiter = u8::try_from(*delimiter)
                    .ok()
                    .filter(|d| d.is_ascii() && !matches!(d, b'"' | b'\n' | b'\r'))
                    .ok_or_else(|| {
                        Error::config(
                            format!("{setting}.format.delimiter"),
                            format!("`{delimiter}` is not one ASCII character other than a quote or a line end"),
                        )
                    })?;
                Ok(PayloadEncoder::Csv { delimiter })
            }
            FormatSpec::Avro(options) => avro_encoder(options, schema, setting, base_dir)
                .map(|e| PayloadEncoder::Avro(Box::new(e))),
            FormatSpec::Raw => Err(Error::config(
                format!("{setting}.format"),
                "\"raw\" is a source format; a Kafka sink writes \"json\", \"csv\" or \"avro\"",
            )),
        }
    }

    /// Each row of `batch` as one message value.
    pub(crate) fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        match self {
            PayloadEncoder::Json => json_rows(batch),
            PayloadEncoder::Csv { delimiter } => csv_rows(batch, *delimiter),
            PayloadEncoder::Avro(encoder) => {
                encoder
                    .encode(batch)
                    .map_err(|e| Error::Internal(format!("encoding rows as Avro: {e}")))?;
                Ok(encoder.flush().iter().map(|row| row.to_vec()).collect())
            }
        }
    }
}

/// Each row of `batch` as a JSON object with every column (nulls explicit).
pub(crate) fn json_rows(batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
    let mut writer = JsonWriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(Vec::new());
    writer
        .write(batch)
        .map_err(Error::arrow("writing rows as JSON"))?;
    writer
        .finish()
        .map_err(Error::arrow("writing rows as JSON"))?;
    // arrow-json escapes line breaks inside strings, so every line is one row.
    let text = writer.into_inner();
    Ok(text
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// Each row of `batch` as one CSV record without a header or a line end. Rows are written one
/// at a time because a quoted field may hold a line break, so the writer's output cannot be
/// split on line ends afterwards.
fn csv_rows(batch: &RecordBatch, delimiter: u8) -> Result<Vec<Vec<u8>>> {
    (0..batch.num_rows())
        .map(|row| {
            let mut out = Vec::new();
            CsvWriterBuilder::new()
                .with_header(false)
                .with_delimiter(delimiter)
                .build(&mut out)
                .write(&batch.slice(row, 1))
                .map_err(Error::arrow("writing a row as CSV"))?;
            if out.last() == Some(&b'\n') {
                out.pop();
            }
            Ok(out)
        })
        .collect()
}

/// The Avro encoder for `schema`: the writer schema is the one given (`schema_file` or
/// `schema`, which must fit the output's columns) or derived from the columns.
fn avro_encoder(
    options: &AvroOptions,
    schema: &SchemaRef,
    setting: &str,
    base_dir: &Path,
) -> Result<Encoder> {
    let given = match (&options.schema_file, &options.schema) {
        (Some(_), Some(_)) => {
            return Err(Error::config(
                format!("{setting}.format.schema"),
                "give the Avro schema once: schema_file or schema, not both",
            ));
        }
        (Some(file), None) => {
            let path = base_dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::config(
                    format!("{setting}.format.schema_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            Some((text, "schema_file"))
        }
        (None, Some(text)) => Some((text.clone(), "schema")),
        (None, None) => None,
    };
    let confluent = match (options.confluent, options.schema_id) {
        (Some(true), None) => {
            return Err(Error::config(
                format!("{setting}.format.schema_id"),
                "the Confluent wire format carries a schema id: set schema_id (the id the \
                 schema registry gave this schema)",
            ));
        }
        (Some(false), Some(_)) => {
            return Err(Error::config(
                format!("{setting}.format.schema_id"),
                "a schema id is written only in the Confluent wire format (confluent = true)",
            ));
        }
        (_, id) => id,
    };
    let mut metadata = schema.metadata().clone();
    let key = match given {
        Some((text, key)) => {
            nulls_fit(&text, schema)
                .map_err(|why| Error::config(format!("{setting}.format.{key}"), why))?;
            metadata.insert(SCHEMA_METADATA_KEY.to_string(), text);
            key
        }
        None => "format",
    };
    let schema = Schema::new_with_metadata(schema.fields().clone(), metadata);
    let builder = AvroWriterBuilder::new(schema);
    let built = match confluent {
        Some(id) => builder
            .with_fingerprint_strategy(FingerprintStrategy::Id(id))
            .build_encoder::<AvroSoeFormat>(),
        None => builder.build_encoder::<AvroBinaryFormat>(),
    };
    built.map_err(|e| {
        Error::config(
            format!("{setting}.format.{key}"),
            format!("the Avro schema does not fit the output's columns: {e}"),
        )
    })
}

/// Refuses a given writer schema with a field that cannot hold null (not a union with
/// `"null"`) for an output column that may be null: the encoder would write such a null as a
/// value, which readers would take for real data.
fn nulls_fit(text: &str, schema: &SchemaRef) -> std::result::Result<(), String> {
    let avro: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the Avro schema is not JSON: {e}"))?;
    let fields = avro["fields"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for field in fields {
        let Some(name) = field["name"].as_str() else {
            continue;
        };
        let nullable = match &field["type"] {
            serde_json::Value::Array(branches) => branches.iter().any(|b| b == "null"),
            other => other == "null",
        };
        let may_be_null = schema.field_with_name(name).is_ok_and(|f| f.is_nullable());
        if may_be_null && !nullable {
            return Err(format!(
                "field `{name}` cannot hold null, but the output column `{name}` may be null: \
                 give it the type [\"null\", ...]"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, TimeUnit};

    use super::*;
    use crate::kafka::KafkaRecord;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("card", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
            Field::new("avg", DataType::Float64, true),
            Field::new(
                "end",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("a,\"b\"\nc"),
                    None,
                    Some("plain"),
                ])),
                Arc::new(Int64Array::from(vec![1, -2, 3])),
                Arc::new(Float64Array::from(vec![Some(0.5), None, Some(-1e300)])),
                Arc::new(
                    TimestampMillisecondArray::from(vec![0, 1_767_225_600_000, 1])
                        .with_timezone("UTC"),
                ),
            ],
        )
        .expect("batch")
    }

    fn encode(format: FormatSpec) -> Vec<Vec<u8>> {
        let b = batch();
        PayloadEncoder::new(&format, &b.schema(), "sink", Path::new("."))
            .expect("encoder")
            .encode(&b)
            .expect("encode")
    }

    /// What the source's decoder of the same format reads back from `values`.
    fn read_back(format: FormatSpec, values: &[Vec<u8>]) -> RecordBatch {
        use crate::spec::{ColumnSpec, ColumnType};
        let columns = match format {
            FormatSpec::Avro(_) => vec![],
            _ => ["card", "n", "avg", "end"]
                .into_iter()
                .zip([
                    ColumnType::String,
                    ColumnType::Int64,
                    ColumnType::Float64,
                    ColumnType::Timestamp,
                ])
                .map(|(name, ty)| ColumnSpec::new(name, ty))
                .collect(),
        };
        let decoder =
            super::super::PayloadDecoder::new(&format, &columns, &[], &[], Path::new("."))
                .expect("decoder");
        let records: Vec<KafkaRecord<'_>> = values
            .iter()
            .enumerate()
            .map(|(i, v)| KafkaRecord {
                topic: "t",
                partition: 0,
                offset: i as i64,
                timestamp: None,
                key: None,
                payload: Some(v),
                headers: vec![],
            })
            .collect();
        let read = decoder.decode(&records).expect("decode");
        assert!(read.dead_letters.is_empty(), "{:?}", read.dead_letters);
        read.batch
    }

    fn assert_same(read: &RecordBatch) {
        let want = batch();
        assert_eq!(read.num_rows(), want.num_rows());
        for (i, field) in want.schema().fields().iter().enumerate() {
            let got = read.column_by_name(field.name()).expect("column");
            let got = arrow::compute::cast(got, field.data_type()).expect("cast");
            assert_eq!(got.as_ref(), want.column(i).as_ref(), "{}", field.name());
        }
    }

    #[test]
    fn json_csv_and_avro_values_read_back_through_the_source_formats() {
        let json = encode(FormatSpec::Json);
        assert_eq!(
            String::from_utf8_lossy(&json[1]),
            r#"{"card":null,"n":-2,"avg":null,"end":"2026-01-01T00:00:00Z"}"#
        );
        assert_same(&read_back(FormatSpec::Json, &json));
        let csv_format = FormatSpec::Csv(CsvOptions { delimiter: ';' });
        let csv = encode(csv_format.clone());
        assert_eq!(
            String::from_utf8_lossy(&csv[2]),
            "plain;3;-1e300;1970-01-01T00:00:00.001Z"
        );
        assert_eq!(
            String::from_utf8_lossy(&csv[0]),
            "\"a,\"\"b\"\"\nc\";1;0.5;1970-01-01T00:00:00Z"
        );
        assert_same(&read_back(csv_format, &csv));
        for (confluent, schema_id) in [(None, None), (Some(true), Some(7))] {
            let format = FormatSpec::Avro(AvroOptions {
                confluent,
                schema_id,
                ..AvroOptions::default()
            });
            let values = encode(format);
            assert_eq!(values[0][0] == 0, confluent.is_some(), "framing");
            let b = batch();
            let written = PayloadEncoder::new(
                &FormatSpec::Avro(AvroOptions::default()),
                &b.schema(),
                "sink",
                Path::new("."),
            )
            .expect("encoder");
            let PayloadEncoder::Avro(encoder) = written else {
                panic!("an Avro encoder")
            };
            let schema_text = encoder.schema().metadata()[SCHEMA_METADATA_KEY].clone();
            let read = read_back(
                FormatSpec::Avro(AvroOptions {
                    schema: Some(schema_text),
                    confluent: Some(confluent.is_some()),
                    schema_id,
                    ..AvroOptions::default()
                }),
                &values,
            );
            assert_same(&read);
        }
    }

    #[test]
    fn settings_that_do_not_fit_are_refused_naming_the_setting() {
        let schema = batch().schema();
        let err = |format: FormatSpec| {
            PayloadEncoder::new(&format, &schema, "late", Path::new("."))
                .expect_err("refused")
                .to_string()
        };
        assert!(err(FormatSpec::Raw).starts_with("late.format: \"raw\" is a source format"));
        let e = err(FormatSpec::Csv(CsvOptions { delimiter: 'é' }));
        assert!(e.starts_with("late.format.delimiter"), "{e}");
        let avro = |options: AvroOptions| FormatSpec::Avro(options);
        let e = err(avro(AvroOptions {
            confluent: Some(true),
            ..AvroOptions::default()
        }));
        assert!(
            e.starts_with("late.format.schema_id: the Confluent wire format"),
            "{e}"
        );
        let e = err(avro(AvroOptions {
            schema_file: Some("no/such.avsc".into()),
            ..AvroOptions::default()
        }));
        assert!(
            e.starts_with("late.format.schema_file: cannot read ./no/such.avsc"),
            "{e}"
        );
        let e = err(avro(AvroOptions {
            schema: Some(
                r#"{"type": "record", "name": "R", "fields": [{"name": "x", "type": "long"}]}"#
                    .into(),
            ),
            ..AvroOptions::default()
        }));
        assert!(
            e.starts_with("late.format.schema: the Avro schema does not fit"),
            "{e}"
        );
        // `avg` may be null; a schema that gives it a plain `double` would turn nulls into
        // values.
        let fields = r#"{"name": "card", "type": ["null", "string"]}, {"name": "n", "type": "long"},
            {"name": "avg", "type": "double"},
            {"name": "end", "type": {"type": "long", "logicalType": "timestamp-millis"}}"#;
        let e = err(avro(AvroOptions {
            schema: Some(format!(
                r#"{{"type": "record", "name": "R", "fields": [{fields}]}}"#
            )),
            ..AvroOptions::default()
        }));
        assert!(
            e.starts_with("late.format.schema: field `avg` cannot hold null"),
            "{e}"
        );
    }
}
