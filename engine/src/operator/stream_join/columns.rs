//! The columns a stream join emits and how they are named.
//!
//! Order: the key columns (left names), `window_start` and `window_end` for a window join,
//! the left side's other columns, the right side's other columns (its key columns are
//! dropped: they equal the left's; a full outer join's right rows without a match give the
//! keys from their own key columns), then the joined row's event time under the left side's
//! event-time column name. Each side's own event-time column, and any column name both sides
//! use, is renamed `<stream>.<column>`.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::JoinInput;
use crate::error::{Error, Result};
use crate::event_time::event_time_type;
use crate::operator::JoinKind;

/// Output column names of a window join's bounds.
pub(super) const WINDOW_START: &str = "window_start";
pub(super) const WINDOW_END: &str = "window_end";

/// The output names of each side's non-key columns: `(stream, event-time column, non-key
/// columns)` per side, the left key names, and whether the join is windowed. A name stays as
/// it is unless it is its side's event-time column, a name the output reserves (the left
/// keys, the left event-time column, the window bounds) or a non-key name of the other side:
/// then it becomes `<stream>.<column>`. Front ends resolve `alias.column` with it.
pub fn output_names(
    left: (&str, &str, &[String]),
    right: (&str, &str, &[String]),
    left_keys: &[String],
    windowed: bool,
) -> (Vec<String>, Vec<String>) {
    let mut reserved: Vec<&str> = left_keys.iter().map(String::as_str).collect();
    reserved.push(left.1);
    if windowed {
        reserved.extend([WINDOW_START, WINDOW_END]);
    }
    let side = |(stream, time, columns): (&str, &str, &[String]), other: &[String]| {
        columns
            .iter()
            .map(|name| {
                if name == time || reserved.contains(&name.as_str()) || other.contains(name) {
                    format!("{stream}.{name}")
                } else {
                    name.clone()
                }
            })
            .collect()
    };
    (side(left, right.2), side(right, left.2))
}

/// Which input columns make the output, and its schema.
#[derive(Debug)]
pub(super) struct JoinColumns {
    pub schema: SchemaRef,
    pub left_keys: Vec<usize>,
    pub right_keys: Vec<usize>,
    pub left: Vec<usize>,
    pub right: Vec<usize>,
    pub windowed: bool,
}

impl JoinColumns {
    /// Names the output of joining `left` and `right` on `left_keys` / `right_keys` (column
    /// indices); an outer `kind` makes the other side's columns nullable. `setting` names
    /// the job key.
    pub(super) fn new(
        left: &JoinInput,
        right: &JoinInput,
        left_keys: &[usize],
        right_keys: &[usize],
        windowed: bool,
        kind: JoinKind,
        setting: &str,
    ) -> Result<Self> {
        let right_nullable = matches!(kind, JoinKind::Left | JoinKind::Full);
        let left_nullable = kind == JoinKind::Full;
        let lschema = &left.schema;
        let rschema = &right.schema;
        let left_cols: Vec<usize> = (0..lschema.fields().len())
            .filter(|i| !left_keys.contains(i))
            .collect();
        let right_cols: Vec<usize> = (0..rschema.fields().len())
            .filter(|i| !right_keys.contains(i))
            .collect();
        let time = left.time_column.as_str();
        let names = |input: &JoinInput, cols: &[usize]| -> Vec<String> {
            cols.iter()
                .map(|&i| input.schema.field(i).name().clone())
                .collect()
        };
        let key_names: Vec<String> = left_keys
            .iter()
            .map(|&k| lschema.field(k).name().clone())
            .collect();
        let (left_names, right_names) = (names(left, &left_cols), names(right, &right_cols));
        let (left_out, right_out) = output_names(
            (&left.name, time, &left_names),
            (&right.name, &right.time_column, &right_names),
            &key_names,
            windowed,
        );
        let renamed = |input: &JoinInput, i: usize, name: &String| {
            input.schema.field(i).as_ref().clone().with_name(name)
        };
        let mut fields: Vec<Field> = left_keys
            .iter()
            .map(|&k| {
                let field = lschema.field(k).as_ref().clone();
                let nullable = field.is_nullable() || left_nullable;
                field.with_nullable(nullable)
            })
            .collect();
        if windowed {
            let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
            fields.push(Field::new(WINDOW_START, ts.clone(), false));
            fields.push(Field::new(WINDOW_END, ts, false));
        }
        for (&i, name) in left_cols.iter().zip(&left_out) {
            let field = renamed(left, i, name);
            let nullable = field.is_nullable() || left_nullable;
            fields.push(field.with_nullable(nullable));
        }
        for (&i, name) in right_cols.iter().zip(&right_out) {
            let field = renamed(right, i, name);
            fields.push(if right_nullable {
                field.with_nullable(true)
            } else {
                field
            });
        }
        fields.push(Field::new(time, event_time_type(), false));
        for (i, f) in fields.iter().enumerate() {
            if fields[..i].iter().any(|g| g.name() == f.name()) {
                return Err(Error::config(
                    setting,
                    format!(
                        "the joined output would have two columns named `{}`; rename one side's \
                         column before the join",
                        f.name()
                    ),
                ));
            }
        }
        Ok(JoinColumns {
            schema: Arc::new(Schema::new(fields)),
            left_keys: left_keys.to_vec(),
            right_keys: right_keys.to_vec(),
            left: left_cols,
            right: right_cols,
            windowed,
        })
    }

    /// Assembles output rows: `left(i)` / `right(i)` gather input column `i` for every output
    /// row, `windows` gives each row's window bounds (window joins), `time` its event time.
    /// The keys come from the left rows.
    pub(super) fn build(
        &self,
        left: impl Fn(usize) -> Result<ArrayRef>,
        right: impl Fn(usize) -> Result<ArrayRef>,
        windows: Option<(Vec<i64>, Vec<i64>)>,
        time: Vec<i64>,
    ) -> Result<RecordBatch> {
        let keys = self
            .left_keys
            .iter()
            .map(|&k| left(k))
            .collect::<Result<Vec<_>>>()?;
        self.assemble(keys, left, right, windows, time)
    }

    /// As [`JoinColumns::build`] for rows of the right side alone (a full outer join's right
    /// rows without a match): the keys come from the right rows' key columns, cast to the
    /// output's key types, and every left column is null.
    pub(super) fn build_right(
        &self,
        left: impl Fn(usize) -> Result<ArrayRef>,
        right: impl Fn(usize) -> Result<ArrayRef>,
        windows: Option<(Vec<i64>, Vec<i64>)>,
        time: Vec<i64>,
    ) -> Result<RecordBatch> {
        let keys = self
            .right_keys
            .iter()
            .zip(self.schema.fields())
            .map(|(&k, field)| {
                let column = right(k)?;
                if column.data_type() == field.data_type() {
                    Ok(column)
                } else {
                    arrow::compute::cast(&column, field.data_type()).map_err(Error::arrow(
                        "casting a right join key to the left key's type",
                    ))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        self.assemble(keys, left, right, windows, time)
    }

    fn assemble(
        &self,
        keys: Vec<ArrayRef>,
        left: impl Fn(usize) -> Result<ArrayRef>,
        right: impl Fn(usize) -> Result<ArrayRef>,
        windows: Option<(Vec<i64>, Vec<i64>)>,
        time: Vec<i64>,
    ) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        columns.extend(keys);
        if self.windowed {
            let (starts, ends) = windows.ok_or_else(|| {
                Error::Internal("a window join's rows came without windows".into())
            })?;
            columns.push(timestamps(starts));
            columns.push(timestamps(ends));
        }
        for &i in &self.left {
            columns.push(left(i)?);
        }
        for &i in &self.right {
            columns.push(right(i)?);
        }
        columns.push(timestamps(time));
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(Error::arrow("assembling joined rows"))
    }
}

fn timestamps(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
}
