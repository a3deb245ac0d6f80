//! The lookup (enrichment) join: each stream row joined with the rows of a bounded table that
//! have equal keys, the table loaded once and indexed by a backend.
//!
//! Output columns: the stream's, then the table's except its key columns. A table column whose
//! name the stream already uses is renamed `<table name>.<column>`. Keys are compared as the
//! stream's key types (table key columns are cast to them); a null in any key column never
//! matches. Inner joins drop stream rows without a match; left outer joins keep them once,
//! with nulls for the table's columns. Rows keep stream order; several matches of one stream
//! row follow table order. With a reload interval, the table is read again in the background
//! and swapped in between micro-batches once read (`reload.rs`).

mod reload;

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{CastOptions, cast_with_options, take};
use arrow::datatypes::{Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use super::{Emitted, Operator};
use crate::backend::{Backend, LookupIndex};
use crate::error::{Error, Result};
use crate::keys::KeyEncoder;
use reload::Reloader;
pub use reload::TableReload;

/// Which stream rows a join keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinKind {
    /// Only stream rows with a match, once per match.
    #[default]
    Inner,
    /// Every stream row: once per match, or once with nulls when there is none.
    Left,
    /// Every row of both streams: matched rows, and each row without a match once with nulls
    /// for the other side's columns (stream window joins only).
    Full,
}

/// A lookup join: the stream's `on` columns equal the table's `table_on` columns.
#[derive(Debug, Clone)]
pub struct LookupJoinSpec {
    /// The table's name: prefixes its clashing column names and names it in messages.
    pub name: String,
    /// The whole table.
    pub table: RecordBatch,
    /// Stream key columns.
    pub on: Vec<String>,
    /// Table key columns, pairwise with `on`.
    pub table_on: Vec<String>,
    /// Inner or left outer.
    pub kind: JoinKind,
    /// Read the table again this often (processing time); `None`: never.
    pub reload: Option<TableReload>,
}

/// Joins each micro-batch with an indexed table.
#[derive(Debug)]
pub struct LookupJoinOperator {
    name: String,
    keys: KeyEncoder,
    stream_keys: Vec<usize>,
    /// The table's key columns, by name, and which columns join the output.
    table_on: Vec<String>,
    table_schema: SchemaRef,
    backend: Arc<dyn Backend>,
    reloader: Option<Reloader>,
    /// The table's columns that appear in the output.
    table_columns: Vec<ArrayRef>,
    index: Box<dyn LookupIndex>,
    kind: JoinKind,
    schema: SchemaRef,
    placement: String,
}

impl LookupJoinOperator {
    /// Checks `spec` against `input`, indexes the table on `backend`; `setting` names the job
    /// key in errors.
    pub fn try_new(
        spec: &LookupJoinSpec,
        input: SchemaRef,
        backend: &Arc<dyn Backend>,
        setting: &str,
    ) -> Result<Self> {
        if spec.kind == JoinKind::Full {
            return Err(Error::config(
                format!("{setting}.kind"),
                "a lookup join is inner or left (a table row without a stream row has no time \
                 to be emitted at)",
            ));
        }
        if spec.on.is_empty() || spec.on.len() != spec.table_on.len() {
            return Err(Error::config(
                format!("{setting}.table_on"),
                format!(
                    "needs one table column per stream key: {} stream key(s), {} table key(s)",
                    spec.on.len(),
                    spec.table_on.len()
                ),
            ));
        }
        let keys = KeyEncoder::new(&input, &spec.on, &format!("{setting}.on"))?;
        let stream_keys: Vec<usize> = spec
            .on
            .iter()
            .map(|k| {
                input
                    .index_of(k)
                    .map_err(Error::arrow("resolving a join key"))
            })
            .collect::<Result<_>>()?;
        let table_schema = spec.table.schema();
        let mut keys = keys;
        let index = build_index(
            &spec.table,
            &spec.table_on,
            &spec.name,
            &mut keys,
            backend.as_ref(),
            setting,
        )?;

        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut table_columns = Vec::new();
        for (at, field) in table_schema.fields().iter().enumerate() {
            if spec.table_on.contains(field.name()) {
                continue;
            }
            let mut out = field.as_ref().clone();
            if fields.iter().any(|f| f.name() == out.name()) {
                out = out.with_name(format!("{}.{}", spec.name, field.name()));
            }
            if fields.iter().any(|f| f.name() == out.name()) {
                return Err(Error::config(
                    format!("{setting}.name"),
                    format!("output column `{}` appears twice", out.name()),
                ));
            }
            if spec.kind == JoinKind::Left {
                out = out.with_nullable(true);
            }
            fields.push(out);
            table_columns.push(spec.table.column(at).clone());
        }
        Ok(LookupJoinOperator {
            name: spec.name.clone(),
            keys,
            stream_keys,
            table_on: spec.table_on.clone(),
            table_schema,
            backend: Arc::clone(backend),
            reloader: spec.reload.clone().map(Reloader::new),
            table_columns,
            placement: backend.lookup_placement(),
            index,
            kind: spec.kind,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// Table rows with a valid key (indexed).
    pub fn table_rows(&self) -> usize {
        self.index.build_rows()
    }

    /// Swaps in a table the reloader has read, if one is ready; a table that does not fit
    /// (other columns or types) or fails to load keeps the old one, with a warning.
    fn swap_reloaded(&mut self) {
        let Some(reloader) = &mut self.reloader else {
            return;
        };
        let Some(loaded) = reloader.poll() else {
            return;
        };
        let swapped = loaded.and_then(|table| {
            if table.schema().fields() != self.table_schema.fields() {
                return Err(Error::config(
                    "reload",
                    format!(
                        "the table's columns changed from {} to {}",
                        self.table_schema,
                        table.schema()
                    ),
                ));
            }
            let index = build_index(
                &table,
                &self.table_on,
                &self.name,
                &mut self.keys,
                self.backend.as_ref(),
                "reload",
            )?;
            let columns = self
                .table_schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| !self.table_on.contains(f.name()))
                .map(|(at, _)| table.column(at).clone())
                .collect();
            Ok((index, columns))
        });
        match swapped {
            Ok((index, columns)) => {
                self.index = index;
                self.table_columns = columns;
            }
            Err(e) => eprintln!(
                "sluice: warning: reloading table `{}` failed, keeping the previous one: {e}",
                self.name
            ),
        }
    }
}

/// Encodes `table`'s key columns (`table_on`, cast to the stream's key types) with `keys` and
/// indexes them on `backend`.
fn build_index(
    table: &RecordBatch,
    table_on: &[String],
    name: &str,
    keys: &mut KeyEncoder,
    backend: &dyn Backend,
    setting: &str,
) -> Result<Box<dyn LookupIndex>> {
    let table_schema = table.schema();
    let mut build_columns = Vec::with_capacity(table_on.len());
    for (i, (column_name, field)) in table_on.iter().zip(keys.fields()).enumerate() {
        let at = table_schema.index_of(column_name).map_err(|_| {
            let names: Vec<&str> = table_schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            Error::config(
                format!("{setting}.table_on[{i}]"),
                format!(
                    "table `{name}` has no column `{column_name}` (it has: {})",
                    names.join(", ")
                ),
            )
        })?;
        // Unsafe casts fail on a value that does not convert instead of making it null,
        // which would silently never match.
        let strict = CastOptions {
            safe: false,
            ..CastOptions::default()
        };
        let column = cast_with_options(table.column(at), field.data_type(), &strict)
                .map_err(|e| {
                Error::config(
                    format!("{setting}.table_on[{i}]"),
                    format!(
                        "table column `{column_name}` ({}) cannot be compared with stream key `{}` ({}): {e}",
                        table_schema.field(at).data_type(),
                        field.name(),
                        field.data_type()
                    ),
                )
            })?;
        build_columns.push(column);
    }
    let valid: Vec<bool> = (0..table.num_rows())
        .map(|r| build_columns.iter().all(|c| c.is_valid(r)))
        .collect();
    let mut ids = Vec::new();
    keys.encode_columns(&build_columns, &mut ids)?;
    backend.lookup_index(&ids, &valid)
}

impl Operator for LookupJoinOperator {
    fn name(&self) -> &'static str {
        "lookup_join"
    }

    fn placement(&self) -> Option<&str> {
        Some(&self.placement)
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&mut self, batch: RecordBatch, out: &mut Emitted) -> Result<()> {
        self.swap_reloaded();
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let key_columns: Vec<ArrayRef> = self
            .stream_keys
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        let (ids, valid) = self.keys.lookup_columns(&key_columns)?;
        let matches = self
            .index
            .probe(&ids, &valid, self.kind == JoinKind::Left)?;
        if matches.probe.is_empty() {
            return Ok(());
        }
        let context = || format!("joining with table `{}`", self.name);
        let probe = UInt32Array::from(matches.probe);
        let build = UInt32Array::from(matches.build);
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for column in batch.columns() {
            columns.push(take(column, &probe, None).map_err(Error::arrow(context()))?);
        }
        for column in &self.table_columns {
            columns.push(take(column, &build, None).map_err(Error::arrow(context()))?);
        }
        out.batches.push(
            RecordBatch::try_new(self.schema.clone(), columns).map_err(Error::arrow(context()))?,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, Int32Array, Int64Array, StringArray};
    use arrow::compute::cast;
    use arrow::datatypes::{DataType, Int64Type};

    use super::*;
    use crate::backend::CpuBackend;

    fn stream() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "card",
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(2),
                    None,
                    Some(3),
                    Some(1),
                ])) as ArrayRef,
            ),
            (
                "merchant",
                Arc::new(StringArray::from(vec![
                    Some("m1"),
                    Some("m2"),
                    Some("m1"),
                    None,
                    Some("m9"),
                ])) as _,
            ),
            (
                "amount",
                Arc::new(Int64Array::from(vec![10, 20, 30, 40, 50])) as _,
            ),
        ])
        .expect("stream")
    }

    /// Merchants: m1 twice (two risk rows), m2 once, a null merchant, and a clashing column.
    fn merchants() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "merchant_id",
                Arc::new(StringArray::from(vec![
                    Some("m1"),
                    Some("m2"),
                    None,
                    Some("m1"),
                ])) as ArrayRef,
            ),
            ("risk", Arc::new(Int32Array::from(vec![7, 3, 9, 8])) as _),
            (
                "amount",
                Arc::new(Int64Array::from(vec![100, 200, 300, 400])) as _,
            ),
        ])
        .expect("table")
    }

    fn join(
        kind: JoinKind,
        on: &str,
        table_on: &str,
        table: RecordBatch,
    ) -> Result<LookupJoinOperator> {
        let spec = LookupJoinSpec {
            name: "merchants".into(),
            table,
            on: vec![on.into()],
            table_on: vec![table_on.into()],
            kind,
            reload: None,
        };
        let cpu: Arc<dyn Backend> = Arc::new(CpuBackend::new());
        LookupJoinOperator::try_new(&spec, stream().schema(), &cpu, "operators[0]")
    }

    fn run(op: &mut LookupJoinOperator) -> RecordBatch {
        let mut out = Emitted::default();
        op.process(stream(), &mut out).expect("process");
        assert_eq!(out.batches.len(), 1);
        out.batches.remove(0)
    }

    fn ints(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
        let column = cast(batch.column_by_name(name).expect(name), &DataType::Int64).expect("cast");
        column.as_primitive::<Int64Type>().iter().collect()
    }

    #[test]
    fn inner_joins_every_match_and_null_keys_never_match() {
        let mut op = join(JoinKind::Inner, "merchant", "merchant_id", merchants()).expect("join");
        assert_eq!(
            op.table_rows(),
            3,
            "the null-keyed table row is not indexed"
        );
        let out = run(&mut op);
        let schema = out.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            ["card", "merchant", "amount", "risk", "merchants.amount"]
        );
        // Row 0 (m1) matches table rows 0 and 3, row 1 (m2) row 1, row 2 (m1) rows 0 and 3;
        // row 3 has a null merchant and row 4 an unknown one.
        assert_eq!(
            ints(&out, "amount"),
            [Some(10), Some(10), Some(20), Some(30), Some(30)]
        );
        assert_eq!(
            ints(&out, "risk"),
            [Some(7), Some(8), Some(3), Some(7), Some(8)]
        );
        assert_eq!(
            ints(&out, "merchants.amount"),
            [Some(100), Some(400), Some(200), Some(100), Some(400)]
        );
    }

    #[test]
    fn left_keeps_unmatched_rows_once_with_nulls() {
        let mut op = join(JoinKind::Left, "merchant", "merchant_id", merchants()).expect("join");
        let out = run(&mut op);
        assert_eq!(
            ints(&out, "amount"),
            [
                Some(10),
                Some(10),
                Some(20),
                Some(30),
                Some(30),
                Some(40),
                Some(50)
            ]
        );
        assert_eq!(
            ints(&out, "risk"),
            [Some(7), Some(8), Some(3), Some(7), Some(8), None, None]
        );
        assert!(
            out.schema()
                .field_with_name("risk")
                .expect("risk")
                .is_nullable()
        );
    }

    #[test]
    fn integer_keys_of_other_widths_match_and_an_empty_table_matches_nothing() {
        let cards = RecordBatch::try_from_iter([
            (
                "card_id",
                Arc::new(Int32Array::from(vec![Some(3), None, Some(1)])) as ArrayRef,
            ),
            ("limit", Arc::new(Int64Array::from(vec![300, 0, 100])) as _),
        ])
        .expect("cards");
        let mut op = join(JoinKind::Inner, "card", "card_id", cards.clone()).expect("join");
        let out = run(&mut op);
        assert_eq!(ints(&out, "card"), [Some(1), Some(3), Some(1)]);
        assert_eq!(ints(&out, "limit"), [Some(100), Some(300), Some(100)]);
        let mut empty = join(JoinKind::Inner, "card", "card_id", cards.slice(0, 0)).expect("join");
        let mut out = Emitted::default();
        empty.process(stream(), &mut out).expect("process");
        assert!(out.batches.is_empty());
    }

    #[test]
    fn bad_keys_are_config_errors_naming_the_setting() {
        let error = join(JoinKind::Inner, "merchant", "nope", merchants()).expect_err("missing");
        let text = error.to_string();
        assert!(
            text.starts_with("operators[0].table_on[0]: table `merchants` has no column `nope`"),
            "{text}"
        );
        let error = join(JoinKind::Inner, "nope", "merchant_id", merchants()).expect_err("missing");
        assert!(error.to_string().starts_with("operators[0].on"), "{error}");
        let error = join(JoinKind::Inner, "card", "merchant_id", merchants()).expect_err("types");
        assert!(error.to_string().contains("cannot be compared"), "{error}");
    }

    /// The merchants table with every risk raised by `bump`.
    fn merchants_bumped(bump: i32) -> RecordBatch {
        let table = merchants();
        let risk: Int32Array = table
            .column(1)
            .as_primitive::<arrow::datatypes::Int32Type>()
            .iter()
            .map(|r| r.map(|r| r + bump))
            .collect();
        let mut columns = table.columns().to_vec();
        columns[1] = Arc::new(risk);
        RecordBatch::try_new(table.schema(), columns).expect("bumped")
    }

    #[test]
    fn a_reloaded_table_is_swapped_in_between_batches_and_a_bad_one_is_not() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        // First reload: a table without the risk column (refused); then a failing read
        // (refused); then every risk plus 100.
        let load = move || -> Result<RecordBatch> {
            match counter.fetch_add(1, Ordering::SeqCst) {
                0 => Ok(merchants().project(&[0, 2]).expect("project")),
                1 => Err(Error::Internal("the file is being rewritten".into())),
                _ => Ok(merchants_bumped(100)),
            }
        };
        let spec = LookupJoinSpec {
            name: "merchants".into(),
            table: merchants(),
            on: vec!["merchant".into()],
            table_on: vec!["merchant_id".into()],
            kind: JoinKind::Inner,
            reload: Some(TableReload {
                every: std::time::Duration::from_millis(5),
                load: Arc::new(load),
            }),
        };
        let cpu: Arc<dyn Backend> = Arc::new(CpuBackend::new());
        let mut op = LookupJoinOperator::try_new(&spec, stream().schema(), &cpu, "operators[0]")
            .expect("join");
        assert_eq!(
            ints(&run(&mut op), "risk"),
            [Some(7), Some(8), Some(3), Some(7), Some(8)]
        );
        let started = std::time::Instant::now();
        loop {
            std::thread::sleep(std::time::Duration::from_millis(5));
            let risk = ints(&run(&mut op), "risk");
            if risk[0] == Some(107) {
                assert_eq!(
                    risk,
                    [Some(107), Some(108), Some(103), Some(107), Some(108)]
                );
                break;
            }
            assert_eq!(
                risk[0],
                Some(7),
                "until the good table arrives, the old one is used"
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "the reloaded table never arrived"
            );
        }
        assert!(calls.load(Ordering::SeqCst) >= 3);
    }
}
