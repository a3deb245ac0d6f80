//! Integration tests of sluice, one module per area, in one test binary (one link, not ten).

mod common;

mod backpressure;
mod batching;
mod cancel;
mod checkpoints;
mod cli;
mod crash;
mod credentials;
mod cumulate;
mod join_crash;
mod joins;
mod kafka;
mod kafka_formats;
mod kafka_outage;
mod kafka_scale_out;
mod kafka_sql;
mod kafka_transactions;
mod lateness;
mod limits;
mod malformed;
mod mutations;
mod object_sink;
mod oracle;
mod outages;
mod over;
mod savepoints;
mod slt;
mod sql;
mod sql_joins;
mod statement_sets;
mod stream_joins;
mod top_n;
mod watermarks;
mod window_rows;
