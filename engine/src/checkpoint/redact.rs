//! Masks credentials written into URLs (`s3://KEY:SECRET@bucket`, an `AWS_ENDPOINT` of
//! `http://user:password@host`) in text meant for people: errors, warnings, summaries.

/// What replaces the credentials of a URL.
pub const MASK: &str = "***";

/// `text` with the credentials of every URL in it replaced by [`MASK`]:
/// `s3://KEY:SECRET@bucket/x` reads `s3://***@bucket/x`.
///
/// A URL's credentials are what lies between `://` and the first `@` of the same word when it
/// holds a `:` (`user:password`, even a password with a `/` in it, as AWS secret keys often
/// have) or no `/` (`token@host`). An `@` further down a path (`s3://b/users/a@b.com`) is
/// left alone.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        out.push_str(before);
        rest = after;
        if let Some(at) = credentials_end(rest) {
            out.push_str(MASK);
            rest = &rest[at..];
        }
    }
    out.push_str(rest);
    out
}

/// Whether `url` has credentials written into it.
pub fn has_credentials(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(_, rest)| credentials_end(rest).is_some())
}

/// Where the credentials at the start of `rest` (a URL after its `://`) end: the index of
/// their `@`.
fn credentials_end(rest: &str) -> Option<usize> {
    let word = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\'' | '<' | '>'))
        .unwrap_or(rest.len());
    let at = rest[..word].find('@')?;
    let userinfo = &rest[..at];
    (userinfo.contains(':') || !userinfo.contains('/')).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_masked_and_nothing_else_is() {
        for (text, expected) in [
            ("s3://AKIA:s3cr3t@bucket/x", "s3://***@bucket/x"),
            (
                "checkpoint.location: `s3://AKIA:wJal/K7MD+bP@b/jobs`: bad",
                "checkpoint.location: `s3://***@b/jobs`: bad",
            ),
            (
                "Error performing PUT http://u:p%40ss@127.0.0.1:9000/b/k in 1s - refused",
                "Error performing PUT http://***@127.0.0.1:9000/b/k in 1s - refused",
            ),
            ("http://token@host", "http://***@host"),
            (
                "two: s3://a:b@x and gs://c:d@y.",
                "two: s3://***@x and gs://***@y.",
            ),
            ("s3://bucket/users/a@b.com/x", "s3://bucket/users/a@b.com/x"),
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            ("no url: user:pw@host", "no url: user:pw@host"),
            ("ends with ://", "ends with ://"),
            ("", ""),
        ] {
            assert_eq!(redact(text), expected, "{text}");
        }
    }

    #[test]
    fn a_url_has_credentials_when_redacting_would_change_it() {
        for url in ["s3://k:s@b", "http://t@h:1", "s3://k:a/b@b/x"] {
            assert!(has_credentials(url), "{url}");
        }
        for url in ["s3://b/x", "s3://b/a@b", "/var/a@b", "file:///a@b/c"] {
            assert!(!has_credentials(url), "{url}");
        }
    }
}
