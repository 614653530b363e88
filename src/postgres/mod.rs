//! The one Postgres layer: connections, the mapping between Postgres and Arrow types, reading
//! sources and writing exports. `--engine postgres` (compiled SQL run in the database) will
//! connect through here too.
//!
//! A connection URL comes from the pipeline through `${VAR}` interpolation and holds a password:
//! it never appears in a message, a manifest or a log. What is shown is [`Target`]: host, port,
//! database and user.

mod connection;
pub mod read;
pub mod types;
pub mod warehouse;
pub mod write;

pub use connection::{Refusal, Target, connect, describe, try_connect};
