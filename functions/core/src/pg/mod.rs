//! PostgreSQL: connecting safely and quoting identifiers.

pub mod connect;
pub mod quote;
pub mod secret;

pub use connect::{connect, ConnectSettings, ConnectionSource};
pub use quote::{quote_ident, quote_qualified};
