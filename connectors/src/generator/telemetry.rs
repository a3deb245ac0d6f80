//! The `telemetry` stream: road-segment sensors reporting speed and vehicle counts.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sluice_engine::{Error, Result};

use super::Settings;
use super::columns::{self, Span};
use super::rng::{Stream, below, mix64, unit_f64};
use crate::spec::timestamp_type;

/// Random stream ids, one per column, so columns are independent of each other.
const TS: u64 = 0;
const SEGMENT: u64 = 1;
const SENSOR: u64 = 2;
const SPEED: u64 = 3;
const VEHICLES: u64 = 4;
/// Seeds each segment's base speed, which is a property of the road, not of an event.
const SEGMENT_BASE: u64 = 5;

/// The columns of the stream.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", timestamp_type(), false),
        Field::new("segment_id", DataType::Int64, false),
        Field::new("sensor_id", DataType::Int64, false),
        Field::new("speed_kmh", DataType::Float64, false),
        Field::new("vehicles", DataType::Int64, false),
    ]))
}

/// The base speed of a segment: 30 to 120 km/h, fixed by the seed.
fn base_speed(seed_key: u64, segment: i64) -> f64 {
    30.0 + below(mix64(seed_key ^ segment as u64), 91) as f64
}

/// Generates the events of `span`, column by column, keeping the columns `wanted` (one flag per
/// column of [`schema`]; `schema` is the schema of those). Sensors and speeds derive from the
/// segment, so every column is computed and the unwanted ones dropped.
pub fn batch(
    settings: &Settings,
    schema: &SchemaRef,
    span: Span,
    wanted: &[bool],
) -> Result<RecordBatch> {
    let seed = settings.seed;
    let ts = settings.event_times(span, TS);
    let segments = settings.keys(span, SEGMENT);
    let sensor_bits = Stream::new(seed, SENSOR);
    let sensors: Vec<i64> = segments
        .iter()
        .enumerate()
        .map(|(k, &segment)| segment * 10 + below(sensor_bits.bits(span.index(k)), 10) as i64)
        .collect();
    // Speed is the segment's base plus noise in [-10, 10) km/h; bases are at least 30, so > 0.
    let (speed_bits, seed_key) = (Stream::new(seed, SPEED), mix64(seed ^ SEGMENT_BASE));
    let speeds: Vec<f64> = segments
        .iter()
        .enumerate()
        .map(|(k, &segment)| {
            base_speed(seed_key, segment) + (unit_f64(speed_bits.bits(span.index(k))) - 0.5) * 20.0
        })
        .collect();
    let vehicles = columns::uniform(span, 0, 21, Stream::new(seed, VEHICLES));
    let all: Vec<ArrayRef> = vec![
        columns::timestamp_column(ts),
        columns::int64_column(segments),
        columns::int64_column(sensors),
        columns::float64_column(speeds),
        columns::int64_column(vehicles),
    ];
    let columns = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| wanted.get(*i).copied().unwrap_or(true))
        .map(|(_, c)| c)
        .collect();
    RecordBatch::try_new(schema.clone(), columns).map_err(Error::arrow("generating telemetry"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array};

    #[test]
    fn sensors_belong_to_their_segment_and_speeds_stay_near_the_base() {
        let settings = Settings::for_test(50, 0.0);
        let out = batch(
            &settings,
            &schema(),
            Span {
                first: 0,
                step: 1,
                len: 20_000,
            },
            &[true; 5],
        )
        .expect("batch");
        let get = |c: usize| {
            out.column(c)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("i64")
                .values()
                .to_vec()
        };
        let (segments, sensors, vehicles) = (get(1), get(2), get(4));
        let speeds = out
            .column(3)
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("f64");
        let seed_key = mix64(settings.seed ^ SEGMENT_BASE);
        for k in 0..out.num_rows() {
            assert!((1..=50).contains(&segments[k]));
            assert_eq!(
                sensors[k] / 10,
                segments[k],
                "sensor {} of segment {}",
                sensors[k],
                segments[k]
            );
            assert!((0..=20).contains(&vehicles[k]));
            let noise = speeds.value(k) - base_speed(seed_key, segments[k]);
            assert!((-10.0..10.0).contains(&noise) && speeds.value(k) > 0.0);
        }
        assert!(vehicles.contains(&0) && vehicles.contains(&20));
    }
}
