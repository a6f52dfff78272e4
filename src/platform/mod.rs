//! What every domain runs on, importing none of them: configuration, shutdown, the database
//! pool and migrations, logs and metrics, the supervised worker and its leader lock, the
//! outbox that sends every transaction, the idempotency store, the values every domain
//! validates with, deployment files, and how values are written on the wire.

pub mod config;
pub mod db;
pub mod deploy;
pub mod idempotency;
pub mod leader;
pub mod outbox;
pub mod shutdown;
pub mod telemetry;
pub mod values;
pub mod wire;
pub mod worker;
