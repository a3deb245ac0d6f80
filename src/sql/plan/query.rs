//! `SELECT` into the job's operator chain: the table's own projection, `WHERE`, one window
//! aggregation from a window function (`TUMBLE`, `HOP`, `SESSION`), `HAVING`, and the final
//! projection that names the output columns.

use sluice_engine::aggregate::AggregateFunction;
use sluice_engine::dialect::TableArgument;
use sluice_engine::duration::DurationMs;
use sqlparser::ast::{
    self, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr,
    Ident, ObjectNamePart, Query, Select, SelectItem, SetExpr, Spanned, TableFactor,
};
use sqlparser::tokenizer::Span;

use super::Planner;
use super::interval;
use crate::job::{AggregateFile, KeyColumns, OperatorFile, ProjectColumn, WindowFile};
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
}

/// One aggregate call of a windowed query, named `__agg<i>` in the window's output.
#[derive(Debug, Clone, PartialEq)]
struct AggregateCall {
    function: AggregateFunction,
    column: Option<String>,
}

/// Which window function a `FROM TABLE(...)` calls, and its argument names in order.
const WINDOW_FUNCTIONS: [(&str, &[&str]); 4] = [
    ("TUMBLE", &["DATA", "TIMECOL", "SIZE", "OFFSET"]),
    ("HOP", &["DATA", "TIMECOL", "SLIDE", "SIZE", "OFFSET"]),
    ("CUMULATE", &["DATA", "TIMECOL", "STEP", "SIZE", "OFFSET"]),
    ("SESSION", &["DATA", "TIMECOL", "GAP"]),
];

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
        if select.qualify.is_some() || !select.named_window.is_empty() {
            return Err(at("QUALIFY and WINDOW clauses"));
        }
        let [from] = select.from.as_slice() else {
            return Err(self.error(
                select,
                "a query reads one table (joins through SQL come later)",
            ));
        };
        if let Some(join) = from.joins.first() {
            return Err(self.error(&join.relation, "joins through SQL are not supported yet"));
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
        let scope = Scope { qualifier };
        if let Some(predicate) = &select.selection {
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
        match window {
            Some(window) => self.window_aggregate(select, &scope, relation, window, group_by),
            None if !group_by.is_empty() || select.having.is_some() => Err(self.error(
                select,
                "GROUP BY without a window function is not supported yet: group over \
                 TABLE(TUMBLE(...)), HOP or SESSION with window_start and window_end",
            )),
            None => {
                let items = self
                    .items(select, &scope, &relation, None)?
                    .into_iter()
                    .map(|(name, expr, at)| Ok((name, self.lower(&expr, &relation.columns, at)?)))
                    .collect::<Result<Vec<_>, SqlError>>()?;
                Ok(project(relation, items))
            }
        }
    }

    /// The relation a `FROM name` reads: a table, or a view's query.
    fn relation(&self, name: &ast::ObjectName) -> Result<Relation, SqlError> {
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

    /// `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL ...))`: the relation, window and
    /// the table argument's name.
    fn window_function(&self, call: &Expr) -> Result<(Relation, TableWindow, String), SqlError> {
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
            "SESSION" => WindowFile::Session {
                gap: required_ms(millis("GAP")?),
            },
            _ => {
                return Err(self.error(
                    call,
                    "CUMULATE windows are not supported yet (they need a window kind of their own)",
                ));
            }
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
        let items = self.items(select, scope, &relation, Some(&mut aggregates))?;
        let having = match &select.having {
            Some(having) => Some((having, scope.rewrite(self, having, Some(&mut aggregates))?)),
            None => None,
        };
        relation.operators.push(OperatorFile::Window {
            key: KeyColumns::Many(keys.clone()),
            window: window.window,
            aggregates: aggregates
                .iter()
                .enumerate()
                .map(|(i, call)| AggregateFile {
                    function: call.function,
                    column: call.column.clone(),
                    alias: Some(format!("__agg{i}")),
                })
                .collect(),
        });
        relation.columns = keys
            .into_iter()
            .chain(["window_start".to_string(), "window_end".to_string()])
            .chain((0..aggregates.len()).map(|i| format!("__agg{i}")))
            .collect();
        relation.event_time = None;
        relation.windowed = true;
        if let Some((written, having)) = having {
            let predicate = self.lower(&having, &relation.columns, written.span())?;
            relation.operators.push(OperatorFile::Filter { predicate });
        }
        // The select items were checked against the window's output: lower them now.
        let items = items
            .into_iter()
            .map(|(name, expr, at)| Ok((name, self.lower(&expr, &relation.columns, at)?)))
            .collect::<Result<Vec<_>, SqlError>>()?;
        Ok(project(relation, items))
    }

    /// The select list as (output name, rewritten expression, where it was written); the
    /// caller lowers it against the columns it reads (after the window, if there is one).
    fn items(
        &self,
        select: &Select,
        scope: &Scope,
        relation: &Relation,
        mut aggregates: Option<&mut Vec<AggregateCall>>,
    ) -> Result<Vec<(String, Expr, Span)>, SqlError> {
        let mut items = Vec::new();
        for (i, item) in select.projection.iter().enumerate() {
            let (expr, alias) = match item {
                SelectItem::UnnamedExpr(expr) => (expr, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
                SelectItem::Wildcard(_) if aggregates.is_none() => {
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
            let name = alias.unwrap_or_else(|| match &rewritten {
                Expr::Identifier(ident) if !ident.value.starts_with("__agg") => ident.value.clone(),
                _ => format!("EXPR${i}"),
            });
            items.push((name, rewritten, expr.span()));
        }
        Ok(items)
    }
}

/// A window function's window and `PARTITION BY` keys.
#[derive(Debug, Clone)]
struct TableWindow {
    window: WindowFile,
    partition_by: Vec<String>,
}

/// How names in a query resolve: `alias.column` is the column of the one relation.
struct Scope {
    qualifier: Option<String>,
}

impl Scope {
    /// `expr` with qualifiers dropped and, where `aggregates` is given, aggregate calls
    /// replaced by the columns the window will name them (`__agg<i>`).
    fn rewrite(
        &self,
        planner: &Planner,
        expr: &Expr,
        mut aggregates: Option<&mut Vec<AggregateCall>>,
    ) -> Result<Expr, SqlError> {
        let mut recurse = |expr: &Expr| self.rewrite(planner, expr, aggregates.as_deref_mut());
        let rewritten = match expr {
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [table, column] if Some(&table.value) == self.qualifier.as_ref() => {
                    Expr::Identifier(column.clone())
                }
                _ => expr.clone(),
            },
            Expr::Function(function) if aggregate_function(function).is_some() => {
                let Some(calls) = aggregates else {
                    return Err(planner.error(
                        expr,
                        "aggregate functions need a window: FROM TABLE(TUMBLE(...)) with GROUP BY",
                    ));
                };
                let call = planner.aggregate_call(self, function)?;
                let index = match calls.iter().position(|c| *c == call) {
                    Some(index) => index,
                    None => {
                        calls.push(call);
                        calls.len() - 1
                    }
                };
                Expr::Identifier(Ident::new(format!("__agg{index}")))
            }
            Expr::BinaryOp { left, op, right } => Expr::BinaryOp {
                left: Box::new(recurse(left)?),
                op: op.clone(),
                right: Box::new(recurse(right)?),
            },
            Expr::UnaryOp { op, expr } => Expr::UnaryOp {
                op: *op,
                expr: Box::new(recurse(expr)?),
            },
            Expr::Nested(inner) => Expr::Nested(Box::new(recurse(inner)?)),
            Expr::IsNull(inner) => Expr::IsNull(Box::new(recurse(inner)?)),
            Expr::IsNotNull(inner) => Expr::IsNotNull(Box::new(recurse(inner)?)),
            Expr::Cast {
                kind,
                expr: inner,
                data_type,
                format,
            } => Expr::Cast {
                kind: kind.clone(),
                expr: Box::new(recurse(inner)?),
                data_type: data_type.clone(),
                format: format.clone(),
            },
            Expr::Function(function) => {
                let mut function = function.clone();
                if let FunctionArguments::List(list) = &mut function.args {
                    for arg in &mut list.args {
                        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(inner)) = arg {
                            *inner = recurse(inner)?;
                        }
                    }
                }
                Expr::Function(function)
            }
            other => other.clone(),
        };
        Ok(rewritten)
    }
}

/// The aggregate `function` names, if it is one sluice has.
fn aggregate_function(function: &ast::Function) -> Option<AggregateFunction> {
    let [ObjectNamePart::Identifier(name)] = function.name.0.as_slice() else {
        return None;
    };
    let aggregate = match name.value.to_ascii_lowercase().as_str() {
        "count" => AggregateFunction::Count,
        "sum" => AggregateFunction::Sum,
        "min" => AggregateFunction::Min,
        "max" => AggregateFunction::Max,
        "avg" => AggregateFunction::Avg,
        _ => return None,
    };
    Some(aggregate)
}

impl Planner<'_> {
    /// `COUNT(*)`, `COUNT([DISTINCT] col)`, `SUM(col)`, ...: the window aggregate it is.
    fn aggregate_call(
        &self,
        scope: &Scope,
        function: &ast::Function,
    ) -> Result<AggregateCall, SqlError> {
        let Some(mut aggregate) = aggregate_function(function) else {
            return Err(self.error(function, "not an aggregate function"));
        };
        if function.filter.is_some() {
            return Err(self.error(
                function,
                "FILTER (WHERE ...) on an aggregate is not supported yet",
            ));
        }
        if function.over.is_some() {
            return Err(self.error(function, "OVER aggregations are not supported yet"));
        }
        let FunctionArguments::List(list) = &function.args else {
            return Err(self.error(function, "an aggregate takes one argument"));
        };
        if !list.clauses.is_empty() {
            return Err(self.error(
                function,
                "clauses inside an aggregate call are not supported",
            ));
        }
        let distinct = list.duplicate_treatment == Some(DuplicateTreatment::Distinct);
        let column = match list.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]
                if aggregate == AggregateFunction::Count && !distinct =>
            {
                None
            }
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] => {
                match scope.rewrite(self, arg, None)? {
                    Expr::Identifier(column) => Some(column.value),
                    _ => {
                        return Err(self.error(
                        arg,
                        "an aggregate's argument is a column for now: compute the expression in a view",
                    ));
                    }
                }
            }
            _ => {
                return Err(self.error(
                    function,
                    "an aggregate takes one column (COUNT also takes *)",
                ));
            }
        };
        if distinct {
            if aggregate != AggregateFunction::Count {
                return Err(self.error(function, "DISTINCT is supported in COUNT only"));
            }
            aggregate = AggregateFunction::CountDistinct;
        }
        Ok(AggregateCall {
            function: aggregate,
            column,
        })
    }
}

/// A window function's required interval (its absence was refused earlier).
fn required_ms(value: Option<DurationMs>) -> DurationMs {
    value.unwrap_or(DurationMs(0))
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

/// `relation` followed by a projection to `items` (name, expression text).
pub(super) fn project(mut relation: Relation, items: Vec<(String, String)>) -> Relation {
    let identity = items.len() == relation.columns.len()
        && items
            .iter()
            .zip(&relation.columns)
            .all(|((name, expr), column)| name == column && expr == column);
    if !identity {
        relation.event_time = relation
            .event_time
            .filter(|ts| items.iter().any(|(name, expr)| name == ts && expr == ts));
        relation.columns = items.iter().map(|(name, _)| name.clone()).collect();
        relation.operators.push(OperatorFile::Project {
            columns: items
                .into_iter()
                .map(|(name, expr)| ProjectColumn::Named { name, expr })
                .collect(),
        });
    }
    relation
}
