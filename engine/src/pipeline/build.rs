//! Turns a [`PipelineBuilder`]'s specs into operators: each input's schema and projection,
//! each chain checked against the schema flowing into it, the join between two streams.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};

use super::{InputStream, OperatorSpec, PipelineBuilder};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::operator::{
    CumulateWindowOperator, FilterOperator, JoinInput, LookupJoinOperator, Operator, OperatorChain,
    OperatorGraph, OverAggregateOperator, ProjectOperator, StreamJoinOperator,
    WindowAggregateOperator, WindowRowsOperator, WindowTopNOperator,
};
use crate::window::WindowSpec;

impl PipelineBuilder {
    /// The operators that run on input `i` before any join (a single stream: all of them).
    fn input_operators(&self, i: usize) -> &[OperatorSpec] {
        if self.join.is_some() {
            &self.inputs[i].operators
        } else {
            &self.operators
        }
    }

    /// The job-file prefix of input `i`'s settings (`streams.<name>.`; none for one stream).
    fn input_setting(&self, i: usize) -> String {
        if self.join.is_some() {
            format!("streams.{}.", self.inputs[i].name)
        } else {
            String::new()
        }
    }

    /// Each input's normalised (and projected) schema with the source columns it reads.
    pub(super) fn prepared_schemas(&self) -> Result<Vec<(SchemaRef, Option<Vec<usize>>)>> {
        (0..self.inputs.len())
            .map(|i| {
                let input = &self.inputs[i];
                let full = input
                    .event_time
                    .normalized_schema(&input.source.schema())
                    .map_err(|e| prefix_setting(e, &self.input_setting(i)))?;
                match self.projection(input, self.input_operators(i), &full) {
                    Some(indices) => {
                        let projected = full
                            .project(&indices)
                            .map_err(Error::arrow("projecting the source schema"))?;
                        Ok((Arc::new(projected), Some(indices)))
                    }
                    None => Ok((full, None)),
                }
            })
            .collect()
    }

    /// The source columns `input` needs (ascending indices), or `None` when it needs them all:
    /// operators before the first projection or window read only what their expressions name,
    /// but rows that pass through to a sink or a join unchanged, or late rows, keep every
    /// column.
    fn projection(
        &self,
        input: &InputStream,
        operators: &[OperatorSpec],
        schema: &Schema,
    ) -> Option<Vec<usize>> {
        if self.late_sink.is_some() {
            return None;
        }
        let mut needed: BTreeSet<String> = BTreeSet::from([input.event_time.column.clone()]);
        let mut closed = false;
        for spec in operators {
            match spec {
                OperatorSpec::Filter(predicate) => needed.extend(predicate.columns()),
                OperatorSpec::Project(columns) => {
                    needed.extend(columns.iter().flat_map(|(_, e)| e.columns()));
                    closed = true;
                }
                OperatorSpec::Window(window) => {
                    needed.extend(window.keys.iter().cloned());
                    needed.extend(window.aggregates.iter().filter_map(|a| a.column.clone()));
                    closed = true;
                }
                // An OVER operator keeps every column and adds its aggregates.
                OperatorSpec::Over(over) => {
                    needed.extend(over.partition_by.iter().cloned());
                    needed.extend(
                        over.aggregates
                            .iter()
                            .filter_map(|o| o.aggregate.column.clone()),
                    );
                }
                // Every stream column passes through a join; later operators name the
                // table's columns too, which the source lacks, so nothing is projected then.
                OperatorSpec::LookupJoin(join) => needed.extend(join.on.iter().cloned()),
                // Passes every column on, with the window's bounds.
                OperatorSpec::AssignWindows(_) => {}
                // Ranks rows it passes on whole (after a window, which closes first, or
                // raw rows, which it keeps every column of).
                OperatorSpec::WindowTopN(top) => {
                    needed.extend(top.partition_by.iter().cloned());
                    needed.extend(top.order_by.iter().map(|o| o.column.clone()));
                }
            }
            if closed {
                break;
            }
        }
        if !closed {
            return None;
        }
        let indices: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| needed.contains(schema.field(i).name()))
            .collect();
        // Unknown names stay unprojected so that validation reports them against the full schema.
        (indices.len() == needed.len() && indices.len() < schema.fields().len()).then_some(indices)
    }

    /// Every operator of the job on `backend`, over the inputs' `schemas`
    /// ([`PipelineBuilder::prepared_schemas`]), and the late rows' schema of its window.
    pub(super) fn graph(
        &self,
        schemas: &[(SchemaRef, Option<Vec<usize>>)],
        backend: &Arc<dyn Backend>,
    ) -> Result<(OperatorGraph, Option<SchemaRef>)> {
        let Some(join) = &self.join else {
            let time = &self.inputs[0].event_time.column;
            let (chain, late) = chain(
                &schemas[0].0,
                &self.operators,
                time,
                backend,
                "operators",
                true,
            )?;
            return Ok((OperatorGraph::single(chain), late));
        };
        if self.inputs.len() != 2 {
            return Err(Error::config("streams", "a join needs exactly two streams"));
        }
        let names = (&self.inputs[0].name, &self.inputs[1].name);
        if (&join.left, &join.right) != names {
            return Err(Error::config(
                "join",
                format!(
                    "joins `{}` with `{}`, but the streams are `{}` and `{}`",
                    join.left, join.right, names.0, names.1
                ),
            ));
        }
        let mut chains = Vec::with_capacity(2);
        let mut sides = Vec::with_capacity(2);
        for (i, input) in self.inputs.iter().enumerate() {
            let setting = format!("{}operators", self.input_setting(i));
            let time = &input.event_time.column;
            let (chain, _) = chain(
                &schemas[i].0,
                &input.operators,
                time,
                backend,
                &setting,
                false,
            )?;
            sides.push(JoinInput {
                name: input.name.clone(),
                schema: chain.output_schema(),
                time_column: time.clone(),
            });
            chains.push(chain);
        }
        let right = sides.pop();
        let left = sides.pop();
        let (Some(left), Some(right)) = (left, right) else {
            return Err(Error::Internal("a join lost a stream".into()));
        };
        let time = left.time_column.clone();
        let operator = StreamJoinOperator::try_new(join, left, right, backend, "join")?;
        let (after, late) = chain(
            &operator.output_schema(),
            &self.operators,
            &time,
            backend,
            "operators",
            true,
        )?;
        let right = chains.pop();
        let left = chains.pop();
        let (Some(left), Some(right)) = (left, right) else {
            return Err(Error::Internal("a join lost a stream".into()));
        };
        let graph = OperatorGraph::joined(left, right, operator, after, time);
        Ok((graph, late))
    }
}

/// Builds `specs` on `input` (their settings are `<setting>[i]`); `time` is the event-time
/// column, `stateful` whether windows are allowed. Returns the chain and, with a window, the
/// schema of its late rows.
fn chain(
    input: &SchemaRef,
    specs: &[OperatorSpec],
    time: &str,
    backend: &Arc<dyn Backend>,
    setting: &str,
    stateful: bool,
) -> Result<(OperatorChain, Option<SchemaRef>)> {
    let mut schema = input.clone();
    let mut late = None;
    let mut operators: Vec<Box<dyn Operator>> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let setting = format!("{setting}[{i}]");
        let operator: Box<dyn Operator> = match spec {
            OperatorSpec::Filter(predicate) => Box::new(FilterOperator::try_new(
                predicate.clone(),
                schema.clone(),
                &format!("{setting}.predicate"),
            )?),
            OperatorSpec::Project(columns) => Box::new(ProjectOperator::try_new(
                columns.clone(),
                &schema,
                &format!("{setting}.columns"),
            )?),
            OperatorSpec::LookupJoin(join) => Box::new(LookupJoinOperator::try_new(
                join,
                schema.clone(),
                backend,
                &setting,
            )?),
            spec if spec.windows_rows() && !stateful => {
                return Err(Error::config(
                    setting,
                    "a stream's operators before a join can filter, project and \
                     lookup-join; aggregate over windows after the join instead",
                ));
            }
            spec if spec.windows_rows() && late.is_some() => {
                return Err(Error::config(
                    setting,
                    "only one window, OVER or windowed Top-N operator per job is supported",
                ));
            }
            OperatorSpec::AssignWindows(window) => {
                let operator =
                    WindowRowsOperator::try_new(*window, schema.clone(), time, &setting)?;
                late = Some(operator.late_schema());
                Box::new(operator)
            }
            OperatorSpec::WindowTopN(top) => {
                let operator = WindowTopNOperator::try_new(top, schema.clone(), time, &setting)?;
                // Over raw rows, late rows are the operator's input rows.
                if let Some(schema) = operator.late_schema() {
                    late = Some(schema);
                }
                Box::new(operator)
            }
            OperatorSpec::Over(over) => {
                // Late rows are the operator's input rows.
                late = Some(schema.clone());
                Box::new(OverAggregateOperator::try_new(
                    over,
                    schema.clone(),
                    time,
                    backend.as_ref(),
                    &setting,
                )?)
            }
            OperatorSpec::Window(window)
                if matches!(window.window, WindowSpec::Cumulate { .. }) =>
            {
                late = Some(schema.clone());
                Box::new(CumulateWindowOperator::try_new(
                    window,
                    schema.clone(),
                    time,
                    backend.as_ref(),
                    &setting,
                )?)
            }
            OperatorSpec::Window(window) => {
                // Late rows are the operator's input rows.
                late = Some(schema.clone());
                Box::new(WindowAggregateOperator::try_new(
                    window,
                    schema.clone(),
                    time,
                    backend.as_ref(),
                    &setting,
                )?)
            }
        };
        schema = operator.output_schema();
        operators.push(operator);
    }
    Ok((OperatorChain::new(operators, input.clone()), late))
}

/// Puts `prefix` (`streams.<name>.`) before the setting an error names.
fn prefix_setting(error: Error, prefix: &str) -> Error {
    match error {
        Error::Config { key, message } if !prefix.is_empty() => Error::Config {
            key: format!("{prefix}{key}"),
            message,
        },
        other => other,
    }
}
