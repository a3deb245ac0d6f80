//! `WITH ('connector' = ...)` options into source and sink specs, with Flink's option names
//! where Flink has the option.
//!
//! | connector | reads | writes | options |
//! |---|---|---|---|
//! | `transactions`, `telemetry`, `logins` | generated events | | `number-of-rows`, `rows-per-second`, `seed`, `keys`, `merchants`, `skew`, `disorder`, `partitions`, `event-time-rate`, `start` |
//! | `filesystem` | `path` with `format` csv, json or parquet | one file (csv, json) or parquet | `path`, `format`, `batch-rows` (source), `csv.header` (sink) |
//! | `print` | | standard output | `format` (`table` or `json`) |
//! | `blackhole` | | nothing (counts rows) | |
//! | `kafka` | topics | a topic | Flink's names: see [`super::kafka`] |

use sluice_connectors::{
    ColumnSpec, ColumnType, FileSourceSpec, GeneratorKind, GeneratorSpec, SinkSpec, SourceSpec,
    StdoutFormat,
};
use sluice_engine::duration::DurationMs;
use sqlparser::ast::DataType;
use sqlparser::tokenizer::Location;

use crate::sql::create_table::{ColumnKind, CreateTable, TableOption};

/// A problem with one option (or the table's options when `at` is `None`).
#[derive(Debug)]
pub struct OptionError {
    /// Where the option's key was written.
    pub at: Option<Location>,
    /// What is wrong.
    pub message: String,
}

/// The options of one table, each taken at most once; what no one took is an error.
pub(super) struct Options<'a> {
    options: &'a [TableOption],
    taken: Vec<bool>,
}

impl<'a> Options<'a> {
    pub(super) fn new(options: &'a [TableOption]) -> Self {
        Options {
            options,
            taken: vec![false; options.len()],
        }
    }

    /// Every option whose key starts with `prefix` and that nothing took yet.
    pub(super) fn take_prefixed(&mut self, prefix: &str) -> Vec<&'a TableOption> {
        let mut found = Vec::new();
        for (index, option) in self.options.iter().enumerate() {
            if !self.taken[index] && option.key.starts_with(prefix) {
                self.taken[index] = true;
                found.push(option);
            }
        }
        found
    }

    pub(super) fn take(&mut self, key: &str) -> Option<&'a TableOption> {
        let index = self.options.iter().position(|o| o.key == key)?;
        self.taken[index] = true;
        Some(&self.options[index])
    }

    pub(super) fn required(
        &mut self,
        key: &str,
        connector: &str,
    ) -> Result<&'a TableOption, OptionError> {
        self.take(key).ok_or_else(|| OptionError {
            at: None,
            message: format!("the {connector} connector needs '{key}'"),
        })
    }

    /// `key` parsed by `parse`, naming the option when it does not parse.
    pub(super) fn parsed<T>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, OptionError> {
        let Some(option) = self.take(key) else {
            return Ok(None);
        };
        parse(&option.value).map(Some).map_err(|err| OptionError {
            at: Some(option.at),
            message: format!("option '{key}' = '{}': {err}", option.value),
        })
    }

    pub(super) fn number<T: std::str::FromStr>(
        &mut self,
        key: &str,
    ) -> Result<Option<T>, OptionError> {
        self.parsed(key, |text| {
            text.trim()
                .parse()
                .map_err(|_| "expected a number".to_string())
        })
    }

    /// Fails naming the first option nothing took, and the options `connector` knows.
    pub(super) fn finish(self, connector: &str, known: &[&str]) -> Result<(), OptionError> {
        match self.taken.iter().position(|taken| !taken) {
            None => Ok(()),
            Some(index) => Err(OptionError {
                at: Some(self.options[index].at),
                message: format!(
                    "unknown option '{}' for the {connector} connector; it takes {}",
                    self.options[index].key,
                    known
                        .iter()
                        .map(|k| format!("'{k}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
}

const GENERATOR_OPTIONS: [&str; 11] = [
    "connector",
    "number-of-rows",
    "rows-per-second",
    "seed",
    "keys",
    "merchants",
    "skew",
    "disorder",
    "partitions",
    "event-time-rate",
    "start",
];
const FILESYSTEM_OPTIONS: [&str; 5] = ["connector", "path", "format", "batch-rows", "csv.header"];

/// The connector a table names.
fn connector<'a>(options: &mut Options<'a>) -> Result<&'a str, OptionError> {
    Ok(options.required("connector", "table's")?.value.as_str())
}

/// The source `table` reads from.
pub fn source(table: &CreateTable) -> Result<SourceSpec, OptionError> {
    let mut options = Options::new(&table.options);
    let connector = connector(&mut options)?;
    let kind = match connector {
        "transactions" => Some(GeneratorKind::Transactions),
        "telemetry" => Some(GeneratorKind::Telemetry),
        "logins" => Some(GeneratorKind::Logins),
        _ => None,
    };
    if let Some(kind) = kind {
        let mut spec = GeneratorSpec::new(kind);
        spec.events = options.number("number-of-rows")?;
        spec.rate = options.number("rows-per-second")?;
        spec.seed = options.number("seed")?.unwrap_or(spec.seed);
        spec.keys = options.number("keys")?;
        spec.merchants = options.number("merchants")?.unwrap_or(spec.merchants);
        spec.skew = options.number("skew")?.unwrap_or(spec.skew);
        spec.disorder = options
            .parsed("disorder", DurationMs::parse)?
            .unwrap_or(spec.disorder);
        spec.partitions = options.number("partitions")?.unwrap_or(spec.partitions);
        spec.event_time_rate = options
            .number("event-time-rate")?
            .unwrap_or(spec.event_time_rate);
        if let Some(start) = options.take("start") {
            spec.start = start.value.clone();
        }
        options.finish(connector, &GENERATOR_OPTIONS)?;
        return Ok(SourceSpec::Generator(spec));
    }
    match connector {
        "filesystem" => {
            let path = options.required("path", connector)?.value.clone();
            let format = options.required("format", connector)?;
            let mut spec = FileSourceSpec::new(path);
            spec.batch_rows = options.number("batch-rows")?;
            spec.columns = declared_columns(table)?;
            let source = match format.value.as_str() {
                "csv" => SourceSpec::Csv(spec),
                "json" => SourceSpec::Jsonl(spec),
                "parquet" => SourceSpec::Parquet(spec),
                other => {
                    return Err(OptionError {
                        at: Some(format.at),
                        message: format!(
                            "format '{other}' cannot be read; use 'csv', 'json' or 'parquet'"
                        ),
                    });
                }
            };
            options.finish(connector, &FILESYSTEM_OPTIONS)?;
            Ok(source)
        }
        "kafka" => super::kafka::source(table, options),
        "print" | "blackhole" => Err(OptionError {
            at: table.options.first().map(|o| o.at),
            message: format!("the {connector} connector only writes; it cannot be read"),
        }),
        other => Err(unknown_connector(table, other)),
    }
}

/// The sink `table` writes to.
pub fn sink(table: &CreateTable) -> Result<SinkSpec, OptionError> {
    let mut options = Options::new(&table.options);
    let connector = connector(&mut options)?;
    let sink = match connector {
        "print" => {
            let format = match options.take("format").map(|o| (o.value.as_str(), o.at)) {
                None | Some(("table", _)) => StdoutFormat::Table,
                Some(("json", _)) => StdoutFormat::Jsonl,
                Some((other, at)) => {
                    return Err(OptionError {
                        at: Some(at),
                        message: format!("print format '{other}': use 'table' or 'json'"),
                    });
                }
            };
            options.finish(connector, &["connector", "format"])?;
            SinkSpec::Stdout { format }
        }
        "blackhole" => {
            options.finish(connector, &["connector"])?;
            SinkSpec::Discard
        }
        "kafka" => return super::kafka::sink(options),
        "filesystem" => {
            let path = options.required("path", connector)?.value.clone();
            let format = options.required("format", connector)?;
            let header = options
                .parsed("csv.header", |text| {
                    text.parse::<bool>()
                        .map_err(|_| "expected 'true' or 'false'".to_string())
                })?
                .unwrap_or(true);
            let sink = match format.value.as_str() {
                "csv" => SinkSpec::Csv { path, header },
                "json" => SinkSpec::Jsonl { path },
                "parquet" => SinkSpec::Parquet {
                    path,
                    rotate_rows: None,
                },
                other => {
                    return Err(OptionError {
                        at: Some(format.at),
                        message: format!(
                            "format '{other}' cannot be written; use 'csv', 'json' or 'parquet'"
                        ),
                    });
                }
            };
            options.finish(connector, &FILESYSTEM_OPTIONS)?;
            sink
        }
        kind if ["transactions", "telemetry", "logins"].contains(&kind) => {
            return Err(OptionError {
                at: table.options.first().map(|o| o.at),
                message: format!("the {kind} generator only reads; it cannot be written"),
            });
        }
        other => return Err(unknown_connector(table, other)),
    };
    Ok(sink)
}

fn unknown_connector(table: &CreateTable, connector: &str) -> OptionError {
    OptionError {
        at: table
            .options
            .iter()
            .find(|o| o.key == "connector")
            .map(|o| o.at),
        message: format!(
            "unknown connector '{connector}'; sluice has 'transactions', 'telemetry', 'logins', \
             'filesystem', 'kafka', 'print' and 'blackhole'"
        ),
    }
}

/// A file source's column types, from the table's physical columns.
pub(super) fn declared_columns(table: &CreateTable) -> Result<Vec<ColumnSpec>, OptionError> {
    table
        .columns
        .iter()
        .filter_map(|column| match &column.kind {
            ColumnKind::Physical { data_type, .. } => Some((column, data_type)),
            _ => None,
        })
        .map(|(column, data_type)| {
            let column_type = column_type(data_type).ok_or_else(|| OptionError {
                at: Some(column.name.span.start),
                message: format!(
                    "column `{}`: type {data_type} cannot be read from files; use BIGINT, INT, \
                     DOUBLE, STRING, BOOLEAN or TIMESTAMP",
                    column.name.value
                ),
            })?;
            Ok(ColumnSpec::new(&column.name.value, column_type))
        })
        .collect()
}

/// The file column type of SQL type `data_type`.
pub fn column_type(data_type: &DataType) -> Option<ColumnType> {
    let column_type = match data_type {
        DataType::BigInt(_) | DataType::Int64 => ColumnType::Int64,
        DataType::Int(_) | DataType::Integer(_) | DataType::SmallInt(_) | DataType::TinyInt(_) => {
            ColumnType::Int32
        }
        DataType::Double(_)
        | DataType::DoublePrecision
        | DataType::Float(_)
        | DataType::Real
        | DataType::Float64 => ColumnType::Float64,
        DataType::String(_)
        | DataType::Varchar(_)
        | DataType::Char(_)
        | DataType::Character(_)
        | DataType::CharVarying(_)
        | DataType::Text => ColumnType::String,
        DataType::Boolean | DataType::Bool => ColumnType::Bool,
        DataType::Timestamp(..) => ColumnType::Timestamp,
        DataType::Custom(name, _) if name.to_string().eq_ignore_ascii_case("timestamp_ltz") => {
            ColumnType::Timestamp
        }
        _ => return None,
    };
    Some(column_type)
}
