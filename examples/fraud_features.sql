-- Fraud features: per card, over 1-minute windows sliding by 10 s, the number of
-- transactions, their total and largest amount, and how many distinct merchants were used.
-- Cards with a burst of activity are printed as a table. The SQL form of
-- examples/fraud_features.toml.
--
--   cargo run --release -- run examples/fraud_features.sql
SET 'pipeline.name' = 'fraud_features';
SET 'table.exec.mini-batch.size' = '10000';   -- results appear as the stream advances

CREATE TABLE transactions (
  ts TIMESTAMP(3),
  card_id BIGINT,
  merchant_id BIGINT,
  amount_cents BIGINT,
  country STRING,
  channel STRING,
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'transactions',
  'number-of-rows' = '120000',
  'keys' = '10000',              -- cards
  'merchants' = '2000',
  'skew' = '0.3',                -- some cards are much more active than others
  'disorder' = '2s',
  'event-time-rate' = '200',     -- 10 minutes of transactions
  'seed' = '7'
);

CREATE TABLE alerts (
  card_id BIGINT,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  txn_count BIGINT,
  amount_sum BIGINT,
  amount_max BIGINT,
  merchants BIGINT
) WITH ('connector' = 'print');

-- Alerts: a burst of transactions within one minute.
INSERT INTO alerts
SELECT card_id, window_start, window_end,
       COUNT(*), SUM(amount_cents), MAX(amount_cents), COUNT(DISTINCT merchant_id)
FROM TABLE(HOP(TABLE transactions, DESCRIPTOR(ts), INTERVAL '10' SECOND, INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, card_id
HAVING COUNT(*) >= 8;
