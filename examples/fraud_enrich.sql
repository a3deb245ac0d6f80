-- Fraud enrichment: each transaction is looked up in a merchant risk table; per card, over
-- 1-minute windows sliding by 10 s, transactions at risky merchants (risk score 70 or more),
-- their amount and how many distinct risky merchants were used. Cards that used two or more
-- are printed. The SQL form of examples/fraud_enrich.toml.
--
--   cargo run --release -- run examples/fraud_enrich.sql
SET 'pipeline.name' = 'fraud_enrich';
SET 'table.exec.mini-batch.size' = '10000';

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
  'keys' = '10000',
  'merchants' = '2000',          -- ids 1..=2000, as in the table
  'skew' = '0.3',
  'disorder' = '2s',
  'event-time-rate' = '200',
  'seed' = '7'
);

-- Read whole when the job starts.
CREATE TABLE merchants (
  merchant_id BIGINT,
  category STRING,
  risk_score BIGINT,
  country STRING
) WITH ('connector' = 'filesystem', 'path' = 'data/merchants.csv', 'format' = 'csv');

CREATE TABLE alerts WITH ('connector' = 'print');

CREATE TEMPORARY VIEW risky_transactions AS
SELECT t.ts, t.card_id, t.merchant_id, t.amount_cents, m.category, m.country
FROM transactions AS t
JOIN merchants FOR SYSTEM_TIME AS OF t.ts AS m ON t.merchant_id = m.merchant_id
WHERE m.risk_score >= 70;

INSERT INTO alerts
SELECT card_id, window_start, window_end,
       COUNT(*) AS risky_txns,
       SUM(amount_cents) AS risky_amount,
       COUNT(DISTINCT merchant_id) AS risky_merchants
FROM TABLE(HOP(TABLE risky_transactions, DESCRIPTOR(ts), INTERVAL '10' SECOND, INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, card_id
HAVING COUNT(DISTINCT merchant_id) >= 2;
