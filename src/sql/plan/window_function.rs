//! `FROM TABLE(TUMBLE | HOP | CUMULATE | SESSION (TABLE t, DESCRIPTOR(ts), INTERVAL ...))`: the window a
//! query's window function describes, with positional or named (`SIZE => ...`) arguments, and
//! its rows on their own when no aggregation or Top-N follows.

use sluice_engine::dialect::TableArgument;
use sluice_engine::duration::DurationMs;
use sqlparser::ast::{self, Expr, FunctionArg, FunctionArgExpr, FunctionArguments};

use sqlparser::ast::Select;

use super::Planner;
use super::interval;
use super::projection::project;
use super::query::Relation;
use super::scope::Scope;
use crate::job::{OperatorFile, WindowFile};
use crate::sql::SqlError;

/// Which window function a `FROM TABLE(...)` calls, and its argument names in order.
const WINDOW_FUNCTIONS: [(&str, &[&str]); 4] = [
    ("TUMBLE", &["DATA", "TIMECOL", "SIZE", "OFFSET"]),
    ("HOP", &["DATA", "TIMECOL", "SLIDE", "SIZE", "OFFSET"]),
    ("CUMULATE", &["DATA", "TIMECOL", "STEP", "SIZE", "OFFSET"]),
    ("SESSION", &["DATA", "TIMECOL", "GAP"]),
];

/// A window function's window and `PARTITION BY` keys.
#[derive(Debug, Clone)]
pub(super) struct TableWindow {
    pub(super) window: WindowFile,
    pub(super) partition_by: Vec<String>,
}

impl Planner<'_> {
    /// `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL ...))`: the relation, window and
    /// the table argument's name.
    pub(super) fn window_function(
        &self,
        call: &Expr,
    ) -> Result<(Relation, TableWindow, String), SqlError> {
        let Expr::Function(function) = call else {
            return Err(self.error(
                call,
                "expected a window function: TUMBLE, HOP, CUMULATE or SESSION",
            ));
        };
        let name = function.name.to_string().to_ascii_uppercase();
        let Some((_, parameters)) = WINDOW_FUNCTIONS.iter().find(|(n, _)| *n == name) else {
            return Err(self.error(
                call,
                format!(
                    "unknown window function `{}`; use TUMBLE, HOP, CUMULATE or SESSION",
                    function.name
                ),
            ));
        };
        let FunctionArguments::List(list) = &function.args else {
            return Err(self.error(call, "a window function takes arguments"));
        };
        let mut args: Vec<Option<&Expr>> = vec![None; parameters.len()];
        for (position, arg) in list.args.iter().enumerate() {
            let (slot, expr) = match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => (position, expr),
                FunctionArg::Named {
                    name,
                    arg: FunctionArgExpr::Expr(expr),
                    ..
                } => {
                    let slot = parameters
                        .iter()
                        .position(|p| p.eq_ignore_ascii_case(&name.value));
                    let Some(slot) = slot else {
                        return Err(self.error_at(
                            name.span,
                            format!(
                                "{name} is not an argument of {}; it takes {}",
                                function.name,
                                parameters.join(", ")
                            ),
                        ));
                    };
                    (slot, expr)
                }
                _ => return Err(self.error(call, "unsupported window function argument")),
            };
            match args.get_mut(slot) {
                Some(place @ None) => *place = Some(expr),
                Some(Some(_)) => {
                    return Err(self.error(expr, format!("{} is given twice", parameters[slot])));
                }
                None => {
                    return Err(self.error(
                        expr,
                        format!(
                            "{} takes {} arguments",
                            function.name,
                            parameters.join(", ")
                        ),
                    ));
                }
            }
        }
        let required = if parameters.last() == Some(&"OFFSET") {
            parameters.len() - 1
        } else {
            parameters.len()
        };
        if let Some(missing) = args[..required].iter().position(Option::is_none) {
            return Err(self.error(
                call,
                format!(
                    "{} needs its {} argument",
                    function.name, parameters[missing]
                ),
            ));
        }
        let arg = |name: &str| {
            parameters
                .iter()
                .position(|p| *p == name)
                .and_then(|slot| args[slot])
        };
        let data = arg("DATA").and_then(|expr| TableArgument::of(expr).map(|t| (expr, t)));
        let Some((data_expr, table)) = data else {
            return Err(self.error(
                call,
                "the first argument of a window function is TABLE <name>",
            ));
        };
        let table_name = table
            .name
            .iter()
            .map(|i| i.value.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let relation = self.relation(&ast::ObjectName::from(table.name.clone()))?;
        let time_column = match arg("TIMECOL") {
            Some(Expr::Function(descriptor))
                if descriptor
                    .name
                    .to_string()
                    .eq_ignore_ascii_case("DESCRIPTOR") =>
            {
                match &descriptor.args {
                    FunctionArguments::List(list) => match list.args.as_slice() {
                        [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(column)))] => {
                            column.value.clone()
                        }
                        _ => return Err(self.error(descriptor, "DESCRIPTOR names one column")),
                    },
                    _ => return Err(self.error(descriptor, "DESCRIPTOR names one column")),
                }
            }
            other => {
                let at = other.unwrap_or(call);
                return Err(self.error(at, "expected DESCRIPTOR(<time column>)"));
            }
        };
        if relation.event_time.as_deref() != Some(time_column.as_str()) {
            return Err(self.error(
                call,
                format!(
                    "DESCRIPTOR({time_column}) must name the event-time column of `{table_name}` \
                     (its WATERMARK FOR column{})",
                    relation
                        .event_time
                        .as_deref()
                        .map(|c| format!(", `{c}`"))
                        .unwrap_or_default()
                ),
            ));
        }
        let millis = |name: &str| -> Result<Option<DurationMs>, SqlError> {
            arg(name)
                .map(|expr| {
                    interval::millis(expr)
                        .map(DurationMs)
                        .map_err(|err| self.error(expr, err))
                })
                .transpose()
        };
        let offset = millis("OFFSET")?.unwrap_or(DurationMs(0));
        let window = match name.as_str() {
            "TUMBLE" => WindowFile::Tumbling {
                size: required_ms(millis("SIZE")?),
                offset,
            },
            "HOP" => WindowFile::Hopping {
                size: required_ms(millis("SIZE")?),
                slide: required_ms(millis("SLIDE")?),
                offset,
            },
            "CUMULATE" => WindowFile::Cumulate {
                step: required_ms(millis("STEP")?),
                size: required_ms(millis("SIZE")?),
                offset,
            },
            _ => WindowFile::Session {
                gap: required_ms(millis("GAP")?),
            },
        };
        let mut partition_by = Vec::new();
        for key in &table.partition_by {
            match key {
                Expr::Identifier(ident) => partition_by.push(ident.value.clone()),
                other => return Err(self.error(other, "PARTITION BY names columns")),
            }
        }
        if !partition_by.is_empty() && name != "SESSION" {
            return Err(self.error(data_expr, "PARTITION BY belongs to SESSION windows"));
        }
        Ok((
            relation,
            TableWindow {
                window,
                partition_by,
            },
            table_name,
        ))
    }
}

impl Planner<'_> {
    /// `SELECT ... FROM TABLE(HOP(...))` with no `GROUP BY`: each row once per window that
    /// holds it, with `window_start` and `window_end`, emitted at once (Flink's window table
    /// function on its own).
    pub(super) fn window_rows(
        &self,
        select: &Select,
        scope: &Scope,
        mut relation: Relation,
        window: TableWindow,
    ) -> Result<Relation, SqlError> {
        if relation.windowed {
            return Err(self.error(
                select,
                "a job has one window function; this query adds a second",
            ));
        }
        if matches!(window.window, WindowFile::Session { .. }) {
            return Err(self.error(
                select,
                "a SESSION window's rows need GROUP BY window_start, window_end (and the \
                 keys): a session exists only once its rows are aggregated",
            ));
        }
        let bounds = ["window_start", "window_end"];
        if let Some(clash) = bounds
            .iter()
            .find(|b| relation.columns.iter().any(|c| c == *b))
        {
            return Err(self.error(
                select,
                format!("the table already has a column `{clash}`, which the window function adds"),
            ));
        }
        relation.operators.push(OperatorFile::AssignWindows {
            window: window.window,
        });
        relation.columns.extend(bounds.map(String::from));
        relation.windowed = true;
        relation.event_time = None;
        let mut calls = Vec::new();
        let items = self.items(select, scope, &relation, Some(&mut calls), true)?;
        if let Some(call) = calls.first() {
            return Err(self.error_at(
                call.at,
                "an aggregate over a window function needs GROUP BY window_start, window_end \
                 (and keys)",
            ));
        }
        let items = items
            .into_iter()
            .map(|(name, expr, at)| Ok((name, self.lower(&expr, &relation.columns, at)?)))
            .collect::<Result<Vec<_>, SqlError>>()?;
        Ok(project(relation, items))
    }
}

/// A window function's required interval (its absence was refused earlier).
fn required_ms(value: Option<DurationMs>) -> DurationMs {
    value.unwrap_or(DurationMs(0))
}
