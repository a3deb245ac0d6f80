//! The stream join's checkpoint state: both sides' buffered rows and the watermark, with the
//! join's settings so that an incompatible job change is refused.
//!
//! Only the rows are saved: on restore they are buffered again in their order, so the key
//! ids and the backend's index are rebuilt and handles keep their order. That also makes the
//! state independent of the backend.

use serde::{Deserialize, Serialize};

use super::{JoinSideId, JoinTime, StreamJoinOperator, StreamJoinSpec};
use crate::error::{Error, Result};
use crate::state::StateSnapshot;

const STATE_FORMAT: &str = "stream-join/1";
const SIDES: [&str; 2] = ["left", "right"];

#[derive(Debug, Serialize, Deserialize)]
struct JoinMeta {
    spec: StreamJoinSpec,
    watermark: i64,
    /// Each side's columns as the join saw them.
    schemas: [String; 2],
}

impl StreamJoinOperator {
    /// The join's state for a checkpoint.
    pub fn snapshot(&self) -> Result<StateSnapshot> {
        let meta = JoinMeta {
            spec: self.spec.clone(),
            watermark: self.watermark,
            schemas: self.sides.each_ref().map(|s| s.schema.to_string()),
        };
        let meta = serde_json::to_value(meta)
            .map_err(|e| Error::Internal(format!("join state metadata: {e}")))?;
        let mut snapshot = StateSnapshot::new(STATE_FORMAT, meta);
        for (name, side) in SIDES.iter().zip(&self.sides) {
            snapshot = snapshot.with_batch(*name, side.rows.concat()?);
        }
        Ok(snapshot)
    }

    /// Loads state [`StreamJoinOperator::snapshot`] saved into this fresh operator.
    pub fn restore(&mut self, state: &StateSnapshot) -> Result<()> {
        state.expect_format(STATE_FORMAT)?;
        let meta: JoinMeta = state.meta_as()?;
        self.check_compatible(&meta)?;
        self.watermark = meta.watermark;
        let windowed = matches!(self.spec.time, JoinTime::Window(_));
        for (i, name) in SIDES.iter().enumerate() {
            let rows = state.batch(name)?;
            let id = if i == 0 {
                JoinSideId::Left
            } else {
                JoinSideId::Right
            };
            let keep_null_keys = windowed && self.keeps_null_keys(id);
            let side = &mut self.sides[i];
            let arrival = side.arrive(&mut self.keys, rows, i64::MIN, keep_null_keys)?;
            side.store(arrival)?;
        }
        Ok(())
    }

    fn check_compatible(&self, saved: &JoinMeta) -> Result<()> {
        let differs = |what: &str, was: String, now: String| {
            Err(Error::config(
                "checkpoint",
                format!(
                    "the saved join had {what} {was}, this job has {now}; the join's state \
                     cannot be carried over (start without the checkpoint)"
                ),
            ))
        };
        let (was, now) = (&saved.spec, &self.spec);
        if (&was.left, &was.right) != (&now.left, &now.right) {
            return differs(
                "streams",
                format!("{} ⋈ {}", was.left, was.right),
                format!("{} ⋈ {}", now.left, now.right),
            );
        }
        if (&was.on, &was.right_on) != (&now.on, &now.right_on) {
            return differs(
                "keys",
                format!("{:?} = {:?}", was.on, was.right_on),
                format!("{:?} = {:?}", now.on, now.right_on),
            );
        }
        if was.time != now.time || was.kind != now.kind {
            return differs(
                "condition",
                format!("{:?} ({:?})", was.time, was.kind),
                format!("{:?} ({:?})", now.time, now.kind),
            );
        }
        for (i, side) in [JoinSideId::Left, JoinSideId::Right]
            .into_iter()
            .enumerate()
        {
            let now = self.sides[side as usize].schema.to_string();
            if saved.schemas[i] != now {
                return differs(
                    &format!("{} columns", SIDES[i]),
                    saved.schemas[i].clone(),
                    now,
                );
            }
        }
        Ok(())
    }
}
