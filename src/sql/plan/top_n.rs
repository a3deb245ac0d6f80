//! Window Top-N: `ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY ...)` over a
//! window aggregation or a window function's rows, and the `WHERE rownum <= N` around it that
//! becomes the operator's limit.

use sqlparser::ast::{
    self, BinaryOperator, Expr, FunctionArguments, Ident, OrderBySort, Select, SelectItem, Value,
    WindowType,
};

use super::Planner;
use super::projection::project;
use super::query::Relation;
use super::scope::Scope;
use super::window_function::TableWindow;
use crate::job::{KeyColumns, OperatorFile, ProjectColumn, TopNOrderFile, WindowFile};
use crate::sql::SqlError;

/// The select item that is `ROW_NUMBER() OVER (...)`, with its position.
pub(super) fn row_number(select: &Select) -> Option<(usize, &ast::Function)> {
    select.projection.iter().enumerate().find_map(|(i, item)| {
        let expr = match item {
            SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => expr,
            _ => return None,
        };
        match expr {
            Expr::Function(function)
                if function.over.is_some()
                    && function.name.to_string().eq_ignore_ascii_case("ROW_NUMBER") =>
            {
                Some((i, function))
            }
            _ => None,
        }
    })
}

impl Planner<'_> {
    /// `SELECT ..., ROW_NUMBER() OVER (PARTITION BY window_start, window_end [, k] ORDER BY ...)
    /// AS rownum FROM <window aggregation>`, or `FROM TABLE(TUMBLE(...))` (`window`: the
    /// operator puts the raw rows into windows itself): the rows ranked per window and
    /// numbered; the select list then reads the number as a column.
    pub(super) fn window_top_n(
        &self,
        select: &Select,
        scope: &Scope,
        mut relation: Relation,
        index: usize,
        call: &ast::Function,
        window: Option<TableWindow>,
    ) -> Result<Relation, SqlError> {
        let no_args = match &call.args {
            FunctionArguments::None => true,
            FunctionArguments::List(list) => list.args.is_empty(),
            FunctionArguments::Subquery(_) => false,
        };
        if !no_args {
            return Err(self.error(call, "ROW_NUMBER() takes no arguments"));
        }
        let spec = match &call.over {
            Some(WindowType::WindowSpec(spec)) => spec,
            Some(WindowType::NamedWindow(name)) => {
                scope.windows.get(&name.value).ok_or_else(|| {
                    self.error_at(
                        name.span,
                        format!("no window `{name}`: define it with WINDOW {name} AS (...)"),
                    )
                })?
            }
            None => return Err(self.error(call, "ROW_NUMBER() needs OVER (...)")),
        };
        if spec.window_frame.is_some() {
            return Err(self.error(call, "ROW_NUMBER() takes no window frame"));
        }
        let bounds = ["window_start", "window_end"];
        let window = match window {
            None => None,
            Some(_) if relation.windowed => {
                return Err(self.error(
                    call,
                    "a job has one window aggregation or window Top-N; this query adds a second",
                ));
            }
            Some(TableWindow {
                window: WindowFile::Session { .. },
                ..
            }) => {
                return Err(self.error(
                    call,
                    "window Top-N over a window function's rows takes TUMBLE, HOP or \
                     CUMULATE; rank sessions after aggregating them (GROUP BY window_start, \
                     window_end, ...) in a subquery",
                ));
            }
            Some(TableWindow { window, .. }) => {
                if let Some(clash) = bounds
                    .iter()
                    .find(|b| relation.columns.iter().any(|c| c == *b))
                {
                    return Err(self.error(
                        call,
                        format!("the table already has a column `{clash}`, which the window function adds"),
                    ));
                }
                relation.columns.extend(bounds.map(String::from));
                relation.windowed = true;
                relation.event_time = None;
                Some(window)
            }
        };
        let column = |expr: &Expr, what: &str| -> Result<String, SqlError> {
            match scope.rewrite(self, expr, None)? {
                Expr::Identifier(ident) if relation.columns.contains(&ident.value) => {
                    Ok(ident.value)
                }
                Expr::Identifier(ident) => {
                    Err(self.unknown_column(expr, &ident.value, &relation.columns))
                }
                _ => Err(self.error(expr, format!("{what} names columns"))),
            }
        };
        let mut partition_by = Vec::new();
        for expr in &spec.partition_by {
            partition_by.push(column(expr, "PARTITION BY")?);
        }
        let windowed = relation.windowed
            && bounds
                .iter()
                .all(|b| relation.columns.iter().any(|c| c == b));
        if !windowed || !bounds.iter().all(|b| partition_by.iter().any(|p| p == b)) {
            return Err(self.error(
                call,
                "ROW_NUMBER() is supported as window Top-N: PARTITION BY window_start, \
                 window_end (and other columns) over a window aggregation's or a window \
                 function's rows; ranking without a window is not supported yet",
            ));
        }
        partition_by.retain(|p| !bounds.contains(&p.as_str()));
        if spec.order_by.is_empty() {
            return Err(self.error(call, "window Top-N needs ORDER BY: which rows come first"));
        }
        let mut order_by = Vec::new();
        for order in &spec.order_by {
            order_by.push(TopNOrderFile {
                column: column(&order.expr, "ORDER BY")?,
                desc: order.options.sort == Some(OrderBySort::Desc),
                nulls_first: order.options.nulls_first.unwrap_or(false),
            });
        }
        let name = match &select.projection[index] {
            SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
            _ => format!("EXPR${index}"),
        };
        // `*` is the ranked rows' columns, without the number.
        let ranked = relation.clone();
        relation.operators.push(OperatorFile::TopN {
            partition_by: (!partition_by.is_empty()).then_some(KeyColumns::Many(partition_by)),
            order_by,
            limit: None,
            rownum: Some(name.clone()),
            window,
        });
        relation.columns.push(name.clone());
        // The select list reads the number as a column.
        let mut select = select.clone();
        select.projection[index] = SelectItem::ExprWithAlias {
            expr: Expr::Identifier(Ident::new(&name)),
            alias: Ident::new(&name),
        };
        let items = self
            .items(&select, scope, &ranked, None, true)?
            .into_iter()
            .map(|(name, expr, at)| Ok((name, self.lower(&expr, &relation.columns, at)?)))
            .collect::<Result<Vec<_>, SqlError>>()?;
        Ok(project(relation, items))
    }
}

/// Where `predicate` is `rownum <= N` (or `< N`, `= 1`, or written the other way round) on the
/// row number of a Top-N whose number reaches here unchanged, makes N that Top-N's limit, so
/// that only N rows per window leave it. The filter stays: it keeps the same rows.
pub(super) fn fold_limit(relation: &mut Relation, predicate: &Expr) {
    let Expr::BinaryOp { left, op, right } = predicate else {
        return;
    };
    let (name, op, bound) = match (left.as_ref(), right.as_ref()) {
        (Expr::Identifier(name), Expr::Value(value)) => (name, op.clone(), value),
        (Expr::Value(value), Expr::Identifier(name)) => {
            let flipped = match op {
                BinaryOperator::GtEq => BinaryOperator::LtEq,
                BinaryOperator::Gt => BinaryOperator::Lt,
                other => other.clone(),
            };
            (name, flipped, value)
        }
        _ => return,
    };
    let Value::Number(digits, _) = &bound.value else {
        return;
    };
    let Ok(bound) = digits.parse::<usize>() else {
        return;
    };
    let limit = match op {
        BinaryOperator::LtEq => bound,
        BinaryOperator::Lt => bound.saturating_sub(1),
        BinaryOperator::Eq if bound == 1 => 1,
        _ => return,
    };
    if limit == 0 {
        return;
    }
    let Some(at) = relation
        .operators
        .iter()
        .rposition(|op| matches!(op, OperatorFile::TopN { .. }))
    else {
        return;
    };
    // Filters keep the number; a projection must pass it on as it is.
    let passed_on = relation.operators[at + 1..].iter().all(|op| match op {
        OperatorFile::Filter { .. } => true,
        OperatorFile::Project { columns } => columns.iter().any(|c| match c {
            ProjectColumn::Named { name: to, expr } => {
                *to == name.value && *expr == super::projection::column_text(&name.value)
            }
            ProjectColumn::Expr(expr) => *expr == super::projection::column_text(&name.value),
        }),
        _ => false,
    });
    if let OperatorFile::TopN {
        limit: current,
        rownum: Some(rownum),
        ..
    } = &mut relation.operators[at]
        && *rownum == name.value
        && passed_on
    {
        *current = Some(current.map_or(limit, |n| n.min(limit)));
    }
}
