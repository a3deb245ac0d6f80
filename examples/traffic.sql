-- Traffic telemetry: per road segment, 10 s tumbling average speed and vehicle count, from
-- road sensors that report out of order (up to 3 s). The SQL form of examples/traffic.toml.
--
--   cargo run --release -- run examples/traffic.sql
--
-- Paths are relative to this file's folder.
SET 'pipeline.name' = 'traffic';
SET 'table.exec.mini-batch.size' = '250';
SET 'table.exec.source.idle-timeout' = '30s';

CREATE TABLE readings (
  ts TIMESTAMP(3),
  segment_id BIGINT,
  sensor_id BIGINT,
  speed_kmh DOUBLE,
  vehicles BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND   -- sensors report up to 3 s out of order
) WITH (
  'connector' = 'filesystem',
  'path' = 'data/traffic.csv',
  'format' = 'csv',
  'batch-rows' = '250'                           -- replay the file as a stream
);

CREATE TABLE segment_speeds (
  segment_id BIGINT,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  avg_speed_kmh DOUBLE,
  vehicles BIGINT,
  readings BIGINT
) WITH ('connector' = 'filesystem', 'path' = 'out/traffic.csv', 'format' = 'csv');

INSERT INTO segment_speeds
SELECT segment_id, window_start, window_end, AVG(speed_kmh), SUM(vehicles), COUNT(*)
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, segment_id;
