//! The projections the planner adds: renames folded into the operator before them where
//! it can take the new names, pass-through projections, and the columns aggregates read.

use std::collections::HashMap;

use super::Planner;
use super::query::Relation;
use super::scope::AggregateCall;
use crate::job::{OperatorFile, ProjectColumn};
use crate::sql::SqlError;

impl Planner<'_> {
    /// The column each aggregate reads; expressions (and `FILTER` clauses) become columns
    /// `__arg<i>` of a projection added before the window, which keeps every column.
    pub(super) fn aggregate_inputs(
        &self,
        relation: &mut Relation,
        aggregates: &[AggregateCall],
    ) -> Result<Vec<Option<String>>, SqlError> {
        let mut computed = Vec::new();
        let mut inputs = Vec::new();
        for (i, call) in aggregates.iter().enumerate() {
            let input = match &call.input {
                None => None,
                Some(expr) => {
                    if let Some(missing) = expr
                        .columns()
                        .into_iter()
                        .find(|c| !relation.columns.contains(c))
                    {
                        return Err(self.error_at(
                            call.at,
                            format!(
                                "unknown column `{missing}`; available: {}",
                                relation.columns.join(", ")
                            ),
                        ));
                    }
                    match expr {
                        sluice_engine::expr::Expr::Column(column) => Some(column.clone()),
                        _ => {
                            let name = format!("__arg{i}");
                            computed.push((name.clone(), expr.to_string()));
                            Some(name)
                        }
                    }
                }
            };
            inputs.push(input);
        }
        if !computed.is_empty() {
            let items = relation
                .columns
                .iter()
                .map(|c| (c.clone(), column_text(c)))
                .chain(computed)
                .collect();
            let event_time = relation.event_time.clone();
            *relation = project(relation.clone(), items);
            // Every column is kept, the event-time column among them.
            relation.event_time = event_time;
        }
        Ok(inputs)
    }
}

/// `relation` with its columns renamed to `names` (pairwise): in place when the last
/// operator (looking through filters, whose predicates are renamed too) is a projection or a
/// window whose aggregates can take the new names; else by a projection.
pub(super) fn rename(mut relation: Relation, names: Vec<String>) -> Relation {
    let filters = relation
        .operators
        .iter()
        .rev()
        .take_while(|op| matches!(op, OperatorFile::Filter { .. }))
        .count();
    let producer = relation.operators.len().checked_sub(filters + 1);
    let renamed = match producer.map(|i| &mut relation.operators[i]) {
        Some(OperatorFile::Project { columns }) if columns.len() == names.len() => {
            for (column, name) in columns.iter_mut().zip(&names) {
                if let ProjectColumn::Named { name: old, .. } = column {
                    *old = name.clone();
                }
            }
            true
        }
        Some(OperatorFile::Window {
            aggregates, key, ..
        }) => {
            // Keys and window bounds keep their names in a window's output.
            let fixed = key.names().len() + 2;
            let bounds_kept = relation
                .columns
                .iter()
                .zip(&names)
                .take(fixed)
                .all(|(a, b)| a == b);
            let fits = bounds_kept && aggregates.len() + fixed == names.len();
            if fits {
                for (aggregate, name) in aggregates.iter_mut().zip(&names[fixed..]) {
                    aggregate.alias = Some(name.clone());
                }
            }
            fits
        }
        _ => false,
    };
    if !renamed {
        let items = names
            .into_iter()
            .zip(&relation.columns)
            .map(|(to, from)| (to, column_text(from)))
            .collect();
        return project(relation, items);
    }
    let map: HashMap<String, String> = relation
        .columns
        .iter()
        .cloned()
        .zip(names.iter().cloned())
        .collect();
    let count = relation.operators.len();
    for op in &mut relation.operators[count - filters..] {
        if let OperatorFile::Filter { predicate } = op
            && let Ok(expr) = sluice_engine::expr::Expr::parse(predicate)
        {
            *predicate = expr
                .rename_columns(&|name| map.get(name).cloned())
                .to_string();
        }
    }
    relation.columns = names;
    relation
}

/// `relation` followed by a projection to `items` (name, expression text).
pub(super) fn project(mut relation: Relation, items: Vec<(String, String)>) -> Relation {
    let identity = items.len() == relation.columns.len()
        && items
            .iter()
            .zip(&relation.columns)
            .all(|((name, expr), column)| name == column && *expr == column_text(column));
    if !identity {
        relation.event_time = relation.event_time.filter(|ts| {
            items
                .iter()
                .any(|(name, expr)| name == ts && *expr == column_text(ts))
        });
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

/// The expression text that reads column `name` as it is.
pub(super) fn column_text(name: &str) -> String {
    sluice_engine::expr::Expr::column(name).to_string()
}
