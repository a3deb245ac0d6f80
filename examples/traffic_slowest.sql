-- Traffic telemetry: every minute, the three road segments with the lowest average speed (a
-- window Top-N over a tumbling window), from sensors that report out of order (up to 3 s).
--
--   cargo run --release -- run examples/traffic_slowest.sql
--
-- Paths are relative to this file's folder.
SET 'pipeline.name' = 'traffic-slowest';

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

CREATE TABLE slowest_segments (
  minute TIMESTAMP(3),
  segment_id BIGINT,
  avg_speed_kmh DOUBLE,
  rank_in_minute BIGINT
) WITH ('connector' = 'filesystem', 'path' = 'out/slowest_segments.csv', 'format' = 'csv');

INSERT INTO slowest_segments
SELECT window_start, segment_id, avg_speed_kmh, rownum FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY avg_speed_kmh) AS rownum
  FROM (
    SELECT segment_id, window_start, window_end, AVG(speed_kmh) AS avg_speed_kmh
    FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
    GROUP BY window_start, window_end, segment_id
  )
) WHERE rownum <= 3;
