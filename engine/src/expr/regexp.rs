//! `regexp`, `regexp_extract` and `regexp_replace`: Flink's regular-expression functions.
//!
//! A pattern is a constant, compiled when the expression is parsed so that a bad one is an
//! error naming its place before any data moves; evaluation compiles it once per batch (a few
//! microseconds). The `regex` crate's syntax is Java's for what jobs use (classes, groups,
//! quantifiers, anchors, `(?i)`), but it has no look-around and no back-references: such a
//! pattern is refused, never run with another meaning. Matching is "find" (`'b'` matches
//! `'abc'`), as Flink's `REGEXP` is.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, StringArray, StringBuilder};
use arrow::compute::kernels::regexp::regexp_is_match_scalar;
use arrow::error::ArrowError;
use regex::Regex;

/// `pattern` compiled, or why it is not a pattern this crate can run.
pub(super) fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|err| match err {
        regex::Error::Syntax(message) => {
            // The message repeats the pattern over several lines; keep the last, which says
            // what is wrong.
            let last = message.lines().last().unwrap_or_default().trim();
            let reason = last.strip_prefix("error:").unwrap_or(last).trim();
            format!("bad regular expression '{pattern}': {reason}")
        }
        other => format!("bad regular expression '{pattern}': {other}"),
    })
}

fn compiled(pattern: &str) -> Result<Regex, ArrowError> {
    compile(pattern).map_err(ArrowError::InvalidArgumentError)
}

/// `regexp(s, pattern)`, with arrow's kernel.
pub(super) fn is_match(strings: &StringArray, pattern: &str) -> Result<ArrayRef, ArrowError> {
    // Checked first so that a bad pattern gets the same message as at parse time.
    compiled(pattern)?;
    Ok(Arc::new(regexp_is_match_scalar(strings, pattern, None)?))
}

/// `regexp_extract(s, pattern, group)` row by row (arrow has no kernel that picks one group);
/// `groups` has one value per row of `strings`.
pub(super) fn extract(
    strings: &StringArray,
    pattern: &str,
    groups: &Int64Array,
) -> Result<ArrayRef, ArrowError> {
    let regex = compiled(pattern)?;
    let mut out = StringBuilder::with_capacity(strings.len(), strings.values().len() / 2);
    for row in 0..strings.len() {
        let found = (strings.is_valid(row) && groups.is_valid(row))
            .then(|| {
                let group = usize::try_from(groups.value(row)).ok()?;
                let captures = regex.captures(strings.value(row))?;
                captures.get(group).map(|found| found.as_str())
            })
            .flatten();
        out.append_option(found);
    }
    Ok(Arc::new(out.finish()))
}

/// `regexp_replace(s, pattern, replacement)`: every match replaced; `$1` or `${name}` in the
/// replacement insert a capture, `$$` a dollar sign. `replacements` has one value per row.
pub(super) fn replace(
    strings: &StringArray,
    pattern: &str,
    replacements: &StringArray,
) -> Result<ArrayRef, ArrowError> {
    let regex = compiled(pattern)?;
    let mut out = StringBuilder::with_capacity(strings.len(), strings.values().len());
    for row in 0..strings.len() {
        if strings.is_valid(row) && replacements.is_valid(row) {
            out.append_value(regex.replace_all(strings.value(row), replacements.value(row)));
        } else {
            out.append_null();
        }
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, RecordBatch};

    use super::super::{Expr, ExprError};
    use super::*;

    fn strings(text: &str) -> Result<Vec<Option<String>>, ExprError> {
        let batch = RecordBatch::try_from_iter([
            (
                "s",
                Arc::new(StringArray::from(vec![
                    Some("user-42-x"),
                    Some("abc"),
                    None,
                    Some("2024-05-01"),
                ])) as ArrayRef,
            ),
            (
                "g",
                Arc::new(Int64Array::from(vec![Some(2), Some(0), Some(1), None])) as ArrayRef,
            ),
        ])
        .map_err(|source| ExprError::Evaluate {
            expr: "batch".into(),
            source,
        })?;
        let expr = Expr::parse(text)?;
        let result = expr.evaluate(&batch)?;
        assert_eq!(result.data_type(), &expr.data_type(batch.schema_ref())?);
        Ok(match result.data_type() {
            arrow::datatypes::DataType::Boolean => result
                .as_boolean()
                .iter()
                .map(|found| found.map(|found| found.to_string()))
                .collect(),
            _ => result
                .as_string::<i32>()
                .iter()
                .map(|text| text.map(str::to_string))
                .collect(),
        })
    }

    fn some(values: &[Option<&str>]) -> Vec<Option<String>> {
        values
            .iter()
            .map(|value| value.map(str::to_string))
            .collect()
    }

    #[test]
    fn regexp_finds_a_match_anywhere_unless_anchored() -> Result<(), ExprError> {
        assert_eq!(
            strings("regexp(s, 'b')")?,
            some(&[Some("false"), Some("true"), None, Some("false")])
        );
        assert_eq!(
            strings(r"regexp(s, '^\d{4}-\d{2}')")?,
            some(&[Some("false"), Some("false"), None, Some("true")])
        );
        assert_eq!(
            strings("regexp(s, null)")?,
            some(&[None, None, None, None]),
            "a null pattern gives null"
        );
        Ok(())
    }

    #[test]
    fn regexp_extract_picks_the_group_or_gives_null() -> Result<(), ExprError> {
        assert_eq!(
            strings(r"regexp_extract(s, '([a-z]+)-(\d+)', 2)")?,
            some(&[Some("42"), None, None, None])
        );
        assert_eq!(
            strings(r"regexp_extract(s, '[a-z]+')")?,
            some(&[Some("user"), Some("abc"), None, None]),
            "group 0, the whole match, by default"
        );
        assert_eq!(
            strings(r"regexp_extract(s, '([a-z]+)-(\d+)', 7)")?,
            some(&[None, None, None, None]),
            "a group the pattern lacks gives null"
        );
        assert_eq!(
            strings(r"regexp_extract(s, '(\w)(\w)?', g)")?,
            some(&[Some("s"), Some("ab"), None, None]),
            "the group may differ per row; a null group gives null"
        );
        Ok(())
    }

    #[test]
    fn regexp_replace_replaces_every_match_with_captures() -> Result<(), ExprError> {
        assert_eq!(
            strings(r"regexp_replace(s, '\d+', '#')")?,
            some(&[Some("user-#-x"), Some("abc"), None, Some("#-#-#")])
        );
        assert_eq!(
            strings(r"regexp_replace(s, '(\d+)-(\d+)-(\d+)', '$3/$2/$1')")?,
            some(&[Some("user-42-x"), Some("abc"), None, Some("01/05/2024")])
        );
        Ok(())
    }

    #[test]
    fn patterns_are_checked_where_they_are_written() {
        let err = Expr::parse("regexp(s, 'a(b')").expect_err("bad pattern");
        assert_eq!(err.place(), Some((1, 11)), "{err}");
        assert!(err.to_string().contains("`regexp` at column 11"), "{err}");
        let err = Expr::parse("regexp_replace(s, s, 'x')").expect_err("column pattern");
        assert!(err.to_string().contains("must be a constant"), "{err}");
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        let err = compile("a(b").expect_err("unclosed group");
        assert!(err.contains("'a(b'") && err.contains("unclosed"), "{err}");
        let look_around = compile("a(?=b)").expect_err("look-ahead");
        assert!(look_around.contains("look-around"), "{look_around}");
    }
}
