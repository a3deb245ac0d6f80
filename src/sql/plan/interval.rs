//! SQL `INTERVAL '5' SECOND` literals as milliseconds.

use sqlparser::ast::Expr;

/// The length of `expr` in milliseconds, or why it is not a fixed, non-negative interval.
///
/// Accepts `INTERVAL 'n' UNIT` (units from millisecond to day, singular or plural, as Flink
/// writes them) and `INTERVAL 'n unit'`; months and years have no fixed length in ms.
pub fn millis(expr: &Expr) -> Result<i64, String> {
    let millis = sluice_engine::expr::interval_millis(expr)?;
    if millis < 0 {
        return Err(format!("interval `{expr}` is negative"));
    }
    Ok(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_engine::dialect;

    fn interval(text: &str) -> Result<i64, String> {
        let mut parser = dialect::parser(text).map_err(|err| err.message)?;
        let expr = parser.parse_expr().map_err(|err| err.to_string())?;
        millis(&expr)
    }

    #[test]
    fn lengths_are_the_engines_and_negative_ones_are_refused() {
        assert_eq!(interval("INTERVAL '5' SECOND"), Ok(5_000));
        assert!(interval("INTERVAL '-1' SECOND").is_err_and(|e| e.contains("negative")));
        assert!(interval("5").is_err_and(|e| e.contains("INTERVAL '5' SECOND")));
    }
}
