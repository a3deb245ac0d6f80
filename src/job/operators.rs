//! The `[[operators]]` entries of a job file and how each becomes an engine operator spec.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use sluice_connectors::{SourceSpec, load_table};
use sluice_engine::aggregate::{AggregateFunction, AggregateSpec};
use sluice_engine::duration::DurationMs;
use sluice_engine::error::{Error, Result};
use sluice_engine::expr::Expr;
use sluice_engine::frame::OverFrame;
use sluice_engine::operator::{
    JoinKind, LookupJoinSpec, OverAggregate, OverAggregateSpec, TableReload, TopNOrder,
    WindowAggregateSpec, WindowTopNSpec,
};
use sluice_engine::pipeline::OperatorSpec;
use sluice_engine::window::WindowSpec;

/// One `[[operators]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OperatorFile {
    /// `type = "filter"`, `predicate = "amount_cents > 1000 and country = 'DE'"`.
    Filter { predicate: String },
    /// `type = "project"`, `columns = ["ts", "card_id", { name = "eur", expr = "amount_cents / 100.0" }]`.
    Project { columns: Vec<ProjectColumn> },
    /// `type = "lookup_join"`: enrich rows from a bounded table,
    /// `table = { type = "csv", path = "data/merchants.csv" }`, `on = "merchant_id"`.
    LookupJoin {
        /// The table: any bounded source (`csv`, `jsonl`, `parquet`, or a generator with
        /// `events`).
        table: SourceSpec,
        /// Its name, which prefixes table columns whose names the stream already uses
        /// (default `table`).
        #[serde(default = "default_table_name")]
        name: String,
        /// Stream key column or columns.
        on: KeyColumns,
        /// The table's key columns, pairwise with `on` (default: the same names).
        #[serde(default)]
        table_on: Option<KeyColumns>,
        /// `inner` (default) or `left`.
        #[serde(default)]
        kind: JoinKind,
        /// Read the table again this often (`"5m"`), in the background; absent: never.
        #[serde(default)]
        reload: Option<DurationMs>,
    },
    /// `type = "window"`, keys, window and aggregates.
    Window {
        /// Key column or columns.
        key: KeyColumns,
        /// The window: `{ type = "tumbling", size = "1s" }`, hopping or session.
        window: WindowFile,
        /// The aggregates: `[{ fn = "count", as = "n" }, { fn = "sum", column = "x" }]`.
        aggregates: Vec<AggregateFile>,
    },
    /// `type = "over"`: every row out again with aggregates over the earlier rows of its
    /// key (SQL's `agg(x) OVER (PARTITION BY k ORDER BY ts <frame>)`).
    Over {
        /// `PARTITION BY` column or columns.
        partition_by: KeyColumns,
        /// The aggregates, each with its frame:
        /// `[{ fn = "count", as = "n_1h", range_preceding = "1h" }, { fn = "max", column = "x", rows_preceding = 9 }]`.
        aggregates: Vec<OverAggregateFile>,
    },
    /// `type = "assign_windows"`: each row once per window that holds it, with
    /// `window_start` and `window_end` added, at once (SQL's window function on its own).
    AssignWindows {
        /// `{ type = "hopping", size = "10s", slide = "5s" }`: tumbling, hopping or cumulate.
        window: WindowFile,
    },
    /// `type = "top_n"`: the first `limit` rows of each window by `order_by`, numbered in
    /// `rownum` (SQL's window Top-N): after a window aggregation, or, with `window`, of raw
    /// rows that it puts into windows itself.
    TopN {
        /// Columns that split a window's rows further (beside its start and end).
        #[serde(default)]
        partition_by: Option<KeyColumns>,
        /// `[{ column = "total", desc = true }]`: the order, first term first.
        order_by: Vec<TopNOrderFile>,
        /// Rows kept per window and partition (default: all, numbered).
        #[serde(default)]
        limit: Option<usize>,
        /// The row-number column's name (default: none).
        #[serde(default)]
        rownum: Option<String>,
        /// Rank raw rows in these windows (tumbling, hopping or cumulate), adding
        /// `window_start` and `window_end`; absent: the rows are a window aggregation's.
        #[serde(default)]
        window: Option<WindowFile>,
    },
}

/// One `order_by` term of a `top_n` operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopNOrderFile {
    /// The column ranked by.
    pub column: String,
    /// Largest first (default false).
    #[serde(default)]
    pub desc: bool,
    /// Nulls before every value (default: after them).
    #[serde(default)]
    pub nulls_first: bool,
}

/// One OVER aggregate: an aggregate and its frame, `range_preceding` (a duration: rows of the
/// last hour, ties included), `rows_preceding` (a count: the row and that many before it) or
/// `unbounded_preceding` (`"range"` or `"rows"`: every row of the key so far).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverAggregateFile {
    /// count, sum, min, max or avg.
    #[serde(rename = "fn")]
    pub function: AggregateFunction,
    /// The input column (omit for `count` of rows).
    #[serde(default)]
    pub column: Option<String>,
    /// The output column name (default `<fn>_<column>`, or `count`).
    #[serde(default, rename = "as")]
    pub alias: Option<String>,
    /// `RANGE BETWEEN <this> PRECEDING AND CURRENT ROW`.
    #[serde(default)]
    pub range_preceding: Option<DurationMs>,
    /// `ROWS BETWEEN <this> PRECEDING AND CURRENT ROW`.
    #[serde(default)]
    pub rows_preceding: Option<u64>,
    /// `<RANGE | ROWS> BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`.
    #[serde(default)]
    pub unbounded_preceding: Option<FrameUnits>,
}

/// How an unbounded frame counts its current row's peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameUnits {
    /// `RANGE`: every row at the current row's time is in its frame.
    Range,
    /// `ROWS`: rows at the same time in arrival order.
    Rows,
}

impl OverAggregateFile {
    /// The engine's aggregate and frame; `setting` names this entry in errors.
    fn to_spec(&self, setting: &str) -> Result<OverAggregate> {
        let frame = match (
            self.range_preceding,
            self.rows_preceding,
            self.unbounded_preceding,
        ) {
            (Some(range), None, None) => OverFrame::Range { preceding: range.0 },
            (None, Some(rows), None) => OverFrame::Rows { preceding: rows },
            (None, None, Some(FrameUnits::Range)) => OverFrame::RangeUnbounded,
            (None, None, Some(FrameUnits::Rows)) => OverFrame::RowsUnbounded,
            _ => {
                return Err(Error::config(
                    setting,
                    "give the frame as exactly one of `range_preceding` (a duration), \
                     `rows_preceding` (a number of rows) and `unbounded_preceding` \
                     (\"range\" or \"rows\")",
                ));
            }
        };
        Ok(OverAggregate {
            aggregate: AggregateSpec {
                function: self.function,
                column: self.column.clone(),
                alias: default_alias(self.function, self.column.as_deref(), self.alias.as_ref()),
            },
            frame,
        })
    }
}

/// An aggregate's output name: as given, else `<fn>_<column>`, or `<fn>` for rows.
fn default_alias(
    function: AggregateFunction,
    column: Option<&str>,
    alias: Option<&String>,
) -> String {
    alias.cloned().unwrap_or_else(|| match column {
        Some(c) => format!("{}_{c}", function.name()),
        None => function.name().to_string(),
    })
}

fn default_table_name() -> String {
    "table".into()
}

/// A key given as one column name or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum KeyColumns {
    /// `key = "card_id"`.
    One(String),
    /// `key = ["segment_id", "lane"]`.
    Many(Vec<String>),
}

/// A projected column: an expression, optionally named.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ProjectColumn {
    /// `"card_id"` (kept as is) or `"amount_cents * 2"` (named by its text).
    Expr(String),
    /// `{ name = "eur", expr = "amount_cents / 100.0" }`.
    Named {
        /// Output column name.
        name: String,
        /// The expression.
        expr: String,
    },
}

/// `window = { type = ..., ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowFile {
    /// Fixed windows: `size`, optional `offset`.
    Tumbling {
        size: DurationMs,
        #[serde(default)]
        offset: DurationMs,
    },
    /// Overlapping windows of `size` every `slide`, optional `offset`.
    Hopping {
        size: DurationMs,
        slide: DurationMs,
        #[serde(default)]
        offset: DurationMs,
    },
    /// Activity sessions separated by `gap`.
    Session { gap: DurationMs },
    /// Windows growing by `step` up to `size` from one start (Flink's `CUMULATE`), optional
    /// `offset`.
    Cumulate {
        step: DurationMs,
        size: DurationMs,
        #[serde(default)]
        offset: DurationMs,
    },
}

/// One aggregate: `{ fn = "sum", column = "amount_cents", as = "total" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateFile {
    /// count, sum, min, max, avg or count_distinct.
    #[serde(rename = "fn")]
    pub function: AggregateFunction,
    /// The input column (omit for `count` of rows).
    #[serde(default)]
    pub column: Option<String>,
    /// The output column name (default `<fn>_<column>`, or `count`).
    #[serde(default, rename = "as")]
    pub alias: Option<String>,
}

impl WindowFile {
    /// The engine's window.
    pub fn to_spec(&self) -> WindowSpec {
        match *self {
            WindowFile::Tumbling { size, offset } => WindowSpec::Tumbling {
                size: size.0,
                offset: offset.0,
            },
            WindowFile::Hopping {
                size,
                slide,
                offset,
            } => WindowSpec::Hopping {
                size: size.0,
                slide: slide.0,
                offset: offset.0,
            },
            WindowFile::Session { gap } => WindowSpec::Session { gap: gap.0 },
            WindowFile::Cumulate { step, size, offset } => WindowSpec::Cumulate {
                step: step.0,
                size: size.0,
                offset: offset.0,
            },
        }
    }
}

fn parse(text: &str, setting: &str) -> Result<Expr> {
    Expr::parse(text).map_err(|e| Error::config(setting, e.to_string()))
}

impl KeyColumns {
    pub fn names(&self) -> Vec<String> {
        match self {
            KeyColumns::One(k) => vec![k.clone()],
            KeyColumns::Many(ks) => ks.clone(),
        }
    }
}

impl OperatorFile {
    /// The engine's operator spec; `index` is this entry's position (for error keys), and
    /// `base_dir` the folder relative paths (a join's table) refer to.
    pub fn to_spec(&self, index: usize, base_dir: &Path) -> Result<OperatorSpec> {
        self.to_spec_at(&format!("operators[{index}]"), base_dir)
    }

    /// As [`OperatorFile::to_spec`], with the entry's job key given whole
    /// (`streams.logins.operators[0]`).
    pub fn to_spec_at(&self, setting: &str, base_dir: &Path) -> Result<OperatorSpec> {
        let setting = setting.to_string();
        Ok(match self {
            OperatorFile::LookupJoin {
                table,
                name,
                on,
                table_on,
                kind,
                reload,
            } => {
                let on = on.names();
                let key = format!("{setting}.table");
                let reload = match reload {
                    Some(every) if every.0 <= 0 => {
                        return Err(Error::config(
                            format!("{setting}.reload"),
                            "must be a positive duration",
                        ));
                    }
                    Some(every) => {
                        let (table, base_dir, key) =
                            (table.clone(), base_dir.to_path_buf(), key.clone());
                        Some(TableReload {
                            every: every.to_std(),
                            load: Arc::new(move || load_table(&table, &base_dir, &key)),
                        })
                    }
                    None => None,
                };
                OperatorSpec::LookupJoin(LookupJoinSpec {
                    name: name.clone(),
                    table: load_table(table, base_dir, &key)?,
                    reload,
                    table_on: table_on
                        .as_ref()
                        .map_or_else(|| on.clone(), KeyColumns::names),
                    on,
                    kind: *kind,
                })
            }
            OperatorFile::Filter { predicate } => {
                OperatorSpec::Filter(parse(predicate, &format!("{setting}.predicate"))?)
            }
            OperatorFile::Project { columns } => {
                let mut out = Vec::with_capacity(columns.len());
                for (i, column) in columns.iter().enumerate() {
                    let key = format!("{setting}.columns[{i}]");
                    out.push(match column {
                        ProjectColumn::Expr(text) => {
                            let expr = parse(text, &key)?;
                            let name = match &expr {
                                Expr::Column(name) => name.clone(),
                                _ => text.trim().to_string(),
                            };
                            (name, expr)
                        }
                        ProjectColumn::Named { name, expr } => (name.clone(), parse(expr, &key)?),
                    });
                }
                OperatorSpec::Project(out)
            }
            OperatorFile::Window {
                key,
                window,
                aggregates,
            } => {
                let keys = key.names();
                let aggregates = aggregates
                    .iter()
                    .map(|a| AggregateSpec {
                        function: a.function,
                        column: a.column.clone(),
                        alias: default_alias(a.function, a.column.as_deref(), a.alias.as_ref()),
                    })
                    .collect();
                OperatorSpec::Window(WindowAggregateSpec {
                    keys,
                    window: window.to_spec(),
                    aggregates,
                })
            }
            OperatorFile::AssignWindows { window } => OperatorSpec::AssignWindows(window.to_spec()),
            OperatorFile::TopN {
                partition_by,
                order_by,
                limit,
                rownum,
                window,
            } => OperatorSpec::WindowTopN(WindowTopNSpec {
                partition_by: partition_by
                    .as_ref()
                    .map(KeyColumns::names)
                    .unwrap_or_default(),
                order_by: order_by
                    .iter()
                    .map(|term| TopNOrder {
                        column: term.column.clone(),
                        descending: term.desc,
                        nulls_first: term.nulls_first,
                    })
                    .collect(),
                limit: *limit,
                rownum: rownum.clone(),
                window: window.as_ref().map(WindowFile::to_spec),
            }),
            OperatorFile::Over {
                partition_by,
                aggregates,
            } => OperatorSpec::Over(OverAggregateSpec {
                partition_by: partition_by.names(),
                aggregates: aggregates
                    .iter()
                    .enumerate()
                    .map(|(i, a)| a.to_spec(&format!("{setting}.aggregates[{i}]")))
                    .collect::<Result<_>>()?,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(entry: &str) -> std::result::Result<OverFrame, String> {
        let file: OverAggregateFile = toml::from_str(entry).map_err(|e| e.to_string())?;
        file.to_spec("operators[0].aggregates[0]")
            .map(|over| over.frame)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn assign_windows_takes_the_window_tables_forms() {
        let entry: OperatorFile =
            toml::from_str("type = \"assign_windows\"\nwindow = { type = \"hopping\", size = \"10s\", slide = \"5s\" }")
                .expect("an assign_windows entry");
        let spec = entry.to_spec(0, Path::new(".")).expect("a spec");
        assert!(matches!(
            spec,
            OperatorSpec::AssignWindows(WindowSpec::Hopping {
                size: 10_000,
                slide: 5_000,
                offset: 0
            })
        ));
    }

    #[test]
    fn an_over_entry_has_exactly_one_frame() {
        assert_eq!(
            frame("fn = \"count\"\nrange_preceding = \"1h\""),
            Ok(OverFrame::Range {
                preceding: 3_600_000
            })
        );
        assert_eq!(
            frame("fn = \"count\"\nunbounded_preceding = \"rows\""),
            Ok(OverFrame::RowsUnbounded)
        );
        assert_eq!(
            frame("fn = \"count\"\nunbounded_preceding = \"range\""),
            Ok(OverFrame::RangeUnbounded)
        );
        let both = frame("fn = \"count\"\nrows_preceding = 3\nunbounded_preceding = \"rows\"");
        assert!(
            both.as_ref().is_err_and(
                |e| e.starts_with("operators[0].aggregates[0]") && e.contains("exactly one of")
            ),
            "{both:?}"
        );
        let unknown = frame("fn = \"count\"\nunbounded_preceding = \"groups\"");
        assert!(
            unknown
                .as_ref()
                .is_err_and(|e| e.contains("range") && e.contains("rows")),
            "{unknown:?}"
        );
    }
}
