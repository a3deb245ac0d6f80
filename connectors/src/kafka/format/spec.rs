//! `format` in a Kafka `[source]`: a format's name, or a table of its `type` and options.
//!
//! ```toml
//! format = "json"
//! format = { type = "csv", delimiter = ";" }
//! format = { type = "avro", schema_file = "payment.avsc", confluent = true }
//! ```
//!
//! The job file only has to be well formed here; whether the options fit together (a schema
//! given twice, a file that does not parse) is checked by [`super::PayloadDecoder::new`],
//! which names the setting.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// How message payloads are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatSpec {
    /// The key and the payload as text columns `key` and `value`.
    Raw,
    /// One JSON object per message; columns declared or inferred from the first messages.
    Json,
    /// One CSV record per message, no header; columns declared in field order.
    Csv(CsvOptions),
    /// One Avro record per message, bare or in the Confluent wire format.
    Avro(AvroOptions),
}

/// `format = { type = "csv", ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// The field separator, one ASCII character other than a quote or a line end (`,`).
    #[serde(default = "comma")]
    pub delimiter: char,
}

fn comma() -> char {
    ','
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { delimiter: comma() }
    }
}

/// `format = { type = "avro", ... }`: the schema (from a file or inline, exactly one) and the
/// framing of each message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvroOptions {
    /// A file holding the writer schema (`.avsc` JSON), relative to the job file.
    pub schema_file: Option<String>,
    /// The writer schema itself, as JSON text.
    pub schema: Option<String>,
    /// Whether each message starts with the Confluent header (byte 0, then a 4-byte schema
    /// id). Absent: decided from the first messages of the topic.
    pub confluent: Option<bool>,
    /// With the Confluent header, the one schema id the job reads; messages with another id
    /// are dead letters. Absent: any id is read with the job's schema.
    pub schema_id: Option<u32>,
}

/// The names `format = "..."` accepts.
const NAMES: &[&str] = &["raw", "json", "csv", "avro"];

/// The table form, tagged by `type`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FormatTable {
    Raw(NoOptions),
    Json(NoOptions),
    Csv(CsvOptions),
    Avro(AvroOptions),
}

/// The options of a format that has none: any key but `type` is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

impl<'de> Deserialize<'de> for FormatSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FormatVisitor;

        impl<'de> Visitor<'de> for FormatVisitor {
            type Value = FormatSpec;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a format name (\"json\", \"csv\", \"avro\" or \"raw\") or a table such as \
                     { type = \"avro\", schema_file = \"x.avsc\" }",
                )
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<FormatSpec, E> {
                match name {
                    "raw" => Ok(FormatSpec::Raw),
                    "json" => Ok(FormatSpec::Json),
                    "csv" => Ok(FormatSpec::Csv(CsvOptions::default())),
                    "avro" => Ok(FormatSpec::Avro(AvroOptions::default())),
                    other => Err(E::unknown_variant(other, NAMES)),
                }
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<FormatSpec, M::Error> {
                let table = FormatTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(match table {
                    FormatTable::Raw(NoOptions {}) => FormatSpec::Raw,
                    FormatTable::Json(NoOptions {}) => FormatSpec::Json,
                    FormatTable::Csv(options) => FormatSpec::Csv(options),
                    FormatTable::Avro(options) => FormatSpec::Avro(options),
                })
            }
        }

        deserializer.deserialize_any(FormatVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Source {
        format: FormatSpec,
    }

    fn parse(toml_text: &str) -> Result<FormatSpec, String> {
        toml::from_str::<Source>(toml_text)
            .map(|s| s.format)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_name_or_a_table_with_type() {
        assert_eq!(parse(r#"format = "json""#), Ok(FormatSpec::Json));
        assert_eq!(parse(r#"format = "raw""#), Ok(FormatSpec::Raw));
        assert_eq!(
            parse(r#"format = "csv""#),
            Ok(FormatSpec::Csv(CsvOptions { delimiter: ',' }))
        );
        assert_eq!(
            parse(r#"format = { type = "csv", delimiter = ";" }"#),
            Ok(FormatSpec::Csv(CsvOptions { delimiter: ';' }))
        );
        assert_eq!(parse(r#"format = { type = "json" }"#), Ok(FormatSpec::Json));
        assert_eq!(parse(r#"format = { type = "raw" }"#), Ok(FormatSpec::Raw));
        assert_eq!(
            parse(
                "[format]\ntype = \"avro\"\nschema_file = \"p.avsc\"\nconfluent = true\n\
                 schema_id = 7\n"
            ),
            Ok(FormatSpec::Avro(AvroOptions {
                schema_file: Some("p.avsc".into()),
                schema: None,
                confluent: Some(true),
                schema_id: Some(7),
            }))
        );
        assert_eq!(
            parse(r#"format = "avro""#),
            Ok(FormatSpec::Avro(AvroOptions::default())),
            "the missing schema is refused by PayloadDecoder::new, naming the setting"
        );
    }

    #[test]
    fn unknown_names_types_and_options_are_refused() {
        let err = parse(r#"format = "protobuf""#).expect_err("unknown name");
        assert!(
            err.contains("unknown variant `protobuf`") && err.contains("`json`"),
            "{err}"
        );
        let err = parse(r#"format = { type = "xml" }"#).expect_err("unknown type");
        assert!(err.contains("unknown variant `xml`"), "{err}");
        let err = parse(r#"format = { type = "avro", schema_fil = "x" }"#).expect_err("typo");
        assert!(err.contains("unknown field `schema_fil`"), "{err}");
        let err = parse(r#"format = { type = "json", delimiter = ";" }"#).expect_err("no options");
        assert!(err.contains("unknown field `delimiter`"), "{err}");
        let err = parse(r#"format = { delimiter = ";" }"#).expect_err("no type");
        assert!(err.contains("missing field `type`"), "{err}");
        let err = parse("format = 3").expect_err("a number");
        assert!(err.contains("a format name"), "{err}");
    }
}
