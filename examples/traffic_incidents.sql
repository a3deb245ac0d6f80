-- Traffic incidents: speed readings joined with the incidents reported on the same road
-- segment in the same 1-minute window (a window join), the slow ones (under 60 km/h)
-- written out. The SQL form of examples/traffic_incidents.toml: the same rows.
--
--   cargo run --release -- run examples/traffic_incidents.sql
--
-- Paths are relative to this file's folder.
SET 'pipeline.name' = 'traffic_incidents';
SET 'table.exec.mini-batch.size' = '250';

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
  'batch-rows' = '250'                           -- replay the file as a stream
);

-- 11 reports: one on a segment without sensors, one without a segment.
CREATE TABLE reports (
  ts TIMESTAMP(3),
  segment_id BIGINT,
  incident_id BIGINT,
  kind STRING,
  severity BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'filesystem', 'path' = 'data/incidents.csv', 'format' = 'csv');

-- Columns as the join names them: segment_id, window_start, window_end, speeds.ts,
-- sensor_id, speed_kmh, vehicles, incidents.ts, incident_id, kind, severity, ts (the
-- window's last millisecond).
CREATE TABLE slow_during_incidents
WITH ('connector' = 'filesystem', 'path' = 'out/traffic_incidents.csv', 'format' = 'csv');

-- Emitted when the watermark (the slower stream's) passes the minute's end.
INSERT INTO slow_during_incidents
SELECT *
FROM (SELECT * FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' MINUTE))) AS speeds
JOIN (SELECT * FROM TABLE(TUMBLE(TABLE reports, DESCRIPTOR(ts), INTERVAL '1' MINUTE))) AS incidents
  ON speeds.segment_id = incidents.segment_id
 AND speeds.window_start = incidents.window_start
 AND speeds.window_end = incidents.window_end
WHERE speeds.speed_kmh < 60;
