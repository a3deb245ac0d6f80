//! The window Top-N's checkpoint state over raw rows: the rows held for open windows (already
//! cut to `limit` per window and partition where they were), the watermark, the next arrival
//! number, and the spec that produced them, so that a changed ranking is refused.

use arrow::compute::concat_batches;
use serde::{Deserialize, Serialize};

use super::{WindowTopNOperator, WindowTopNSpec, earliest_end};
use crate::error::{Error, Result};
use crate::state::StateSnapshot;

/// The layout of the operator's state.
const STATE_FORMAT: &str = "window-top-n/1";
const HELD: &str = "held";

#[derive(Debug, Serialize, Deserialize)]
struct TopNMeta {
    spec: WindowTopNSpec,
    watermark: i64,
    next_arrival: u64,
}

impl WindowTopNOperator {
    pub(super) fn save(&self) -> Result<StateSnapshot> {
        let meta = TopNMeta {
            spec: self.spec.clone(),
            watermark: self.watermark,
            next_arrival: self.next_arrival,
        };
        let meta = serde_json::to_value(meta)
            .map_err(|e| Error::Internal(format!("window Top-N state metadata: {e}")))?;
        let held = concat_batches(&self.held, &self.waiting)
            .map_err(Error::arrow("saving window rows"))?;
        Ok(StateSnapshot::new(STATE_FORMAT, meta).with_batch(HELD, held))
    }

    pub(super) fn load(&mut self, state: &StateSnapshot) -> Result<()> {
        state.expect_format(STATE_FORMAT)?;
        let meta: TopNMeta = state.meta_as()?;
        // The row-number column's name changes nothing held.
        let ranking = |spec: &WindowTopNSpec| WindowTopNSpec {
            rownum: None,
            ..spec.clone()
        };
        if ranking(&meta.spec) != ranking(&self.spec) {
            return Err(Error::config(
                "checkpoint",
                format!(
                    "the window Top-N changed since the checkpoint (was {}, now {}): the rows \
                     it held were kept for the old ranking (start without the checkpoint, or \
                     restore the old job)",
                    describe(&meta.spec),
                    describe(&self.spec)
                ),
            ));
        }
        let held = state.batch(HELD)?;
        if held.schema() != self.held {
            return Err(Error::config(
                "checkpoint",
                "the window Top-N's input columns changed since the checkpoint (start without \
                 the checkpoint, or restore the old job)",
            ));
        }
        self.watermark = meta.watermark;
        self.next_arrival = meta.next_arrival;
        self.earliest_end = earliest_end(held, self.end);
        self.held_rows = held.num_rows();
        self.waiting = if held.num_rows() > 0 {
            vec![held.clone()]
        } else {
            Vec::new()
        };
        Ok(())
    }
}

/// The ranking in words, for the refusal.
fn describe(spec: &WindowTopNSpec) -> String {
    let order: Vec<String> = spec
        .order_by
        .iter()
        .map(|o| format!("{}{}", o.column, if o.descending { " desc" } else { "" }))
        .collect();
    format!(
        "partition by [{}] order by [{}] limit {} over {}",
        spec.partition_by.join(", "),
        order.join(", "),
        spec.limit.map_or("none".to_string(), |n| n.to_string()),
        spec.window
            .map_or("aggregated windows".to_string(), |w| format!("{w:?}"))
    )
}
