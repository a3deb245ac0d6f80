//! The OVER operator's checkpoint state: its key dictionary, the rows still waiting for the
//! watermark, the latest watermark, and its backend's frames, with the spec that produced
//! them so that an incompatible job change is refused.

use arrow::compute::concat_batches;
use serde::{Deserialize, Serialize};

use super::{OverAggregateOperator, OverAggregateSpec};
use crate::error::{Error, Result};
use crate::state::{StateHeader, StateSnapshot};

/// The layout of the operator's state.
const STATE_FORMAT: &str = "over/1";
const BACKEND: &str = "backend.";
const KEYS: &str = "keys";
const PENDING: &str = "pending";

#[derive(Debug, Serialize, Deserialize)]
struct OverMeta {
    spec: OverAggregateSpec,
    key_types: Vec<String>,
    watermark: i64,
    backend: StateHeader,
}

impl OverAggregateOperator {
    fn key_types(&self) -> Vec<String> {
        self.keys
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect()
    }

    pub(super) fn save(&mut self) -> Result<StateSnapshot> {
        let backend = self.state.snapshot()?;
        let meta = OverMeta {
            spec: self.spec.clone(),
            key_types: self.key_types(),
            watermark: self.watermark,
            backend: backend.header(),
        };
        let meta = serde_json::to_value(meta)
            .map_err(|e| Error::Internal(format!("OVER state metadata: {e}")))?;
        let pending = concat_batches(&self.input_schema, self.pending.iter().map(|p| &p.batch))
            .map_err(Error::arrow("saving OVER rows"))?;
        let mut snapshot = StateSnapshot::new(STATE_FORMAT, meta).with_batch(PENDING, pending);
        if let Some(keys) = self.keys.snapshot()? {
            snapshot = snapshot.with_batch(KEYS, keys);
        }
        Ok(snapshot.with_nested(BACKEND, backend))
    }

    pub(super) fn load(&mut self, state: &StateSnapshot) -> Result<()> {
        state.expect_format(STATE_FORMAT)?;
        let meta: OverMeta = state.meta_as()?;
        self.check_compatible(&meta)?;
        if let Ok(keys) = state.batch(KEYS) {
            self.keys.restore(keys)?;
        }
        self.state.restore(&state.nested(BACKEND, meta.backend)?)?;
        self.watermark = meta.watermark;
        let pending = state.batch(PENDING)?;
        if pending.schema() != self.input_schema {
            return Err(Error::config(
                "checkpoint",
                "the OVER operator's input columns changed since the checkpoint (start \
                 without the checkpoint, or restore the old job)",
            ));
        }
        if pending.num_rows() > 0 {
            self.hold(pending.clone())?;
        }
        Ok(())
    }

    /// Refuses state saved by a job whose OVER operator differs, saying how.
    fn check_compatible(&self, saved: &OverMeta) -> Result<()> {
        let differs = |what: &str, was: String, now: String| {
            Err(Error::config(
                "checkpoint",
                format!(
                    "the job changed incompatibly with its saved state: {what} was {was}, \
                     now {now} (start without the checkpoint, or restore the old job)"
                ),
            ))
        };
        let (was, now) = (&saved.spec, &self.spec);
        if was.partition_by != now.partition_by {
            return differs(
                "PARTITION BY",
                format!("{:?}", was.partition_by),
                format!("{:?}", now.partition_by),
            );
        }
        let types = self.key_types();
        if saved.key_types != types {
            return differs(
                "the key types",
                saved.key_types.join(", "),
                types.join(", "),
            );
        }
        if was.aggregates != now.aggregates {
            let list = |s: &OverAggregateSpec| {
                s.aggregates
                    .iter()
                    .map(|o| {
                        let a = &o.aggregate;
                        format!(
                            "{}({}) over {} as {}",
                            a.function.name(),
                            a.column.as_deref().unwrap_or("*"),
                            o.frame.describe(),
                            a.alias
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return differs("the aggregates", list(was), list(now));
        }
        Ok(())
    }
}
