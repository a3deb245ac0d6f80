-- The SQL form of examples/tumbling_bench.toml (the end-to-end throughput benchmark of
-- docs/benchmarks.md): an unthrottled transactions generator (10 000 cards) → 1 s tumbling
-- count and sum of amount per card → discard. `sluice explain` shows the same plan as the
-- job file.
--
--   cargo run --release -- run examples/tumbling_bench.sql
SET 'pipeline.name' = 'tumbling_bench';
SET 'table.exec.mini-batch.size' = '1048576';

CREATE TABLE transactions (
  ts TIMESTAMP(3),
  card_id BIGINT,
  merchant_id BIGINT,
  amount_cents BIGINT,
  country STRING,
  channel STRING,
  WATERMARK FOR ts AS ts
) WITH (
  'connector' = 'transactions',
  'number-of-rows' = '200000000',
  'keys' = '10000',
  'event-time-rate' = '1000000'     -- one 1 s window per million events
);

CREATE TABLE results WITH ('connector' = 'blackhole');

INSERT INTO results
SELECT card_id, window_start, window_end, COUNT(*) AS txn_count, SUM(amount_cents) AS amount_sum
FROM TABLE(TUMBLE(TABLE transactions, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end, card_id;
