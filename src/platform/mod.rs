//! What every domain runs on: the command line and configuration, the API process and its
//! shutdown, the database pool and migrations, logs and metrics, the supervised worker and
//! its leader lock, the outbox that sends every transaction, deployment files, and how
//! values are written on the wire.

pub mod cli;
pub mod config;
pub mod db;
pub mod deploy;
pub mod idempotency;
pub mod leader;
pub mod outbox;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod values;
pub mod wire;
pub mod worker;
