//! Names and aggregates in a query's expressions: `alias.column` resolved to the relation's
//! column, and aggregate calls replaced by the window's output columns (`__agg<i>`).

use std::collections::HashMap;

use sluice_engine::aggregate::AggregateFunction;
use sqlparser::ast::{
    self, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident,
    ObjectNamePart,
};

use sluice_engine::expr::{Expr as IrExpr, Literal};
use sqlparser::ast::Spanned;
use sqlparser::tokenizer::Span;

use super::Planner;
use super::over::OverWindow;
use crate::sql::SqlError;

/// One aggregate call of a windowed query, named `__agg<i>` in the window's output.
#[derive(Debug, Clone)]
pub(super) struct AggregateCall {
    pub(super) function: AggregateFunction,
    /// What it aggregates: nothing (`COUNT(*)`), a column, or an expression that a projection
    /// before the window computes.
    pub(super) input: Option<IrExpr>,
    /// Its OVER window, for a per-row aggregate.
    pub(super) over: Option<OverWindow>,
    /// Where it was written (not part of its identity: the same call twice is one).
    pub(super) at: Span,
}

impl PartialEq for AggregateCall {
    fn eq(&self, other: &Self) -> bool {
        self.function == other.function && self.input == other.input && self.over == other.over
    }
}

/// How names in a query resolve: `alias.column` is the column of the one relation.
pub(super) struct Scope {
    pub(super) qualifier: Option<String>,
    /// The names of what the query joins: a lookup table, or both sides of a stream join.
    pub(super) joined: Vec<JoinedNames>,
    /// The `WINDOW` clause's definitions, by name.
    pub(super) windows: HashMap<String, ast::WindowSpec>,
}

/// `alias.column` of a lookup-joined table: the column each became in the join's output
/// (its key columns are the stream's; a name the stream has is prefixed, `m.country`).
#[derive(Debug, Clone)]
pub(super) struct JoinedNames {
    pub(super) qualifier: String,
    pub(super) columns: HashMap<String, String>,
}

impl Scope {
    /// `expr` with qualifiers dropped and, where `aggregates` is given, aggregate calls
    /// replaced by the columns the window will name them (`__agg<i>`).
    pub(super) fn rewrite(
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
                [table, column] => match self.joined.iter().find(|j| j.qualifier == table.value) {
                    Some(joined) => match joined.columns.get(&column.value) {
                        Some(name) => Expr::Identifier(Ident::with_span(column.span, name)),
                        None => expr.clone(),
                    },
                    None => expr.clone(),
                },
                _ => expr.clone(),
            },
            Expr::Function(function)
                if function.over.is_some() && aggregate_function(function).is_none() =>
            {
                return Err(planner.error(
                    expr,
                    format!(
                        "`{}` is not supported OVER a window (COUNT, SUM, MIN, MAX and AVG are)",
                        function.name
                    ),
                ));
            }
            Expr::Function(function) if aggregate_function(function).is_some() => {
                let Some(calls) = aggregates else {
                    return Err(planner.error(
                        expr,
                        "aggregate functions go in the select list, over a window: FROM \
                         TABLE(TUMBLE(...)) with GROUP BY, or agg(x) OVER (...)",
                    ));
                };
                let mut call = planner.aggregate_call(self, function)?;
                if let Some(over) = &function.over {
                    call.over = Some(planner.over_window(self, over)?);
                }
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

/// The operands of a chain of `AND`s.
pub(super) fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            let mut all = conjuncts(left);
            all.extend(conjuncts(right));
            all
        }
        Expr::Nested(inner) => conjuncts(inner),
        other => vec![other],
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
        let lower = |expr: &Expr| -> Result<IrExpr, SqlError> {
            let rewritten = scope.rewrite(self, expr, None)?;
            IrExpr::from_sql(&rewritten).map_err(|err| self.expr_error(&err, expr.span()))
        };
        let argument = match list.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]
                if aggregate == AggregateFunction::Count && !distinct =>
            {
                None
            }
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))] => Some(lower(arg)?),
            _ => {
                return Err(self.error(
                    function,
                    "an aggregate takes one argument (COUNT also takes *)",
                ));
            }
        };
        // `agg(x) FILTER (WHERE c)` is `agg(CASE WHEN c THEN x END)`: the aggregates skip
        // nulls, so rows where `c` is not true do not count (COUNT(*) counts a constant).
        let input = match (&function.filter, argument) {
            (None, argument) => argument,
            (Some(condition), argument) => Some(IrExpr::Case {
                branches: vec![(
                    lower(condition)?,
                    argument.unwrap_or(IrExpr::Literal(Literal::Int(1))),
                )],
                otherwise: None,
            }),
        };
        if distinct {
            if aggregate != AggregateFunction::Count {
                return Err(self.error(function, "DISTINCT is supported in COUNT only"));
            }
            aggregate = AggregateFunction::CountDistinct;
        }
        if distinct && function.over.is_some() {
            return Err(self.error(
                function,
                "COUNT(DISTINCT) OVER a window is not supported yet",
            ));
        }
        Ok(AggregateCall {
            function: aggregate,
            input,
            over: None,
            at: function.span(),
        })
    }
}
