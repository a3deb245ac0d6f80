//! How an Avro message frames its record: bare, or after the Confluent header (byte 0, then the
//! schema id in 4 big-endian bytes). Given by `confluent`, or decided from the first messages.
//!
//! Both framings can start with byte 0 (a bare record whose first field is `0`, an empty string
//! or the `null` of a union), so one message cannot tell them apart; many can. The framing is
//! the one under which more of the first messages decode as exactly one record of the schema:
//! those sampled before the job starts, or, on a topic that was empty then, those of the first
//! poll that holds any readable message.

use std::cmp::Ordering;
use std::sync::OnceLock;

use sluice_engine::{Error, Result};

use crate::kafka::KafkaRecord;

/// Where a message's record starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// The payload is the record.
    Bare,
    /// The record follows the 5-byte Confluent header.
    Confluent,
}

/// The framing, once known, and the schema id to read.
#[derive(Debug)]
pub(super) struct FramingChoice {
    decided: OnceLock<Framing>,
    schema_id: Option<u32>,
}

impl FramingChoice {
    /// The framing `confluent` says; `None` leaves it to be decided, unless a `schema_id`,
    /// which only the Confluent header carries, is given.
    pub(super) fn new(confluent: Option<bool>, schema_id: Option<u32>) -> Self {
        let decided = OnceLock::new();
        let framing = match (confluent, schema_id) {
            (Some(true), _) | (None, Some(_)) => Some(Framing::Confluent),
            (Some(false), _) => Some(Framing::Bare),
            (None, None) => None,
        };
        if let Some(framing) = framing {
            let _ = decided.set(framing);
        }
        FramingChoice { decided, schema_id }
    }

    /// The framing, if decided.
    pub(super) fn get(&self) -> Option<Framing> {
        self.decided.get().copied()
    }

    /// Decides the framing from `records` if it is not decided yet; `decodable` counts the
    /// record bodies that decode. Stays undecided while no message decodes either way; fails
    /// when as many decode both ways, since then the choice would be a guess.
    pub(super) fn settle(
        &self,
        records: &[KafkaRecord<'_>],
        decodable: impl Fn(&[&[u8]]) -> Result<usize>,
    ) -> Result<()> {
        if self.decided.get().is_some() {
            return Ok(());
        }
        let payloads: Vec<&[u8]> = records.iter().filter_map(|r| r.payload).collect();
        let bare = decodable(&payloads)?;
        let bodies: Vec<&[u8]> = payloads
            .iter()
            .filter_map(|p| confluent_body(p, self.schema_id).ok())
            .collect();
        let framed = decodable(&bodies)?;
        let framing = match bare.cmp(&framed) {
            Ordering::Greater => Framing::Bare,
            Ordering::Less => Framing::Confluent,
            Ordering::Equal if bare == 0 => return Ok(()),
            Ordering::Equal => {
                let message = format!(
                    "{bare} of the first {} messages read as Avro records both with and without \
                     the Confluent header; say which framing the topic has: confluent = true or \
                     confluent = false",
                    payloads.len()
                );
                return Err(Error::config("source.format.confluent", message));
            }
        };
        let _ = self.decided.set(framing);
        Ok(())
    }

    /// The record of `payload`, or why it has none; undecided reads it bare.
    pub(super) fn body<'p>(&self, payload: &'p [u8]) -> Result<&'p [u8], String> {
        match self.get() {
            Some(Framing::Confluent) => confluent_body(payload, self.schema_id),
            Some(Framing::Bare) | None => Ok(payload),
        }
    }
}

/// The record after the Confluent header of `payload`, if it has one with an id to read.
fn confluent_body(payload: &[u8], schema_id: Option<u32>) -> Result<&[u8], String> {
    let Some(([magic, id @ ..], body)) = payload.split_first_chunk::<5>() else {
        return Err(format!(
            "{} bytes are too few for the Confluent header (byte 0, then a 4-byte schema id)",
            payload.len()
        ));
    };
    if *magic != 0 {
        return Err(format!(
            "no Confluent header: the first byte is {magic:#04x}, not 0"
        ));
    }
    let id = u32::from_be_bytes(*id);
    match schema_id {
        Some(wanted) if wanted != id => Err(format!(
            "Confluent schema id {id}, but source.format.schema_id reads only {wanted}"
        )),
        _ => Ok(body),
    }
}
