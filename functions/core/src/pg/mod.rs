//! PostgreSQL: connecting safely and quoting identifiers.

pub mod connect;
pub mod endpoint;
pub mod quote;
pub mod secret;

pub use connect::{
    connect, connect_target, connect_target_with_notices, resolve, ConnectSettings,
    ConnectionSource, Notices, Target,
};
pub use endpoint::EndpointOverride;
pub use quote::{quote_ident, quote_qualified};

use serde::de::DeserializeOwned;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::error::{Error, Result};

/// Runs `sql`, which returns one row with one JSON text column, in one round trip (simple
/// protocol, no prepare), and parses it. `what` names it in errors.
pub async fn query_json<T: DeserializeOwned>(client: &Client, sql: &str, what: &str) -> Result<T> {
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| Error::Retryable(format!("the {what} query failed: {e}; try again")))?;
    let text = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .ok_or_else(|| Error::internal(format!("the {what} query returned no row")))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::internal(format!("the {what} answer is unreadable: {e}")))
}
