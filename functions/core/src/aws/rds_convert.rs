//! Conversions every RDS adapter needs: tags and times between the SDK's types and ours,
//! and "not found" as an answer.

use std::collections::BTreeMap;

use aws_sdk_rds::types::Tag;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

pub(crate) fn sdk_tags(pairs: &[(String, String)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

pub(crate) fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tag_pairs(tags).into_iter().collect()
}

pub(crate) fn from_sdk_time(
    t: Option<&aws_sdk_rds::primitives::DateTime>,
) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

pub(crate) fn to_sdk_time(t: DateTime<Utc>) -> aws_sdk_rds::primitives::DateTime {
    aws_sdk_rds::primitives::DateTime::from_secs(t.timestamp())
}

/// "Not found" is an answer here, not a failure.
pub(crate) fn not_found_is_none<T>(r: Result<Option<T>>) -> Result<Option<T>> {
    match r {
        Err(Error::NotFound(_)) => Ok(None),
        other => other,
    }
}
