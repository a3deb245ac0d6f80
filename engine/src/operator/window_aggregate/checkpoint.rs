//! The window operator's checkpoint state: its key dictionary and its backend's state, with
//! the job settings that produced them so that an incompatible job change is refused.
//!
//! Compatible: anything outside the window operator (filters before it, sinks, batching,
//! parallelism). Incompatible, refused with what differs: other key columns or key types,
//! another window, other aggregates, another backend (the state layouts differ).

use serde::{Deserialize, Serialize};

use super::{WindowAggregateOperator, WindowAggregateSpec};
use crate::error::{Error, Result};
use crate::state::{StateHeader, StateSnapshot};

/// The layout of the operator's state.
const STATE_FORMAT: &str = "window/1";
/// Prefix of the backend's batches inside the operator's snapshot.
const BACKEND: &str = "backend.";
/// The key dictionary's batch (absent for a single integer key).
const KEYS: &str = "keys";

#[derive(Debug, Serialize, Deserialize)]
struct WindowMeta {
    spec: WindowAggregateSpec,
    key_types: Vec<String>,
    backend: StateHeader,
}

impl WindowAggregateOperator {
    fn key_types(&self) -> Vec<String> {
        self.keys
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect()
    }

    pub(super) fn save(&mut self) -> Result<StateSnapshot> {
        let backend = self.state.snapshot()?;
        let meta = WindowMeta {
            spec: self.spec.clone(),
            key_types: self.key_types(),
            backend: backend.header(),
        };
        let meta = serde_json::to_value(meta)
            .map_err(|e| Error::Internal(format!("window state metadata: {e}")))?;
        let mut snapshot = StateSnapshot::new(STATE_FORMAT, meta);
        if let Some(keys) = self.keys.snapshot()? {
            snapshot = snapshot.with_batch(KEYS, keys);
        }
        Ok(snapshot.with_nested(BACKEND, backend))
    }

    pub(super) fn load(&mut self, state: &StateSnapshot) -> Result<()> {
        state.expect_format(STATE_FORMAT)?;
        let meta: WindowMeta = state.meta_as()?;
        self.check_compatible(&meta)?;
        if let Ok(keys) = state.batch(KEYS) {
            self.keys.restore(keys)?;
        }
        self.state.restore(&state.nested(BACKEND, meta.backend)?)
    }

    /// Refuses state saved by a job whose window operator differs, saying how.
    fn check_compatible(&self, saved: &WindowMeta) -> Result<()> {
        let now = &self.spec;
        let was = &saved.spec;
        let differs = |what: &str, was: String, now: String| {
            Err(Error::config(
                "checkpoint",
                format!(
                    "the job changed incompatibly with its saved state: {what} was {was}, \
                     now {now} (start without the checkpoint, or restore the old job)"
                ),
            ))
        };
        if was.keys != now.keys {
            return differs("keys", format!("{:?}", was.keys), format!("{:?}", now.keys));
        }
        let types = self.key_types();
        if saved.key_types != types {
            return differs(
                "the key types",
                saved.key_types.join(", "),
                types.join(", "),
            );
        }
        if was.window != now.window {
            return differs(
                "the window",
                format!("{:?}", was.window),
                format!("{:?}", now.window),
            );
        }
        if was.aggregates != now.aggregates {
            let list = |s: &WindowAggregateSpec| {
                s.aggregates
                    .iter()
                    .map(|a| {
                        format!(
                            "{}({}) as {}",
                            a.function.name(),
                            a.column.as_deref().unwrap_or("*"),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

    use crate::aggregate::{AggregateFunction, AggregateSpec};
    use crate::backend::CpuBackend;
    use crate::operator::{Emitted, Operator, WindowAggregateOperator, WindowAggregateSpec};
    use crate::state::StateSnapshot;
    use crate::window::WindowSpec;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("card", DataType::Utf8, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("amount", DataType::Int64, true),
        ]))
    }

    fn spec(window: WindowSpec) -> WindowAggregateSpec {
        WindowAggregateSpec {
            keys: vec!["card".into()],
            window,
            aggregates: vec![
                AggregateSpec::count("n"),
                AggregateSpec::new(AggregateFunction::Sum, "amount", "total"),
            ],
        }
    }

    fn operator(spec: &WindowAggregateSpec) -> WindowAggregateOperator {
        WindowAggregateOperator::try_new(spec, schema(), "ts", &CpuBackend::new(), "operators[0]")
            .expect("operator")
    }

    /// Batch `i` of a fixed input: string keys first seen in different orders per batch.
    fn batch(i: i64) -> RecordBatch {
        let cards: Vec<Option<String>> = (0..6)
            .map(|j| (j != 4).then(|| format!("card-{}", (i * 7 + j * 3) % 5)))
            .collect();
        let ts: Vec<i64> = (0..6).map(|j| i * 400 + j * 50).collect();
        let amount: Vec<i64> = (0..6).map(|j| i * 10 + j).collect();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(cards)),
                Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
                Arc::new(Int64Array::from(amount)),
            ],
        )
        .expect("batch")
    }

    /// Runs batches 0..8 with a watermark after each, restarting after batch `cut`.
    fn run(spec: &WindowAggregateSpec, cut: Option<i64>) -> Vec<RecordBatch> {
        let mut op = operator(spec);
        let mut out = Emitted::default();
        for i in 0..8 {
            op.process(batch(i), &mut out).expect("process");
            op.on_watermark(i * 400 - 500, &mut out).expect("watermark");
            if cut == Some(i) {
                let state = op.snapshot().expect("snapshot").expect("stateful");
                op = operator(spec);
                op.restore(&state).expect("restore");
            }
        }
        op.on_watermark(i64::MAX, &mut out).expect("end");
        out.batches
    }

    #[test]
    fn string_keys_keep_their_ids_across_a_restore() {
        for window in [
            WindowSpec::Tumbling {
                size: 1_000,
                offset: 0,
            },
            WindowSpec::Session { gap: 300 },
        ] {
            let whole = run(&spec(window), None);
            assert!(!whole.is_empty());
            for cut in 0..8 {
                assert_eq!(run(&spec(window), Some(cut)), whole, "{window:?} cut {cut}");
            }
        }
    }

    fn saved() -> StateSnapshot {
        let mut op = operator(&spec(WindowSpec::Tumbling {
            size: 1_000,
            offset: 0,
        }));
        op.process(batch(0), &mut Emitted::default())
            .expect("process");
        op.snapshot().expect("snapshot").expect("stateful")
    }

    #[test]
    fn an_incompatible_job_change_is_refused_saying_what_differs() {
        let tumbling = WindowSpec::Tumbling {
            size: 1_000,
            offset: 0,
        };
        let mut other_window = spec(WindowSpec::Tumbling {
            size: 2_000,
            offset: 0,
        });
        let error = operator(&other_window)
            .restore(&saved())
            .expect_err("window");
        assert!(error.to_string().contains("the window was"), "{error}");
        other_window = spec(tumbling);
        other_window.aggregates.pop();
        let error = operator(&other_window)
            .restore(&saved())
            .expect_err("aggregates");
        let text = error.to_string();
        assert!(
            text.contains("count(*) as n, sum(amount) as total")
                && text.contains("now count(*) as n"),
            "{text}"
        );
        let mut other_keys = spec(tumbling);
        other_keys.keys = vec!["amount".into()];
        let error = operator(&other_keys).restore(&saved()).expect_err("keys");
        assert!(error.to_string().contains("keys was [\"card\"]"), "{error}");
        operator(&spec(tumbling))
            .restore(&saved())
            .expect("the same job restores");
    }
}
