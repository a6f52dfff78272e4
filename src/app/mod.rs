//! The composition root: the subcommands of the `adescrow` binary and the `serve` process,
//! which wire every domain's roles into the worker and its routes into the API. Nothing
//! below imports it.

pub mod cli;
pub mod nodes;
pub mod server;
