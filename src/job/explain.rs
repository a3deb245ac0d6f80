//! `sluice explain` and SQL's `EXPLAIN`: the job's operator graph, in order, with the backend
//! each operator that uses one runs on, as the built pipeline reports it.

use std::fmt::Write;

use sluice_connectors::{SinkSpec, SourceSpec};
use sluice_engine::memory::CollectSink;

use super::{
    BackendChoice, EventTimeFile, FrameUnits, JobError, JobFile, KeyColumns, OperatorFile,
    ProjectColumn, WindowFile,
};

impl JobFile {
    /// The job's plan as text: sources, operators (with their backend), sink and output
    /// columns. Builds the pipeline on `backend` (opening the GPU when it is chosen, reading
    /// lookup tables) but moves no data and opens no sink.
    pub fn explain(&self, backend: BackendChoice) -> Result<String, JobError> {
        let builder = self.builder(backend)?;
        let schemas = builder.schemas().map_err(|error| JobError::Invalid {
            path: self.path.clone(),
            error,
        })?;
        let pipeline = builder
            .sink(Box::new(CollectSink::new()))
            .build()
            .map_err(|error| JobError::Invalid {
                path: self.path.clone(),
                error,
            })?;
        let spec = &self.spec;
        let mut plan = Plan {
            out: format!("job {}\n", self.name()),
            step: 0,
            placements: pipeline.placements().into_iter(),
        };
        match (&spec.source, &spec.event_time, &spec.join) {
            (Some(source), Some(event_time), _) => {
                plan.line(format!("source    {}", source_text(source)));
                plan.line(format!("          {}", event_time_text(event_time)));
                plan.operators(&spec.operators, "");
            }
            (_, _, Some(join)) => {
                for name in [&join.left, &join.right] {
                    if let Some(stream) = spec.streams.get(name) {
                        plan.line(format!("stream {name}: {}", source_text(&stream.source)));
                        plan.line(format!("          {}", event_time_text(&stream.event_time)));
                        plan.operators(&stream.operators, "    ");
                    }
                }
                plan.step += 1;
                let placement = plan.placement();
                plan.line(format!(
                    "{:>2}. {:?} join {} with {} on {}  [{placement}]",
                    plan.step,
                    join.join_type,
                    join.left,
                    join.right,
                    join.on.names().join(", "),
                ));
                plan.operators(&spec.operators, "");
            }
            _ => {}
        }
        let mut out = plan.out;
        let _ = writeln!(out, "sink      {}", sink_text(&spec.sink));
        let _ = write!(out, "output    {}", describe_columns(&schemas.output));
        Ok(out)
    }
}

/// `name: type, ...` for every column of `schema`, as `validate` and `explain` print them.
pub fn describe_columns(schema: &arrow::datatypes::Schema) -> String {
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    columns.join(", ")
}

/// The plan's text as it is written, numbering operators and naming their backends.
struct Plan {
    out: String,
    step: usize,
    placements: std::vec::IntoIter<String>,
}

impl Plan {
    fn line(&mut self, line: String) {
        self.out.push_str(&line);
        self.out.push('\n');
    }

    /// The next backend-using operator's placement, in the pipeline's order.
    fn placement(&mut self) -> String {
        self.placements.next().unwrap_or_else(|| "cpu".into())
    }

    fn operators(&mut self, list: &[OperatorFile], indent: &str) {
        for operator in list {
            self.step += 1;
            let mut line = format!("{indent}{:>2}. {}", self.step, describe(operator));
            if matches!(
                operator,
                OperatorFile::Window { .. }
                    | OperatorFile::Over { .. }
                    | OperatorFile::LookupJoin { .. }
            ) {
                line.push_str(&format!("  [{}]", self.placement()));
            }
            self.line(line);
        }
    }
}

fn source_text(source: &SourceSpec) -> String {
    match source {
        SourceSpec::Generator(g) => format!(
            "generator {} ({}, {} partition(s))",
            g.kind.name(),
            g.events
                .map_or_else(|| "unbounded".to_string(), |n| format!("{n} events")),
            g.partitions
        ),
        SourceSpec::Csv(f) => format!("csv {}", f.path),
        SourceSpec::Jsonl(f) => format!("json lines {}", f.path),
        SourceSpec::Parquet(f) => format!("parquet {}", f.path),
        SourceSpec::Kafka(k) => format!("kafka {} at {}", k.topics.names().join(", "), k.bootstrap),
    }
}

fn event_time_text(event_time: &EventTimeFile) -> String {
    format!(
        "event time `{}`, watermark {} behind the largest seen",
        event_time.column, event_time.watermark_delay
    )
}

fn sink_text(sink: &SinkSpec) -> String {
    match sink {
        SinkSpec::Stdout { format } => format!("print ({format:?})").to_lowercase(),
        SinkSpec::Csv { path, .. } => format!("csv {path}"),
        SinkSpec::Jsonl { path } => format!("json lines {path}"),
        SinkSpec::Parquet { path, .. } => format!("parquet {path}"),
        SinkSpec::Discard => "discard".into(),
        SinkSpec::Kafka(k) => format!("kafka {} at {}", k.topic, k.bootstrap),
    }
}

/// A window in words: `tumbling 1m`, `hopping 10m every 1m`.
fn window_text(window: &WindowFile) -> String {
    match window {
        WindowFile::Tumbling { size, offset } if offset.as_millis() == 0 => {
            format!("tumbling {size}")
        }
        WindowFile::Tumbling { size, offset } => format!("tumbling {size} offset {offset}"),
        WindowFile::Hopping { size, slide, .. } => format!("hopping {size} every {slide}"),
        WindowFile::Session { gap } => format!("session gap {gap}"),
        WindowFile::Cumulate { step, size, .. } => format!("cumulate {size} every {step}"),
    }
}

/// One line about `operator`.
fn describe(operator: &OperatorFile) -> String {
    match operator {
        OperatorFile::Filter { predicate } => format!("filter   {predicate}"),
        OperatorFile::Project { columns } => {
            let columns: Vec<String> = columns
                .iter()
                .map(|column| match column {
                    ProjectColumn::Expr(expr) => expr.clone(),
                    ProjectColumn::Named { name, expr }
                        if *expr == sluice_engine::expr::Expr::column(name).to_string() =>
                    {
                        name.clone()
                    }
                    ProjectColumn::Named { name, expr } => format!("{expr} AS {name}"),
                })
                .collect();
            format!("project  {}", columns.join(", "))
        }
        OperatorFile::LookupJoin {
            name,
            on,
            table_on,
            kind,
            ..
        } => format!(
            "lookup join ({kind:?}) `{name}` on {} = {}",
            on.names().join(", "),
            table_on.as_ref().unwrap_or(on).names().join(", ")
        )
        .to_lowercase(),
        OperatorFile::Window {
            key,
            window,
            aggregates,
        } => {
            let window = window_text(window);
            let aggregates: Vec<String> = aggregates
                .iter()
                .map(|a| aggregate_text(a.function, a.column.as_deref(), "", a.alias.as_deref()))
                .collect();
            format!(
                "window   {window} by {}: {}",
                key.names().join(", "),
                aggregates.join(", ")
            )
        }
        OperatorFile::AssignWindows { window } => {
            format!(
                "windows  {} (each row in every window holding it)",
                window_text(window)
            )
        }
        OperatorFile::TopN {
            partition_by,
            order_by,
            limit,
            rownum,
            window,
        } => {
            let mut partition = vec!["window_start".to_string(), "window_end".to_string()];
            partition.extend(
                partition_by
                    .as_ref()
                    .map(KeyColumns::names)
                    .unwrap_or_default(),
            );
            let order: Vec<String> = order_by
                .iter()
                .map(|term| {
                    let direction = if term.desc { " DESC" } else { "" };
                    let nulls = if term.nulls_first { " NULLS FIRST" } else { "" };
                    format!("{}{direction}{nulls}", term.column)
                })
                .collect();
            let limit = limit.map_or_else(|| "every row".to_string(), |n| format!("first {n}"));
            let rownum = rownum
                .as_ref()
                .map(|name| format!(" numbered as {name}"))
                .unwrap_or_default();
            let windows = window
                .as_ref()
                .map(|w| format!(" of raw rows in {}", window_text(w)))
                .unwrap_or_default();
            format!(
                "top-n    {limit} per {} by {}{rownum}{windows}",
                partition.join(", "),
                order.join(", ")
            )
        }
        OperatorFile::Over {
            partition_by,
            aggregates,
        } => {
            let aggregates: Vec<String> = aggregates
                .iter()
                .map(|a| {
                    let frame = match (a.range_preceding, a.rows_preceding, a.unbounded_preceding) {
                        (Some(range), _, _) => format!("RANGE {range} PRECEDING"),
                        (_, Some(rows), _) => format!("ROWS {rows} PRECEDING"),
                        (_, _, Some(FrameUnits::Range)) => "RANGE UNBOUNDED PRECEDING".into(),
                        (_, _, Some(FrameUnits::Rows)) => "ROWS UNBOUNDED PRECEDING".into(),
                        _ => "no frame".into(),
                    };
                    let over = format!(" OVER {frame}");
                    aggregate_text(a.function, a.column.as_deref(), &over, a.alias.as_deref())
                })
                .collect();
            format!(
                "over     partition by {}: {}",
                partition_by.names().join(", "),
                aggregates.join(", ")
            )
        }
    }
}

/// `fn(column)<suffix> AS alias` (`*` for no column; no `AS` without an alias).
fn aggregate_text(
    function: sluice_engine::aggregate::AggregateFunction,
    column: Option<&str>,
    suffix: &str,
    alias: Option<&str>,
) -> String {
    let call = format!("{}({}){suffix}", function.name(), column.unwrap_or("*"));
    match alias {
        Some(alias) => format!("{call} AS {alias}"),
        None => call,
    }
}
