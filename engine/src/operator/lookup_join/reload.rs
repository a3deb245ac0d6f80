//! Reloading a lookup join's table in the background: every interval of processing time the
//! table is read again on a thread of its own, and the join swaps it in between micro-batches
//! once it is read, so a slow read never stalls the stream.

use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;

use crate::error::{Error, Result};

/// How to read a table again, and how often.
#[derive(Clone)]
pub struct TableReload {
    /// Time between the end of one read and the start of the next.
    pub every: Duration,
    /// Reads the whole table (as at start).
    pub load: Arc<dyn Fn() -> Result<RecordBatch> + Send + Sync>,
}

impl fmt::Debug for TableReload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableReload")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// Schedules reads and hands over their results.
#[derive(Debug)]
pub(super) struct Reloader {
    reload: TableReload,
    due: Instant,
    in_flight: Option<Receiver<Result<RecordBatch>>>,
}

impl Reloader {
    pub(super) fn new(reload: TableReload) -> Self {
        Reloader {
            due: Instant::now() + reload.every,
            reload,
            in_flight: None,
        }
    }

    /// A table read since the last call, if one finished; starts a read when one is due.
    pub(super) fn poll(&mut self) -> Option<Result<RecordBatch>> {
        if let Some(rx) = &self.in_flight {
            let outcome = match rx.try_recv() {
                Ok(outcome) => outcome,
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => {
                    Err(Error::Internal("the table reader stopped".into()))
                }
            };
            self.in_flight = None;
            self.due = Instant::now() + self.reload.every;
            return Some(outcome);
        }
        if Instant::now() >= self.due {
            let (tx, rx) = channel();
            let load = Arc::clone(&self.reload.load);
            let started = std::thread::Builder::new()
                .name("sluice-table-reload".into())
                .spawn(move || {
                    let _ = tx.send(load());
                });
            match started {
                Ok(_) => self.in_flight = Some(rx),
                Err(e) => {
                    self.due = Instant::now() + self.reload.every;
                    return Some(Err(Error::Internal(format!(
                        "cannot start a table reader: {e}"
                    ))));
                }
            }
        }
        None
    }
}
