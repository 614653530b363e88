//! The mapping between Postgres and Arrow types, both ways, in one place: sources read Postgres
//! columns into Arrow ([`arrow_type_of`], decoding binary COPY values), exports write Arrow
//! columns into Postgres ([`postgres_type_of`], encoding binary COPY values). Neither takes a
//! lossy detour: decimals stay decimals, timestamps keep their microseconds.

mod from_postgres;
mod to_postgres;

pub use from_postgres::*;
pub use to_postgres::*;
