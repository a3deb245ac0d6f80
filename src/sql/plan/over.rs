//! `agg(x) OVER (PARTITION BY k ORDER BY ts <frame>)` into the OVER operator: the window
//! specification (inline or from the `WINDOW` clause) read into an [`OverWindow`], and a
//! query's OVER aggregates planned as one operator before its projection.

use std::collections::HashMap;

use sluice_engine::frame::OverFrame;
use sqlparser::ast::{
    self, Expr, OrderBySort, Select, Spanned, Value, WindowFrameBound, WindowFrameUnits, WindowType,
};
use sqlparser::tokenizer::Span;

use super::Planner;
use super::interval;
use super::projection::project;
use super::query::{Relation, aggregate_names};
use super::scope::{AggregateCall, Scope};
use crate::job::{FrameUnits, KeyColumns, OperatorFile, OverAggregateFile};
use crate::sql::SqlError;

/// What an OVER clause says, once read.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OverWindow {
    pub(super) partition_by: Vec<String>,
    pub(super) order_by: String,
    pub(super) frame: OverFrame,
}

impl Planner<'_> {
    /// Reads `over` (an inline specification or a name from the `WINDOW` clause).
    pub(super) fn over_window(
        &self,
        scope: &Scope,
        over: &WindowType,
    ) -> Result<OverWindow, SqlError> {
        let spec = match over {
            WindowType::WindowSpec(spec) => spec,
            WindowType::NamedWindow(name) => scope.windows.get(&name.value).ok_or_else(|| {
                self.error_at(
                    name.span,
                    format!("no window `{name}`: define it with WINDOW {name} AS (...)"),
                )
            })?,
        };
        if let Some(base) = &spec.window_name {
            return Err(self.error_at(
                base.span,
                "a window built on another window is not supported",
            ));
        }
        let mut partition_by = Vec::with_capacity(spec.partition_by.len());
        for expr in &spec.partition_by {
            match scope.rewrite(self, expr, None)? {
                Expr::Identifier(ident) => partition_by.push(ident.value),
                _ => return Err(self.error(expr, "PARTITION BY names columns")),
            }
        }
        let order_by = match spec.order_by.as_slice() {
            [order] if matches!(order.options.sort, None | Some(OrderBySort::Asc)) => {
                match scope.rewrite(self, &order.expr, None)? {
                    Expr::Identifier(ident) => ident.value,
                    _ => return Err(self.error(order, "ORDER BY names the event-time column")),
                }
            }
            _ => {
                return Err(self.error_at(
                    over_span(over),
                    "an OVER window orders by the event-time column, ascending \
                     (ORDER BY ts)",
                ));
            }
        };
        let Some(frame) = &spec.window_frame else {
            // SQL's default frame with an ORDER BY: every row up to the current row's peers.
            return Ok(OverWindow {
                partition_by,
                order_by,
                frame: OverFrame::RangeUnbounded,
            });
        };
        if !matches!(frame.end_bound, None | Some(WindowFrameBound::CurrentRow)) {
            return Err(self.error_at(
                over_span(over),
                "an OVER frame ends at the CURRENT ROW in a streaming query (FOLLOWING rows \
                 are not known when the row is emitted)",
            ));
        }
        let frame = match (&frame.units, &frame.start_bound) {
            (WindowFrameUnits::Groups, _) => {
                return Err(self.error_at(over_span(over), "GROUPS frames are not supported"));
            }
            (WindowFrameUnits::Range, WindowFrameBound::Preceding(None)) => {
                OverFrame::RangeUnbounded
            }
            (WindowFrameUnits::Rows, WindowFrameBound::Preceding(None)) => OverFrame::RowsUnbounded,
            (_, WindowFrameBound::Following(_)) => {
                return Err(self.error_at(
                    over_span(over),
                    "an OVER frame starts before or at the current row",
                ));
            }
            (WindowFrameUnits::Range, WindowFrameBound::CurrentRow) => {
                OverFrame::Range { preceding: 0 }
            }
            (WindowFrameUnits::Rows, WindowFrameBound::CurrentRow) => {
                OverFrame::Rows { preceding: 0 }
            }
            (WindowFrameUnits::Range, WindowFrameBound::Preceding(Some(length))) => {
                let preceding = interval::millis(length)
                    .map_err(|message| self.error(length.as_ref(), message))?;
                OverFrame::Range { preceding }
            }
            (WindowFrameUnits::Rows, WindowFrameBound::Preceding(Some(count))) => {
                let rows = match count.as_ref() {
                    Expr::Value(v) => match &v.value {
                        Value::Number(text, _) => text.parse::<u64>().ok(),
                        _ => None,
                    },
                    _ => None,
                };
                let Some(preceding) = rows else {
                    return Err(self.error(
                        count.as_ref(),
                        "ROWS n PRECEDING takes a whole number of rows",
                    ));
                };
                OverFrame::Rows { preceding }
            }
        };
        frame
            .validate("frame")
            .map_err(|e| self.error_at(over_span(over), e.to_string()))?;
        Ok(OverWindow {
            partition_by,
            order_by,
            frame,
        })
    }

    /// `SELECT ..., agg(x) OVER w ... FROM relation`: one OVER operator computing every
    /// call (all with the same PARTITION BY), then the select list.
    pub(super) fn over_aggregate(
        &self,
        select: &Select,
        mut relation: Relation,
        calls: &[AggregateCall],
        items: Vec<(String, Expr, Span)>,
    ) -> Result<Relation, SqlError> {
        let windows: Vec<(&OverWindow, Span)> = calls
            .iter()
            .map(|call| match &call.over {
                Some(window) => Ok((window, call.at)),
                None => Err(self.error_at(
                    call.at,
                    "an aggregate without OVER needs a window: FROM TABLE(TUMBLE(...)) with \
                     GROUP BY (OVER aggregates and window aggregates do not mix in one query)",
                )),
            })
            .collect::<Result<_, _>>()?;
        let (first, _) = windows[0];
        if relation.windowed {
            return Err(self.error(
                select,
                "a job has one window or OVER aggregation; this query adds a second",
            ));
        }
        for &(window, at) in &windows {
            if window.partition_by != first.partition_by {
                return Err(self.error_at(
                    at,
                    format!(
                        "the OVER aggregates of one query partition by the same columns: \
                         this one by [{}], the first by [{}]",
                        window.partition_by.join(", "),
                        first.partition_by.join(", ")
                    ),
                ));
            }
            if relation.event_time.as_ref() != Some(&window.order_by) {
                return Err(self.error_at(
                    at,
                    format!(
                        "an OVER window orders by the event-time column{}; this one by `{}`",
                        relation
                            .event_time
                            .as_ref()
                            .map_or_else(String::new, |ts| format!(" `{ts}`")),
                        window.order_by
                    ),
                ));
            }
            if let Some(missing) = window
                .partition_by
                .iter()
                .find(|c| !relation.columns.contains(c))
            {
                return Err(self.error_at(
                    at,
                    format!(
                        "unknown column `{missing}` in PARTITION BY; available: {}",
                        super::visible(&relation.columns).join(", ")
                    ),
                ));
            }
        }
        if first.partition_by.is_empty() {
            return Err(self.error_at(
                windows[0].1,
                "an OVER window needs PARTITION BY (one window over all rows is not supported yet)",
            ));
        }
        let partition_by = first.partition_by.clone();
        // An aggregate selected as it is takes the item's name, unless a column has it.
        let names = aggregate_names(&items, calls.len(), |name| relation.columns.contains(name));
        let renamed: HashMap<String, String> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (format!("__agg{i}"), name.clone()))
            .collect();
        let inputs = self.aggregate_inputs(&mut relation, calls)?;
        relation.operators.push(OperatorFile::Over {
            partition_by: KeyColumns::Many(partition_by),
            aggregates: calls
                .iter()
                .zip(inputs)
                .zip(&names)
                .map(|((call, column), name)| {
                    let frame = call.over.as_ref().map(|w| w.frame);
                    OverAggregateFile {
                        function: call.function,
                        column,
                        alias: Some(name.clone()),
                        range_preceding: match frame {
                            Some(OverFrame::Range { preceding }) => {
                                Some(sluice_engine::duration::DurationMs(preceding))
                            }
                            _ => None,
                        },
                        rows_preceding: match frame {
                            Some(OverFrame::Rows { preceding }) => Some(preceding),
                            _ => None,
                        },
                        unbounded_preceding: match frame {
                            Some(OverFrame::RangeUnbounded) => Some(FrameUnits::Range),
                            Some(OverFrame::RowsUnbounded) => Some(FrameUnits::Rows),
                            _ => None,
                        },
                    }
                })
                .collect(),
        });
        relation.columns.extend(names);
        relation.windowed = true;
        let items = items
            .into_iter()
            .map(|(name, expr, at)| {
                Ok((
                    name,
                    self.lower_renamed(&expr, &relation.columns, at, &renamed)?,
                ))
            })
            .collect::<Result<Vec<_>, SqlError>>()?;
        Ok(project(relation, items))
    }
}

/// Where an OVER clause was written (a named reference, or the specification's parts).
fn over_span(over: &WindowType) -> Span {
    match over {
        WindowType::NamedWindow(name) => name.span,
        WindowType::WindowSpec(spec) => Span::union_iter(
            spec.partition_by
                .iter()
                .map(Spanned::span)
                .chain(spec.order_by.iter().map(Spanned::span)),
        ),
    }
}

/// The `WINDOW` clause's definitions by name; a definition naming another is resolved.
pub(super) fn named_windows(
    planner: &Planner<'_>,
    select: &Select,
) -> Result<HashMap<String, ast::WindowSpec>, SqlError> {
    let mut windows = HashMap::new();
    for ast::NamedWindowDefinition(name, expr) in &select.named_window {
        let spec = match expr {
            ast::NamedWindowExpr::WindowSpec(spec) => spec.clone(),
            ast::NamedWindowExpr::NamedWindow(other) => {
                windows.get(&other.value).cloned().ok_or_else(|| {
                    planner.error_at(other.span, format!("no window `{other}` before `{name}`"))
                })?
            }
        };
        windows.insert(name.value.clone(), spec);
    }
    Ok(windows)
}
