//! Infers column types from sampled values so that a few bad values do not decide a column.
//!
//! The rule (docs/jobs.md): a column takes the type that accepts the most of its sampled values,
//! provided the values it does not accept are few: at most one in a hundred, or a single one.
//! Those are then bad records, dead letters when read; one bad value in the sample costs its own
//! row, not the column's type and every row after it. With more disagreement the column is
//! text. Missing and empty values count for nothing.
//!
//! CSV values are text: the candidates are int64, float64 (which accepts integers too),
//! timestamp (RFC 3339 or integer ms, in the valid range) and bool (`true` / `false`), preferred
//! in that order on a tie. JSON values carry their own type: the candidates are the types the
//! values have, float64 again accepting integers; nested values vote as objects or lists, and
//! an object column has the fields of all its objects.

use std::collections::HashMap;
use std::io::Cursor;

use arrow::array::{Array, StringArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::json::reader::infer_json_schema;
use sluice_engine::event_time::{in_range, parse_timestamp_ms};

/// How many of `values` sampled values may disagree with a column's type.
fn tolerated(values: usize) -> usize {
    (values / 100).max(1)
}

/// The type of a CSV column from its non-empty sampled values: the rule above.
pub fn text_column(values: &[&str]) -> DataType {
    if values.is_empty() {
        return DataType::Utf8;
    }
    let strings = StringArray::from_iter_values(values);
    let parsed = |data_type: &DataType| {
        let options = CastOptions {
            safe: true,
            ..CastOptions::default()
        };
        cast_with_options(&strings, data_type, &options).map_or(0, |a| a.len() - a.null_count())
    };
    let timestamps = values
        .iter()
        .filter(|v| parse_timestamp_ms(v).is_some_and(in_range))
        .count();
    let bools = values
        .iter()
        .filter(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"))
        .count();
    let candidates = [
        (DataType::Int64, parsed(&DataType::Int64)),
        (DataType::Float64, parsed(&DataType::Float64)),
        (crate::spec::timestamp_type(), timestamps),
        (DataType::Boolean, bools),
    ];
    // The first of the most accepting, by the order above.
    let mut best = (DataType::Utf8, 0);
    for (data_type, accepted) in candidates {
        if accepted > best.1 {
            best = (data_type, accepted);
        }
    }
    if best.1 > 0 && values.len() - best.1 <= tolerated(values.len()) {
        best.0
    } else {
        DataType::Utf8
    }
}

/// What a JSON value votes for: its type, or for nested values only their kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Vote {
    Scalar(DataType),
    Object,
    List,
}

impl Vote {
    fn of(data_type: &DataType) -> Option<Vote> {
        match data_type {
            DataType::Null => None,
            DataType::Struct(_) => Some(Vote::Object),
            DataType::List(_) | DataType::LargeList(_) => Some(Vote::List),
            other => Some(Vote::Scalar(other.clone())),
        }
    }

    /// Whether a column of this vote's type reads a value that voted `other`.
    fn accepts(&self, other: &Vote) -> bool {
        self == other
            || (*self == Vote::Scalar(DataType::Float64) && *other == Vote::Scalar(DataType::Int64))
    }

    /// Tie order: integers, then floats, then first seen.
    fn rank(&self) -> u8 {
        match self {
            Vote::Scalar(DataType::Int64) => 0,
            Vote::Scalar(DataType::Float64) => 1,
            _ => 2,
        }
    }
}

/// The columns of JSON `lines` (each one object; lines that are not are left out), in the
/// order their keys first appear, typed by the rule above.
pub fn json_columns(lines: &[&[u8]]) -> Schema {
    let infer =
        |bytes: &[u8]| infer_json_schema(Cursor::new(bytes), None).map(|(schema, _)| schema);
    let mut keys: Vec<String> = Vec::new();
    // Per key, the type of every value that is not null.
    let mut values: HashMap<String, Vec<DataType>> = HashMap::new();
    for line in lines {
        let Ok(schema) = infer(line) else { continue };
        for field in schema.fields() {
            let seen = values.entry(field.name().clone()).or_insert_with(|| {
                keys.push(field.name().clone());
                Vec::new()
            });
            if field.data_type() != &DataType::Null {
                seen.push(field.data_type().clone());
            }
        }
    }
    let fields: Vec<Field> = keys
        .iter()
        .map(|key| {
            let seen = values.get(key).map_or(&[][..], Vec::as_slice);
            Field::new(key, json_column(key, seen), true)
        })
        .collect();
    Schema::new(fields)
}

/// The type of JSON key `key` whose values had the types `seen` (per line).
fn json_column(key: &str, seen: &[DataType]) -> DataType {
    let votes: Vec<Vote> = seen.iter().filter_map(Vote::of).collect();
    if votes.is_empty() {
        return DataType::Null;
    }
    let mut candidates: Vec<&Vote> = Vec::new();
    for vote in &votes {
        if !candidates.contains(&vote) {
            candidates.push(vote);
        }
    }
    let accepted = |c: &Vote| votes.iter().filter(|v| c.accepts(v)).count();
    let mut best = candidates[0];
    for &c in &candidates[1..] {
        let (a, b) = (accepted(c), accepted(best));
        if a > b || (a == b && c.rank() < best.rank()) {
            best = c;
        }
    }
    if votes.len() - accepted(best) > tolerated(votes.len()) {
        // Too much disagreement: text, which reads scalars of any type as their text.
        return DataType::Utf8;
    }
    match best {
        Vote::Scalar(data_type) => data_type.clone(),
        nested => {
            // The fields of every object (or list element) merged; one that cannot merge is
            // left to be a dead letter.
            let mut merged: Option<Field> = None;
            for data_type in seen.iter().filter(|t| Vote::of(t).as_ref() == Some(nested)) {
                let field = Field::new(key, data_type.clone(), true);
                match merged.as_mut() {
                    None => merged = Some(field),
                    Some(into) => {
                        let mut trial = into.clone();
                        if trial.try_merge(&field).is_ok() {
                            *into = trial;
                        }
                    }
                }
            }
            merged.map_or(DataType::Utf8, |f| f.data_type().clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bad_value_does_not_decide_a_csv_column() {
        // Issue 12: `oops` among the times of the sample made the column text.
        assert_eq!(
            text_column(&["1700000000000", "oops", "1700000000002"]),
            DataType::Int64
        );
        assert_eq!(text_column(&["1", "2.5", "3"]), DataType::Float64);
        assert_eq!(text_column(&["1", "2.5", "x"]), DataType::Float64);
        assert_eq!(
            text_column(&["2026-01-01T00:00:00Z", "1767225600000", "soon"]),
            crate::spec::timestamp_type()
        );
        assert_eq!(text_column(&["true", "FALSE", "maybe"]), DataType::Boolean);
        assert_eq!(text_column(&["oops"]), DataType::Utf8);
        assert_eq!(text_column(&[]), DataType::Utf8);
        // Three values of 200 disagree: more than one in a hundred.
        let mut codes = vec!["12"; 197];
        codes.extend(["A7", "B9", "C3"]);
        assert_eq!(text_column(&codes), DataType::Utf8);
        codes[197] = "13";
        assert_eq!(
            text_column(&codes),
            DataType::Int64,
            "two of 200 are tolerated"
        );
        // A time in nanoseconds is not a valid time in ms: a timestamp column it is not.
        assert_eq!(
            text_column(&["2026-01-01T00:00:00Z", "1700000000000000000", "x"]),
            DataType::Utf8
        );
    }

    #[test]
    fn one_bad_value_does_not_decide_a_json_column() {
        let lines: Vec<&[u8]> = vec![
            br#"{"ts": 1700000000000, "v": 1, "tags": {"a": 1}}"#,
            br#"{"ts": "oops", "v": 2.5, "tags": {"b": "x"}}"#,
            br#"{"ts": 1700000000002, "v": null, "tags": [1]}"#,
            b"not json",
            br#"{"ts": 1700000000003, "w": true}"#,
        ];
        let schema = json_columns(&lines);
        let mut names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["tags", "ts", "v", "w"]);
        let type_of = |name: &str| {
            schema
                .field_with_name(name)
                .expect(name)
                .data_type()
                .clone()
        };
        assert_eq!(type_of("ts"), DataType::Int64);
        assert_eq!(type_of("v"), DataType::Float64);
        // The two objects merge; the list is the one value tolerated.
        let DataType::Struct(tags) = type_of("tags") else {
            panic!("tags: {:?}", type_of("tags"));
        };
        let tags: Vec<&str> = tags.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(tags, ["a", "b"]);
        assert_eq!(type_of("w"), DataType::Boolean);
        // Half and half: text.
        let mixed: Vec<&[u8]> = vec![
            br#"{"k": 1}"#,
            br#"{"k": 2}"#,
            br#"{"k": "a"}"#,
            br#"{"k": "b"}"#,
        ];
        assert_eq!(json_columns(&mixed).field(0).data_type(), &DataType::Utf8);
    }
}
