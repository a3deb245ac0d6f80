//! `FROM a JOIN b ON ...` (or `FROM a, b WHERE ...`) between two streams: a window join
//! (both sides a window function's rows; ON equal keys and equal `window_start` and
//! `window_end`) or an interval join (equal keys and each side's event time within bounds of
//! the other's), compiled to the job's `[streams]` and `[join]`.
//!
//! The joined rows' columns are the join operator's (`join_output_names`): `L.x` resolves to
//! what `x` of the side `L` became there, so names mean what they say in Flink.

use std::collections::HashMap;

use sluice_engine::duration::SignedDurationMs;
use sluice_engine::operator::{JoinKind, join_output_names};
use sqlparser::ast::{self, BinaryOperator, Expr, Select, SelectItem, SetExpr, TableFactor};

use super::Planner;
use super::interval;
use super::query::Relation;
use super::scope::{JoinedNames, Scope};
use super::window_function::TableWindow;
use crate::job::{JoinFile, JoinType, KeyColumns, OperatorFile, WindowFile};
use crate::sql::SqlError;

/// Two streams and how they meet: the job's `[streams.<name>]` and `[join]`.
#[derive(Debug, Clone)]
pub struct StreamJoinPlan {
    pub left: JoinSide,
    pub right: JoinSide,
    pub join: JoinFile,
}

/// One side of a stream join: the stream's name (its qualifier in the query), the table it
/// reads and the stateless operators before the join.
#[derive(Debug, Clone)]
pub struct JoinSide {
    pub name: String,
    pub table: String,
    pub operators: Vec<OperatorFile>,
}

/// A side while the join is planned.
struct Side {
    name: String,
    relation: Relation,
    window: Option<WindowFile>,
    time: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Which {
    Left,
    Right,
}

/// What a column reference in the join condition names.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Named {
    Column(Which, String),
    WindowStart(Which),
    WindowEnd(Which),
}

impl Planner<'_> {
    /// Joins the streams `left` and `right` where `condition` (the ON clause's conjuncts,
    /// or the WHERE clause's for `FROM a, b`) holds. Returns the joined relation, the names
    /// of both sides for the query's expressions, and the conjuncts that are neither keys,
    /// window bounds nor time bounds (to filter the joined rows).
    pub(super) fn stream_join<'e>(
        &self,
        left: &TableFactor,
        right: &TableFactor,
        kind: JoinKind,
        condition: Vec<&'e Expr>,
        at: &impl ast::Spanned,
    ) -> Result<(Relation, Vec<JoinedNames>, Vec<&'e Expr>), SqlError> {
        let left = self.join_side(left)?;
        let right = self.join_side(right)?;
        if left.name == right.name {
            return Err(self.error(
                at,
                format!(
                    "both sides of the join are called `{}`: give one an alias",
                    left.name
                ),
            ));
        }
        let windowed = match (&left.window, &right.window) {
            (Some(l), Some(r)) if l.to_spec() == r.to_spec() => true,
            (Some(_), Some(_)) => {
                return Err(self.error(
                    at,
                    "a window join's sides use the same window function with the same arguments",
                ));
            }
            (None, None) => false,
            _ => {
                return Err(self.error(
                    at,
                    "a window join reads a window function on both sides; an interval join on neither",
                ));
            }
        };
        let sides = [&left, &right];
        let mut keys: Vec<(String, String)> = Vec::new();
        let mut bounds = (false, false);
        let (mut lower, mut upper): (Option<i64>, Option<i64>) = (None, None);
        let mut rest = Vec::new();
        for conjunct in condition {
            if let Expr::BinaryOp {
                left: a,
                op: BinaryOperator::Eq,
                right: b,
            } = conjunct
                && let (Some(a), Some(b)) = (self.named(a, sides), self.named(b, sides))
            {
                match (a, b) {
                    (Named::Column(x, a), Named::Column(y, b)) if x != y => {
                        keys.push(if x == Which::Left { (a, b) } else { (b, a) });
                        continue;
                    }
                    (Named::WindowStart(x), Named::WindowStart(y)) if x != y => {
                        bounds.0 = true;
                        continue;
                    }
                    (Named::WindowEnd(x), Named::WindowEnd(y)) if x != y => {
                        bounds.1 = true;
                        continue;
                    }
                    _ => {}
                }
            }
            if !windowed {
                let found = self.time_bounds(conjunct, sides)?;
                if !found.is_empty() {
                    for (is_lower, value) in found {
                        let slot = if is_lower { &mut lower } else { &mut upper };
                        if slot.is_some() {
                            return Err(self.error(
                                conjunct,
                                "the join bounds this side of the time difference twice",
                            ));
                        }
                        *slot = Some(value);
                    }
                    continue;
                }
            }
            rest.push(conjunct);
        }
        if keys.is_empty() {
            return Err(self.error(
                at,
                format!(
                    "a stream join needs equal keys: ON {}.<column> = {}.<column>",
                    left.name, right.name
                ),
            ));
        }
        let (window, lower, upper) = if windowed {
            if bounds != (true, true) {
                return Err(self.error(
                    at,
                    format!(
                        "a window join matches rows of the same window: add {l}.window_start = \
                         {r}.window_start AND {l}.window_end = {r}.window_end",
                        l = left.name,
                        r = right.name
                    ),
                ));
            }
            (left.window.clone(), None, None)
        } else {
            let (Some(lower), Some(upper)) = (lower, upper) else {
                return Err(self.error(
                    at,
                    format!(
                        "an interval join bounds the event times both ways: {l}.{lt} BETWEEN \
                         {r}.{rt} - INTERVAL '..' SECOND AND {r}.{rt} + INTERVAL '..' SECOND \
                         (joins without time bounds are not supported yet)",
                        l = left.name,
                        lt = left.time,
                        r = right.name,
                        rt = right.time
                    ),
                ));
            };
            (
                None,
                Some(SignedDurationMs(lower)),
                Some(SignedDurationMs(upper)),
            )
        };
        if kind != JoinKind::Inner && !windowed {
            return Err(self.error(
                at,
                "an interval join is INNER (LEFT, RIGHT and FULL joins are window joins)",
            ));
        }
        if kind != JoinKind::Inner && !rest.is_empty() {
            return Err(self.error(
                rest[0],
                "an outer window join's ON holds keys and window bounds only; filter in WHERE",
            ));
        }
        let (left_keys, right_keys): (Vec<String>, Vec<String>) = keys.into_iter().unzip();
        let non_keys = |side: &Side, keys: &[String]| -> Vec<String> {
            side.relation
                .columns
                .iter()
                .filter(|c| !keys.contains(c))
                .cloned()
                .collect()
        };
        let (left_cols, right_cols) = (non_keys(&left, &left_keys), non_keys(&right, &right_keys));
        let (left_out, right_out) = join_output_names(
            (&left.name, &left.time, &left_cols),
            (&right.name, &right.time, &right_cols),
            &left_keys,
            windowed,
        );
        let bound_names = || {
            windowed.then(|| ["window_start", "window_end"].map(|b| (b.to_string(), b.to_string())))
        };
        let mut left_names: HashMap<String, String> =
            left_keys.iter().map(|k| (k.clone(), k.clone())).collect();
        left_names.extend(left_cols.iter().cloned().zip(left_out.iter().cloned()));
        left_names.extend(bound_names().into_iter().flatten());
        let mut right_names: HashMap<String, String> = right_keys
            .iter()
            .cloned()
            .zip(left_keys.iter().cloned())
            .collect();
        right_names.extend(right_cols.iter().cloned().zip(right_out.iter().cloned()));
        right_names.extend(bound_names().into_iter().flatten());
        let mut columns = left_keys.clone();
        if windowed {
            columns.extend(["window_start".to_string(), "window_end".to_string()]);
        }
        columns.extend(left_out);
        columns.extend(right_out);
        columns.push(left.time.clone());
        let join = JoinFile {
            join_type: if windowed {
                JoinType::Window
            } else {
                JoinType::Interval
            },
            left: left.name.clone(),
            right: right.name.clone(),
            on: KeyColumns::Many(left_keys),
            right_on: Some(KeyColumns::Many(right_keys)),
            kind,
            window,
            lower,
            upper,
        };
        let names = vec![
            JoinedNames {
                qualifier: left.name.clone(),
                columns: left_names,
            },
            JoinedNames {
                qualifier: right.name.clone(),
                columns: right_names,
            },
        ];
        let relation = Relation {
            table: left.relation.table.clone(),
            operators: Vec::new(),
            columns,
            event_time: Some(left.time.clone()),
            windowed: false,
            join: Some(Box::new(StreamJoinPlan {
                left: JoinSide {
                    name: left.name,
                    table: left.relation.table,
                    operators: left.relation.operators,
                },
                right: JoinSide {
                    name: right.name,
                    table: right.relation.table,
                    operators: right.relation.operators,
                },
                join,
            })),
        };
        Ok((relation, names, rest))
    }

    /// A side: a table or view (interval joins), or a window function's rows, written
    /// `TABLE(TUMBLE(...)) AS L` or `(SELECT * FROM TABLE(TUMBLE(...)) [WHERE ...]) AS L`.
    fn join_side(&self, factor: &TableFactor) -> Result<Side, SqlError> {
        let stateless = "a side of a stream join reads a table, a view of filters and \
                         projections, or a window function's rows";
        let (name, relation, window) = match factor {
            TableFactor::Table {
                name,
                alias,
                args: None,
                version: None,
                ..
            } => {
                let qualifier = alias
                    .as_ref()
                    .map_or_else(|| super::query::object_name(name), |a| a.name.value.clone());
                (qualifier, self.relation(name)?, None)
            }
            TableFactor::TableFunction { expr, alias } => {
                let (relation, window, table) = self.window_function(expr)?;
                let qualifier = alias.as_ref().map_or(table, |a| a.name.value.clone());
                (qualifier, relation, Some(window))
            }
            TableFactor::Derived {
                subquery,
                alias: Some(alias),
                lateral: false,
                ..
            } => match window_select(subquery) {
                Some(select) => {
                    let (relation, window) = self.window_side(select)?;
                    (alias.name.value.clone(), relation, Some(window))
                }
                None => (alias.name.value.clone(), self.query(subquery)?, None),
            },
            TableFactor::Derived { alias: None, .. } => {
                return Err(self.error(factor, "a subquery joined needs an alias: (...) AS s"));
            }
            other => return Err(self.error(other, stateless)),
        };
        let stateful = relation
            .operators
            .iter()
            .any(|op| matches!(op, OperatorFile::Window { .. } | OperatorFile::Over { .. }));
        if relation.windowed || stateful || relation.join.is_some() {
            return Err(self.error(factor, stateless));
        }
        let window = match window {
            Some(TableWindow {
                window,
                partition_by,
            }) => {
                if !partition_by.is_empty()
                    || !matches!(
                        window,
                        WindowFile::Tumbling { .. } | WindowFile::Hopping { .. }
                    )
                {
                    return Err(self.error(factor, "a window join's windows are TUMBLE or HOP"));
                }
                Some(window)
            }
            None => None,
        };
        let Some(time) = relation.event_time.clone() else {
            return Err(self.error(
                factor,
                "a side of a stream join keeps its table's event-time (WATERMARK) column",
            ));
        };
        Ok(Side {
            name,
            relation,
            window,
            time,
        })
    }

    /// `SELECT * FROM TABLE(TUMBLE(...)) [AS a] [WHERE ...]`: the rows a window join's side
    /// gives, with its window.
    fn window_side(&self, select: &Select) -> Result<(Relation, TableWindow), SqlError> {
        let [from] = select.from.as_slice() else {
            return Err(self.error(select, "a window join's side reads one window function"));
        };
        let TableFactor::TableFunction { expr, alias } = &from.relation else {
            return Err(self.error(select, "a window join's side reads one window function"));
        };
        if !from.joins.is_empty()
            || select.having.is_some()
            || !matches!(&select.group_by, ast::GroupByExpr::Expressions(e, _) if e.is_empty())
            || !matches!(select.projection.as_slice(), [SelectItem::Wildcard(_)])
        {
            return Err(self.error(
                select,
                "a window join's side is SELECT * FROM TABLE(<window function>) [WHERE ...]",
            ));
        }
        let (mut relation, window, table) = self.window_function(expr)?;
        if let Some(predicate) = &select.selection {
            let scope = Scope {
                qualifier: Some(alias.as_ref().map_or(table, |a| a.name.value.clone())),
                joined: Vec::new(),
                windows: HashMap::new(),
            };
            let rewritten = scope.rewrite(self, predicate, None)?;
            let predicate =
                self.lower(&rewritten, &relation.columns, ast::Spanned::span(predicate))?;
            relation.operators.push(OperatorFile::Filter { predicate });
        }
        Ok((relation, window))
    }

    /// What `expr` names among the two sides' columns: `S.col`, or a column only one side
    /// has; `window_start` / `window_end` of a window side.
    fn named(&self, expr: &Expr, sides: [&Side; 2]) -> Option<Named> {
        let which = |i: usize| if i == 0 { Which::Left } else { Which::Right };
        let of = |i: usize, column: &str| -> Option<Named> {
            let side = sides[i];
            match column {
                "window_start" if side.window.is_some() => Some(Named::WindowStart(which(i))),
                "window_end" if side.window.is_some() => Some(Named::WindowEnd(which(i))),
                c if side.relation.columns.iter().any(|x| x == c) => {
                    Some(Named::Column(which(i), c.to_string()))
                }
                _ => None,
            }
        };
        match expr {
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [q, c] => (0..2)
                    .find(|&i| sides[i].name == q.value)
                    .and_then(|i| of(i, &c.value)),
                _ => None,
            },
            Expr::Identifier(c) => match (of(0, &c.value), of(1, &c.value)) {
                (Some(n), None) | (None, Some(n)) => Some(n),
                _ => None,
            },
            Expr::Nested(inner) => self.named(inner, sides),
            _ => None,
        }
    }

    /// The interval-join bounds `conjunct` states, as `(is_lower, ms)` for `left.ts BETWEEN
    /// right.ts - lower AND right.ts + upper`; empty when it is not a condition on the two
    /// event times.
    fn time_bounds(
        &self,
        conjunct: &Expr,
        sides: [&Side; 2],
    ) -> Result<Vec<(bool, i64)>, SqlError> {
        match conjunct {
            Expr::Between {
                expr,
                negated: false,
                low,
                high,
            } => {
                let (Some(a), Some(l), Some(h)) = (
                    self.time_term(expr, sides)?,
                    self.time_term(low, sides)?,
                    self.time_term(high, sides)?,
                ) else {
                    return Ok(Vec::new());
                };
                if a.0 == l.0 || a.0 == h.0 {
                    return Ok(Vec::new());
                }
                Ok(vec![
                    difference(a, BinaryOperator::GtEq, l),
                    difference(a, BinaryOperator::LtEq, h),
                ])
            }
            Expr::BinaryOp { left, op, right }
                if matches!(
                    op,
                    BinaryOperator::Gt
                        | BinaryOperator::GtEq
                        | BinaryOperator::Lt
                        | BinaryOperator::LtEq
                ) =>
            {
                let (Some(a), Some(b)) =
                    (self.time_term(left, sides)?, self.time_term(right, sides)?)
                else {
                    return Ok(Vec::new());
                };
                if a.0 == b.0 {
                    return Ok(Vec::new());
                }
                Ok(vec![difference(a, op.clone(), b)])
            }
            _ => Ok(Vec::new()),
        }
    }

    /// `S.ts`, `S.ts + INTERVAL ..` or `S.ts - INTERVAL ..` over a side's event-time column:
    /// the side and the offset in ms.
    fn time_term(&self, expr: &Expr, sides: [&Side; 2]) -> Result<Option<(Which, i64)>, SqlError> {
        let time = |expr: &Expr| match self.named(expr, sides) {
            Some(Named::Column(w, c)) => {
                let i = usize::from(w == Which::Right);
                (sides[i].time == c).then_some(w)
            }
            _ => None,
        };
        Ok(match expr {
            Expr::BinaryOp {
                left,
                op: op @ (BinaryOperator::Plus | BinaryOperator::Minus),
                right,
            } => match time(left) {
                Some(w) => {
                    let ms =
                        interval::millis(right).map_err(|err| self.error(right.as_ref(), err))?;
                    Some((w, if *op == BinaryOperator::Plus { ms } else { -ms }))
                }
                None => None,
            },
            Expr::Nested(inner) => self.time_term(inner, sides)?,
            other => time(other).map(|w| (w, 0)),
        })
    }
}

/// `a op b` over two sides' times as a bound on `left.ts - right.ts`: `(true, lower)` for
/// `left.ts >= right.ts - lower`, `(false, upper)` for `left.ts <= right.ts + upper` (times
/// are whole milliseconds, so a strict bound is one millisecond tighter).
fn difference(a: (Which, i64), op: BinaryOperator, b: (Which, i64)) -> (bool, i64) {
    // a.t + a.off OP b.t + b.off, written as left.t - right.t OP' c.
    let (op, c) = if a.0 == Which::Left {
        (op, b.1 - a.1)
    } else {
        let flipped = match op {
            BinaryOperator::Gt => BinaryOperator::Lt,
            BinaryOperator::GtEq => BinaryOperator::LtEq,
            BinaryOperator::Lt => BinaryOperator::Gt,
            _ => BinaryOperator::GtEq,
        };
        (flipped, a.1 - b.1)
    };
    match op {
        BinaryOperator::GtEq => (true, -c),
        BinaryOperator::Gt => (true, -c - 1),
        BinaryOperator::LtEq => (false, c),
        _ => (false, c - 1),
    }
}

/// The subquery's select when it is a window function's rows (`SELECT ... FROM TABLE(...)`).
fn window_select(query: &ast::Query) -> Option<&Select> {
    match query.body.as_ref() {
        SetExpr::Select(select)
            if matches!(
                select.from.as_slice(),
                [from] if matches!(from.relation, TableFactor::TableFunction { .. })
            ) =>
        {
            Some(select)
        }
        _ => None,
    }
}
