//! SQL `INTERVAL '5' SECOND` literals as milliseconds, for expressions and the SQL front end.

use sqlparser::ast::{DateTimeField, Expr, Interval, Value};

use crate::duration::DurationMs;

/// The units an interval may name, from the largest, with their length in milliseconds.
pub(super) const UNITS: [(&str, i64); 5] = [
    ("DAY", 86_400_000),
    ("HOUR", 3_600_000),
    ("MINUTE", 60_000),
    ("SECOND", 1_000),
    ("MILLISECOND", 1),
];

/// The length of the unit called `name` (`HOUR` or `hours`, any case), from day down to
/// millisecond.
pub(super) fn unit_length(name: &str) -> Option<i64> {
    let name = name.to_ascii_uppercase();
    let singular = name.strip_suffix('S').unwrap_or(&name);
    UNITS
        .iter()
        .find(|(unit, _)| *unit == singular)
        .map(|(_, length)| *length)
}

/// The length of `expr` in milliseconds (negative for `INTERVAL '-5' SECOND`), or why it is not
/// a fixed interval.
///
/// Accepts `INTERVAL 'n' UNIT` (units from millisecond to day, singular or plural, as Flink
/// writes them) and `INTERVAL 'n unit'`; months and years have no fixed length in ms.
pub fn interval_millis(expr: &Expr) -> Result<i64, String> {
    let Expr::Interval(Interval {
        value,
        leading_field,
        last_field: None,
        ..
    }) = expr
    else {
        return Err(format!(
            "expected an interval such as INTERVAL '5' SECOND, found `{expr}`"
        ));
    };
    let text = match value.as_ref() {
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(text) | Value::Number(text, _) => text.trim().to_string(),
            _ => {
                return Err(format!(
                    "expected the interval's length in quotes, found `{value}`"
                ));
            }
        },
        other => {
            return Err(format!(
                "expected the interval's length in quotes, found `{other}`"
            ));
        }
    };
    let Some(field) = leading_field else {
        // `INTERVAL '10 seconds'`: sluice's own duration syntax.
        return DurationMs::parse(&text)
            .map(|duration| duration.as_millis())
            .map_err(|err| format!("interval `{expr}`: {err}"));
    };
    let unit: i64 = match field {
        DateTimeField::Millisecond | DateTimeField::Milliseconds => 1,
        DateTimeField::Second | DateTimeField::Seconds => 1_000,
        DateTimeField::Minute | DateTimeField::Minutes => 60_000,
        DateTimeField::Hour | DateTimeField::Hours => 3_600_000,
        DateTimeField::Day | DateTimeField::Days => 86_400_000,
        other => {
            return Err(format!(
                "interval unit {other} is not supported (use MILLISECOND, SECOND, MINUTE, HOUR or DAY)"
            ));
        }
    };
    let count: i64 = text
        .parse()
        .map_err(|_| format!("expected a whole number in `{expr}`, found '{text}'"))?;
    count
        .checked_mul(unit)
        .ok_or_else(|| format!("interval `{expr}` is too long"))
}

/// `INTERVAL 'n' UNIT` with the largest unit that divides `millis`, which parses back to it.
pub(super) fn write(f: &mut std::fmt::Formatter<'_>, millis: i64) -> std::fmt::Result {
    let (unit, length) = UNITS
        .iter()
        .find(|(_, length)| millis % length == 0)
        .copied()
        .unwrap_or(("MILLISECOND", 1));
    write!(f, "INTERVAL '{}' {unit}", millis / length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect;

    fn interval(text: &str) -> Result<i64, String> {
        let mut parser = dialect::parser(text).map_err(|err| err.message)?;
        let expr = parser.parse_expr().map_err(|err| err.to_string())?;
        interval_millis(&expr)
    }

    #[test]
    fn units_and_spellings() {
        assert_eq!(interval("INTERVAL '5' SECOND"), Ok(5_000));
        assert_eq!(interval("INTERVAL '10' MINUTES"), Ok(600_000));
        assert_eq!(interval("interval '2' hour"), Ok(7_200_000));
        assert_eq!(interval("INTERVAL '1' DAY"), Ok(86_400_000));
        assert_eq!(interval("INTERVAL '250' MILLISECOND"), Ok(250));
        assert_eq!(interval("INTERVAL '-3' SECOND"), Ok(-3_000));
        assert_eq!(interval("INTERVAL '90s'"), Ok(90_000));
        assert!(interval("INTERVAL '1' MONTH").is_err_and(|e| e.contains("MONTH")));
        assert!(interval("INTERVAL 'x' SECOND").is_err_and(|e| e.contains("'x'")));
        assert!(interval("5").is_err_and(|e| e.contains("INTERVAL '5' SECOND")));
    }
}
