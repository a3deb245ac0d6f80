//! The engine's error type: one enum, variants grouped by what the caller should do.

use std::path::PathBuf;

use arrow::error::ArrowError;

use crate::expr::ExprError;

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
///
/// Grouped by whose fault it is: the user's job or data (fix the input), the outside world
/// (retry), or ours (a bug: report it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A job setting is invalid; `key` names the setting (`operators[1].window.size`).
    #[error("{key}: {message}")]
    Config { key: String, message: String },

    /// A column is missing or has a type the operation cannot use.
    #[error("column `{column}`: {message}")]
    Schema { column: String, message: String },

    /// An expression failed to parse, type-check or evaluate.
    #[error(transparent)]
    Expr(#[from] ExprError),

    /// A malformed record with `--strict` on: the job stops at the first one.
    #[error("malformed record in {source_name} at {location}: {reason}")]
    Malformed {
        source_name: String,
        location: String,
        reason: String,
    },

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A source failed for a reason outside the data (network, permissions).
    #[error("source {name}: {message}")]
    Source { name: String, message: String },

    /// A sink failed to write or commit.
    #[error("sink {name}: {message}")]
    Sink { name: String, message: String },

    /// An Arrow kernel failed; `context` says what the engine was doing.
    #[error("{context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: ArrowError,
    },

    /// The GPU failed or cannot hold the job (device lost, out of memory, beyond its limits).
    /// The message says what happened; `--backend cpu` runs the same job without it.
    #[error("GPU backend: {0}")]
    Gpu(String),

    /// Checkpoint storage failed (after the store's own retries): `location` is the
    /// checkpoint location as configured.
    #[error("checkpoints at {location}: {message}")]
    Checkpoint { location: String, message: String },

    /// The job was cancelled (Ctrl-C) before it finished.
    #[error("job cancelled")]
    Cancelled,

    /// A broken invariant inside the engine: a bug, please report it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A configuration error at `key`.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// A schema error about `column`.
    pub fn schema(column: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Schema {
            column: column.into(),
            message: message.into(),
        }
    }

    /// Wraps an Arrow error with what the engine was doing.
    pub fn arrow(context: impl Into<String>) -> impl FnOnce(ArrowError) -> Self {
        let context = context.into();
        move |source| Error::Arrow { context, source }
    }

    /// Wraps an I/O error with the path involved.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    /// Whether the error is the user's to fix (job file or data) rather than ours or the world's.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::Config { .. } | Error::Schema { .. } | Error::Expr(_) | Error::Malformed { .. }
        )
    }
}
