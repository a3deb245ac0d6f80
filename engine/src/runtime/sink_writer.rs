//! Sink writers: each sink on a thread of its own behind a bounded channel.

use tokio::sync::{mpsc, oneshot};

use super::messages::SinkCommand;
use crate::error::{Error, Result};
use crate::sink::Sink;

/// A sink running on a thread of its own behind a bounded channel.
pub(super) struct SinkWriter {
    name: String,
    /// Whether the sink wants [`SinkCommand::Watermark`].
    pub(super) wants_watermarks: bool,
    tx: Option<mpsc::Sender<SinkCommand>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl SinkWriter {
    pub(super) fn spawn(mut sink: Box<dyn Sink>, capacity: usize) -> Result<Self> {
        let name = sink.name();
        let wants_watermarks = sink.wants_watermarks();
        let (tx, mut rx) = mpsc::channel::<SinkCommand>(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("sluice-sink".into())
            .spawn(move || {
                while let Some(command) = rx.blocking_recv() {
                    match command {
                        SinkCommand::Write(batch) => sink.write(&batch)?,
                        SinkCommand::Flush => sink.flush()?,
                        SinkCommand::Watermark(w) => sink.watermark(w)?,
                        // A dropped reply means the driver stopped; the next send fails.
                        SinkCommand::Prepare(epoch, reply) => {
                            let _ = reply.send(sink.prepare(epoch));
                        }
                        SinkCommand::Commit(staged, reply) => {
                            let _ = reply.send(sink.commit(&staged));
                        }
                        SinkCommand::Recover(epoch, staged, reply) => {
                            sink.recover(epoch, &staged)?;
                            let _ = reply.send(());
                        }
                    }
                }
                sink.close()
            })
            .map_err(|e| Error::Internal(format!("cannot start a sink thread: {e}")))?;
        Ok(SinkWriter {
            name,
            wants_watermarks,
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    pub(super) async fn send(&self, command: SinkCommand) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Err(Error::Internal(format!(
                "sink {} already closed",
                self.name
            )));
        };
        // A send fails only when the sink thread has stopped; `close` reports its error.
        tx.send(command).await.map_err(|_| Error::Sink {
            name: self.name.clone(),
            message: "stopped after an error".into(),
        })
    }

    /// Sends `command` built around a reply channel and waits for the answer.
    pub(super) async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> SinkCommand,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.send(command(tx)).await?;
        rx.await.map_err(|_| Error::Sink {
            name: self.name.clone(),
            message: "stopped after an error".into(),
        })
    }

    pub(super) async fn close(&mut self) -> Result<()> {
        self.tx = None;
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| Error::Internal(format!("joining sink {name}: {e}")))?
            .map_err(|_| Error::Sink {
                name: self.name.clone(),
                message: "the sink thread panicked".into(),
            })?
    }
}
