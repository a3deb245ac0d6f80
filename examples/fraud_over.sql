-- Per-event fraud features: for every card transaction, the card's number of transactions,
-- their total and their largest amount over the last hour and over its last 10
-- transactions (OVER aggregations). Transactions far above the card's recent pattern are
-- printed. The SQL form of examples/fraud_over.toml.
--
--   cargo run --release -- run examples/fraud_over.sql
SET 'pipeline.name' = 'fraud_over';

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
  'number-of-rows' = '200000',
  'keys' = '10000',              -- cards
  'merchants' = '2000',
  'skew' = '0.3',                -- some cards are much more active than others
  'disorder' = '2s',
  'event-time-rate' = '20',      -- about 2 h 45 min of transactions
  'seed' = '7'
);

CREATE TABLE alerts (
  ts TIMESTAMP(3),
  card_id BIGINT,
  amount_cents BIGINT,
  txn_1h BIGINT,
  total_1h BIGINT,
  max_1h BIGINT,
  txn_10 BIGINT,
  total_10 BIGINT,
  max_10 BIGINT
) WITH ('connector' = 'print');

CREATE TEMPORARY VIEW features AS
SELECT ts, card_id, amount_cents,
       COUNT(*) OVER last_hour AS txn_1h,
       SUM(amount_cents) OVER last_hour AS total_1h,
       MAX(amount_cents) OVER last_hour AS max_1h,
       COUNT(*) OVER last_10 AS txn_10,
       SUM(amount_cents) OVER last_10 AS total_10,
       MAX(amount_cents) OVER last_10 AS max_10
FROM transactions
WINDOW
  last_hour AS (PARTITION BY card_id ORDER BY ts
                RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW),
  last_10 AS (PARTITION BY card_id ORDER BY ts
              ROWS BETWEEN 9 PRECEDING AND CURRENT ROW);

-- Alerts: a busy card (10 or more transactions within the hour) whose transaction is the
-- largest of its last 10 and more than a third of their total.
INSERT INTO alerts
SELECT * FROM features
WHERE txn_1h >= 10 AND amount_cents = max_10 AND amount_cents * 3 > total_10;
