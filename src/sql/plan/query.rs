//! `SELECT` into the job's operator chain: the table's own projection, `WHERE`, one window
//! aggregation from a window function (`TUMBLE`, `HOP`, `SESSION`), `HAVING`, and the final
//! projection that names the output columns.

use std::collections::HashMap;

use sluice_engine::operator::JoinKind;
use sqlparser::ast::{
    self, Expr, GroupByExpr, Ident, JoinConstraint, JoinOperator, ObjectNamePart, Query, Select,
    SelectItem, SetExpr, Spanned, TableFactor,
};
use sqlparser::tokenizer::Span;

use super::Planner;
use super::over::named_windows;
use super::projection::project;
use super::scope::{AggregateCall, JoinedNames, Scope, conjuncts};
use super::stream_join::StreamJoinPlan;
use super::top_n;
use super::window_function::TableWindow;
use crate::job::{AggregateFile, KeyColumns, OperatorFile};
use crate::sql::SqlError;

/// What a query (or a table, or a view) gives the operators after it.
#[derive(Debug, Clone)]
pub struct Relation {
    /// The table the job reads, by name.
    pub table: String,
    /// The operators from the table's source to this relation.
    pub operators: Vec<OperatorFile>,
    /// The relation's columns, in order.
    pub columns: Vec<String>,
    /// The event-time column, while it is one of the columns.
    pub event_time: Option<String>,
    /// Whether a window aggregation is among the operators (a job has one).
    pub windowed: bool,
    /// The two streams this relation joins, when it does: `operators` then run on the
    /// joined rows and `table` is the left stream's.
    pub join: Option<Box<StreamJoinPlan>>,
}

impl Planner<'_> {
    /// Plans `query`.
    pub(super) fn query(&self, query: &Query) -> Result<Relation, SqlError> {
        let unsupported = |what: &str| {
            self.error(
                query,
                format!("{what} is not supported in a streaming query yet"),
            )
        };
        if query.with.is_some() {
            return Err(unsupported("WITH"));
        }
        if query.order_by.is_some() {
            return Err(unsupported("ORDER BY"));
        }
        if query.limit_clause.is_some() || query.fetch.is_some() {
            return Err(unsupported("LIMIT"));
        }
        match query.body.as_ref() {
            SetExpr::Select(select) => self.select(select),
            SetExpr::Query(inner) => self.query(inner),
            other => Err(self.error(
                other,
                "only SELECT queries are supported (no UNION, VALUES, ...)",
            )),
        }
    }

    fn select(&self, select: &Select) -> Result<Relation, SqlError> {
        let at = |what: &str| self.error(select, format!("{what} is not supported yet"));
        if select.distinct.is_some() {
            return Err(at("SELECT DISTINCT"));
        }
        if select.top.is_some() || select.into.is_some() || !select.lateral_views.is_empty() {
            return Err(at("this SELECT form"));
        }
        if select.qualify.is_some() {
            return Err(at("QUALIFY"));
        }
        let (mut relation, qualifier, window, joined, residual) = match select.from.as_slice() {
            // `FROM a, b WHERE ...`: an interval join, its condition in WHERE.
            [a, b] if a.joins.is_empty() && b.joins.is_empty() => {
                let condition = select.selection.as_ref().map(conjuncts).unwrap_or_default();
                let (relation, names, rest) =
                    self.stream_join(&a.relation, &b.relation, JoinKind::Inner, condition, select)?;
                (relation, None, None, names, rest)
            }
            [from] => self.from(from)?,
            _ => {
                return Err(self.error(
                    select,
                    "a query reads one table, or joins two (FROM a JOIN b ON ... or FROM a, b WHERE ...)",
                ));
            }
        };
        let scope = Scope {
            qualifier,
            joined,
            windows: named_windows(self, select)?,
        };
        // Conditions after a join, then the WHERE of a query that reads one table.
        let comma_join = select.from.len() == 2;
        let filters: Vec<&Expr> = if comma_join {
            residual
        } else {
            residual
                .into_iter()
                .chain(select.selection.as_ref())
                .collect()
        };
        for predicate in filters {
            for conjunct in conjuncts(predicate) {
                top_n::fold_limit(&mut relation, conjunct);
            }
            let predicate = self.lower(
                &scope.rewrite(self, predicate, None)?,
                &relation.columns,
                predicate.span(),
            )?;
            relation.operators.push(OperatorFile::Filter { predicate });
        }
        let group_by = match &select.group_by {
            GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs.as_slice(),
            GroupByExpr::Expressions(..) | GroupByExpr::All(_) => {
                return Err(at("GROUP BY ALL, ROLLUP, CUBE and GROUPING SETS"));
            }
        };
        if let Some((index, call)) = top_n::row_number(select) {
            if !group_by.is_empty() || select.having.is_some() {
                return Err(self.error(
                    call,
                    "window Top-N ranks the rows of a window aggregation in a subquery: \
                     SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER \
                     BY ...) FROM (SELECT ... GROUP BY window_start, window_end, ...), or a \
                     window function's rows: ... FROM TABLE(TUMBLE(...))",
                ));
            }
            return self.window_top_n(select, &scope, relation, index, call, window);
        }
        match window {
            Some(window) if group_by.is_empty() && select.having.is_none() => {
                self.window_rows(select, &scope, relation, window)
            }
            Some(window) => self.window_aggregate(select, &scope, relation, window, group_by),
            None if !group_by.is_empty() || select.having.is_some() => Err(self.error(
                select,
                "GROUP BY without a window function is not supported yet: group over \
                 TABLE(TUMBLE(...)), HOP or SESSION with window_start and window_end",
            )),
            None => {
                let mut calls = Vec::new();
                let items = self.items(select, &scope, &relation, Some(&mut calls), true)?;
                if !calls.is_empty() {
                    return self.over_aggregate(select, relation, &calls, items);
                }
                let items = items
                    .into_iter()
                    .map(|(name, expr, at)| Ok((name, self.lower(&expr, &relation.columns, at)?)))
                    .collect::<Result<Vec<_>, SqlError>>()?;
                Ok(project(relation, items))
            }
        }
    }

    /// One FROM item and its joins: the relation, its qualifier, the window function it
    /// calls, the names of what it joins, and a stream join's conditions left to filter the
    /// joined rows.
    fn from<'q>(&self, from: &'q ast::TableWithJoins) -> Result<From<'q>, SqlError> {
        if let [join] = from.joins.as_slice()
            && is_stream_join(join)
        {
            // A RIGHT join is the LEFT join of the sides swapped: the preserved side is the
            // join's left stream (names resolve by qualifier, so the query reads the same).
            let (kind, condition, swapped) = match &join.join_operator {
                JoinOperator::Join(c) | JoinOperator::Inner(c) => (JoinKind::Inner, c, false),
                JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (JoinKind::Left, c, false),
                JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (JoinKind::Left, c, true),
                JoinOperator::FullOuter(c) => (JoinKind::Full, c, false),
                _ => {
                    return Err(self.error(
                        &join.relation,
                        "a stream join is INNER, or LEFT, RIGHT or FULL OUTER for a window join",
                    ));
                }
            };
            let JoinConstraint::On(on) = condition else {
                return Err(self.error(&join.relation, "a stream join needs ON <condition>"));
            };
            let (left, right) = if swapped {
                (&join.relation, &from.relation)
            } else {
                (&from.relation, &join.relation)
            };
            let (relation, names, rest) =
                self.stream_join(left, right, kind, conjuncts(on), &join.relation)?;
            return Ok((relation, None, None, names, rest));
        }
        let (mut relation, qualifier, window) = match &from.relation {
            TableFactor::Table {
                name,
                alias,
                args: None,
                version: None,
                ..
            } => {
                let relation = self.relation(name)?;
                (relation, qualifier(alias.as_ref(), name), None)
            }
            TableFactor::TableFunction { expr, alias } => {
                let (relation, window, table) = self.window_function(expr)?;
                let qualifier = alias
                    .as_ref()
                    .map(|a| a.name.value.clone())
                    .unwrap_or(table);
                (relation, Some(qualifier), Some(window))
            }
            TableFactor::Derived {
                subquery,
                alias,
                lateral: false,
                ..
            } => {
                let relation = self.query(subquery)?;
                (relation, alias.as_ref().map(|a| a.name.value.clone()), None)
            }
            other => return Err(self.error(other, "this kind of FROM item is not supported yet")),
        };
        let joined = match from.joins.as_slice() {
            [] => Vec::new(),
            [join] if window.is_none() => {
                vec![self.lookup_join(&mut relation, qualifier.as_deref(), join)?]
            }
            [join, ..] => {
                return Err(self.error(
                    &join.relation,
                    "one join per query, and not beside a window function yet",
                ));
            }
        };
        Ok((relation, qualifier, window, joined, Vec::new()))
    }

    /// The relation a `FROM name` reads: a table, or a view's query.
    pub(super) fn relation(&self, name: &ast::ObjectName) -> Result<Relation, SqlError> {
        let key = object_name(name);
        if let Some(view) = self.views.get(&key) {
            return self.query(view);
        }
        if self.tables.contains_key(&key) {
            return self.table_relation(&key, name);
        }
        Err(self.error(
            name,
            format!(
                "no table or view `{key}`; the script creates {}",
                self.names().join(", ")
            ),
        ))
    }

    /// `SELECT keys, window_start, window_end, aggregates ... GROUP BY window_start, window_end, keys`.
    fn window_aggregate(
        &self,
        select: &Select,
        scope: &Scope,
        mut relation: Relation,
        window: TableWindow,
        group_by: &[Expr],
    ) -> Result<Relation, SqlError> {
        if relation.windowed {
            return Err(self.error(
                select,
                "a job has one window aggregation; this query adds a second",
            ));
        }
        let mut keys = Vec::new();
        let mut bounds = (false, false);
        for expr in group_by {
            let column = match scope.rewrite(self, expr, None)? {
                Expr::Identifier(ident) => ident.value,
                _ => {
                    return Err(self.error(
                        expr,
                        "GROUP BY names columns (window_start, window_end and keys)",
                    ));
                }
            };
            match column.as_str() {
                "window_start" => bounds.0 = true,
                "window_end" => bounds.1 = true,
                _ if !relation.columns.contains(&column) => {
                    return Err(self.unknown_column(expr, &column, &relation.columns));
                }
                _ => keys.push(column),
            }
        }
        if bounds != (true, true) {
            return Err(self.error(
                select,
                "a window aggregation groups by window_start and window_end (and its keys)",
            ));
        }
        if !window.partition_by.is_empty() && window.partition_by != keys {
            return Err(self.error(
                select,
                format!(
                    "a SESSION window partitioned by {} groups by the same keys; GROUP BY has {}",
                    window.partition_by.join(", "),
                    if keys.is_empty() {
                        "none".to_string()
                    } else {
                        keys.join(", ")
                    }
                ),
            ));
        }
        if keys.is_empty() {
            return Err(self.error(select, "a window aggregation needs a key in GROUP BY besides window_start and window_end (global windows are not supported yet)"));
        }
        let mut aggregates = Vec::new();
        let items = self.items(select, scope, &relation, Some(&mut aggregates), false)?;
        let having = match &select.having {
            Some(having) => Some((having, scope.rewrite(self, having, Some(&mut aggregates))?)),
            None => None,
        };
        if let Some(call) = aggregates.iter().find(|call| call.over.is_some()) {
            return Err(self.error_at(
                call.at,
                "OVER aggregates and a window function's GROUP BY do not mix in one query",
            ));
        }
        // An aggregate selected as it is takes the item's name, so that the window emits the
        // query's columns and no projection follows; the others keep `__agg<i>`.
        let names = aggregate_names(&items, aggregates.len(), |name| {
            keys.contains(name) || name == "window_start" || name == "window_end"
        });
        let renamed: HashMap<String, String> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (format!("__agg{i}"), name.clone()))
            .collect();
        let inputs = self.aggregate_inputs(&mut relation, &aggregates)?;
        relation.operators.push(OperatorFile::Window {
            key: KeyColumns::Many(keys.clone()),
            window: window.window,
            aggregates: aggregates
                .iter()
                .zip(inputs)
                .zip(&names)
                .map(|((call, column), name)| AggregateFile {
                    function: call.function,
                    column,
                    alias: Some(name.clone()),
                })
                .collect(),
        });
        relation.columns = keys
            .into_iter()
            .chain(["window_start".to_string(), "window_end".to_string()])
            .chain(names)
            .collect();
        relation.event_time = None;
        relation.windowed = true;
        if let Some((written, having)) = having {
            let predicate =
                self.lower_renamed(&having, &relation.columns, written.span(), &renamed)?;
            relation.operators.push(OperatorFile::Filter { predicate });
        }
        // The select items were checked against the window's output: lower them now.
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

    /// The select list as (output name, rewritten expression, where it was written); the
    /// caller lowers it against the columns it reads (after the window, if there is one).
    /// `wildcard`: whether `*` (the relation's columns) may appear.
    pub(super) fn items(
        &self,
        select: &Select,
        scope: &Scope,
        relation: &Relation,
        mut aggregates: Option<&mut Vec<AggregateCall>>,
        wildcard: bool,
    ) -> Result<Vec<(String, Expr, Span)>, SqlError> {
        let mut items = Vec::new();
        for (i, item) in select.projection.iter().enumerate() {
            let (expr, alias) = match item {
                SelectItem::UnnamedExpr(expr) => (expr, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
                SelectItem::Wildcard(_) if wildcard => {
                    for column in &relation.columns {
                        items.push((
                            column.clone(),
                            Expr::Identifier(Ident::new(column)),
                            item.span(),
                        ));
                    }
                    continue;
                }
                other => return Err(self.error(other, "this select item is not supported")),
            };
            let rewritten = scope.rewrite(self, expr, aggregates.as_deref_mut())?;
            // Named as written: `s.id` is `id` even where the join made it the stream's key.
            let name = alias.unwrap_or_else(|| match expr {
                Expr::Identifier(ident) => ident.value.clone(),
                Expr::CompoundIdentifier(parts) => parts
                    .last()
                    .map_or_else(|| format!("EXPR${i}"), |part| part.value.clone()),
                _ => format!("EXPR${i}"),
            });
            items.push((name, rewritten, expr.span()));
        }
        Ok(items)
    }
}

/// The output name of each of `count` aggregates: the select item's name where the item is
/// the aggregate as it is (and the name is neither `taken` nor another aggregate's), else
/// `__agg<i>`.
pub(super) fn aggregate_names(
    items: &[(String, Expr, Span)],
    count: usize,
    taken: impl Fn(&String) -> bool,
) -> Vec<String> {
    let mut names: Vec<String> = (0..count).map(|i| format!("__agg{i}")).collect();
    for (name, expr, _) in items {
        let index = match expr {
            Expr::Identifier(ident) => ident
                .value
                .strip_prefix("__agg")
                .and_then(|i| i.parse::<usize>().ok()),
            _ => None,
        };
        if let Some(index) = index
            && names[index].starts_with("__agg")
            && !taken(name)
            && !names.contains(name)
        {
            names[index] = name.clone();
        }
    }
    names
}

/// The name columns of `FROM name [AS alias]` are qualified with.
fn qualifier(alias: Option<&ast::TableAlias>, name: &ast::ObjectName) -> Option<String> {
    alias.map(|alias| alias.name.value.clone()).or_else(|| {
        name.0
            .last()
            .and_then(ObjectNamePart::as_ident)
            .map(|i| i.value.clone())
    })
}

/// What a FROM item gives a query: see [`Planner::from`].
type From<'q> = (
    Relation,
    Option<String>,
    Option<TableWindow>,
    Vec<JoinedNames>,
    Vec<&'q Expr>,
);

/// Whether `join` joins a stream (not a lookup table: no `FOR SYSTEM_TIME AS OF`).
fn is_stream_join(join: &ast::Join) -> bool {
    !matches!(
        &join.relation,
        TableFactor::Table {
            version: Some(_),
            ..
        }
    )
}

/// A table or view name as the catalog keys it: its parts' values joined by `.`.
pub(super) fn object_name(name: &ast::ObjectName) -> String {
    name.0
        .iter()
        .map(|part| {
            part.as_ident()
                .map_or_else(|| part.to_string(), |i| i.value.clone())
        })
        .collect::<Vec<_>>()
        .join(".")
}
