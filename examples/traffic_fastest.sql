-- Traffic telemetry: every minute, the three fastest single readings (speed enforcement
-- reviews them), a window Top-N straight over the window function's rows, from sensors that
-- report out of order (up to 3 s).
--
--   cargo run --release -- run examples/traffic_fastest.sql
--
-- Paths are relative to this file's folder.
SET 'pipeline.name' = 'traffic-fastest';

CREATE TABLE readings (
  ts TIMESTAMP(3),
  segment_id BIGINT,
  sensor_id BIGINT,
  speed_kmh DOUBLE,
  vehicles BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = 'data/traffic.csv',
  'format' = 'csv',
  'batch-rows' = '250'
);

CREATE TABLE fastest_readings (
  minute TIMESTAMP(3),
  rank_in_minute BIGINT,
  speed_kmh DOUBLE,
  segment_id BIGINT,
  sensor_id BIGINT,
  ts TIMESTAMP(3)
) WITH ('connector' = 'filesystem', 'path' = 'out/fastest_readings.csv', 'format' = 'csv');

INSERT INTO fastest_readings
SELECT window_start, rownum, speed_kmh, segment_id, sensor_id, ts FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY speed_kmh DESC) AS rownum
  FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
) WHERE rownum <= 3;
