//! Splits expression text into tokens, each with its byte span for error messages.

use super::ExprError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
    /// Unsigned integer digits, kept as text so that `-9223372036854775808` fits once negated.
    Int(String),
    Float(f64),
    Str(String),
    Ident(String),
    QuotedIdent(String),
    /// An operator or punctuation: `( ) , = == != <> < <= > >= + - * / % ||`.
    Symbol(&'static str),
    End,
}

/// A token and where it sits in the text (byte offsets).
#[derive(Debug, Clone)]
pub(super) struct Spanned {
    pub(super) token: Token,
    pub(super) start: usize,
    pub(super) end: usize,
}

const SYMBOLS: [&str; 17] = [
    "==", "!=", "<>", "<=", ">=", "||", "(", ")", ",", "=", "<", ">", "+", "-", "*", "/", "%",
];

/// The 1-based character column of byte offset `at`.
pub(super) fn column(text: &str, at: usize) -> usize {
    text.get(..at).map_or(at, |before| before.chars().count()) + 1
}

/// A syntax error about `text[start..end]`.
pub(super) fn syntax_error(
    text: &str,
    start: usize,
    end: usize,
    message: impl Into<String>,
) -> ExprError {
    let found = text
        .get(start..end)
        .filter(|found| !found.is_empty())
        .unwrap_or("end of input");
    ExprError::Parse {
        column: column(text, start),
        found: found.to_string(),
        message: message.into(),
    }
}

/// The tokens of `text`, ending with [`Token::End`].
pub(super) fn tokenize(text: &str) -> Result<Vec<Spanned>, ExprError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let c = bytes[at];
        if c.is_ascii_whitespace() {
            at += 1;
            continue;
        }
        let start = at;
        let token = if c.is_ascii_digit()
            || (c == b'.' && bytes.get(at + 1).is_some_and(u8::is_ascii_digit))
        {
            let (token, end) = number(text, start)?;
            at = end;
            token
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                at += 1;
            }
            Token::Ident(text[start..at].to_string())
        } else if c == b'\'' || c == b'"' {
            let (value, end) = quoted(text, start)?;
            at = end;
            if c == b'\'' {
                Token::Str(value)
            } else if value.is_empty() {
                return Err(syntax_error(
                    text,
                    start,
                    at,
                    "a quoted column name cannot be empty",
                ));
            } else {
                Token::QuotedIdent(value)
            }
        } else if let Some(symbol) = SYMBOLS
            .iter()
            .find(|symbol| text[at..].starts_with(**symbol))
        {
            at += symbol.len();
            Token::Symbol(symbol)
        } else {
            let end = at + text[at..].chars().next().map_or(1, char::len_utf8);
            return Err(syntax_error(text, start, end, "unexpected character"));
        };
        tokens.push(Spanned {
            token,
            start,
            end: at,
        });
    }
    tokens.push(Spanned {
        token: Token::End,
        start: text.len(),
        end: text.len(),
    });
    Ok(tokens)
}

/// Reads `digits [. digits] [e [+-] digits]` starting at `start`; returns the token and its end.
fn number(text: &str, start: usize) -> Result<(Token, usize), ExprError> {
    let bytes = text.as_bytes();
    let digits = |mut at: usize| {
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        at
    };
    let mut end = digits(start);
    let mut is_float = false;
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end = digits(end + 1);
        is_float = true;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        if bytes.get(end + 1 + sign).is_some_and(u8::is_ascii_digit) {
            end = digits(end + 1 + sign);
            is_float = true;
        }
    }
    if bytes
        .get(end)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
    {
        let mut bad = end;
        while bytes
            .get(bad)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
        {
            bad += 1;
        }
        return Err(syntax_error(text, start, bad, "malformed number"));
    }
    let literal = &text[start..end];
    if !is_float {
        return Ok((Token::Int(literal.to_string()), end));
    }
    match literal.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok((Token::Float(value), end)),
        _ => Err(syntax_error(text, start, end, "float literal out of range")),
    }
}

/// Reads a quoted string or name starting at the quote at `start`; a doubled quote is one quote.
fn quoted(text: &str, start: usize) -> Result<(String, usize), ExprError> {
    let quote = &text[start..=start];
    let mut value = String::new();
    let mut rest = start + 1;
    loop {
        let Some(offset) = text[rest..].find(quote) else {
            let what = if quote == "'" {
                "unterminated string"
            } else {
                "unterminated quoted name"
            };
            return Err(syntax_error(text, start, text.len(), what));
        };
        value.push_str(&text[rest..rest + offset]);
        rest += offset + 1;
        if text[rest..].starts_with(quote) {
            value.push_str(quote);
            rest += 1;
        } else {
            return Ok((value, rest));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Result<Vec<Token>, ExprError> {
        Ok(tokenize(text)?
            .into_iter()
            .map(|spanned| spanned.token)
            .collect())
    }

    #[test]
    fn splits_operators_greedily_and_keeps_spans() -> Result<(), ExprError> {
        let expected = vec![
            Token::Ident("a".into()),
            Token::Symbol("<="),
            Token::Symbol("-"),
            Token::Int("3".into()),
            Token::Symbol("||"),
            Token::Str("x".into()),
            Token::Symbol("<>"),
            Token::QuotedIdent("b c".into()),
            Token::End,
        ];
        assert_eq!(tokens("a<=-3||'x'<>\"b c\"")?, expected);
        let spans: Vec<_> = tokenize("ab  >= 1.5e2")?
            .iter()
            .map(|s| (s.start, s.end))
            .collect();
        assert_eq!(spans, vec![(0, 2), (4, 6), (7, 12), (12, 12)]);
        assert_eq!(
            tokens("1.5e2 2E-1 .5")?[..3],
            [Token::Float(150.0), Token::Float(0.2), Token::Float(0.5)]
        );
        Ok(())
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(column("ééx", 4), 3);
        assert_eq!(column("abc", 0), 1);
    }
}
