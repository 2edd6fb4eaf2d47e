//! The RDS port for retention: list a source's snapshots with their tags (one paginated
//! call per 100, never a tag call per snapshot), delete one, and find and delete the
//! drill's scratch instances and clusters.

use super::rds_convert::{from_sdk_time, tag_map};
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use chrono::{DateTime, Utc};

use super::classify_sdk_error;
use super::rds_snapshots::SourceKind;
use crate::error::Result;

/// RDS's largest page for Describe* calls.
const PAGE: i32 = 100;
/// Throttling on large accounts is the norm, not an accident: back off for longer
/// than the SDK's default 3 attempts.
const ATTEMPTS: u32 = 10;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedSnapshot {
    pub id: String,
    pub status: String,
    /// `manual` or `automated` (also `awsbackup`, `shared`, …).
    pub snapshot_type: String,
    pub created: Option<DateTime<Utc>>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScratchResource {
    pub kind: SourceKind,
    pub id: String,
    pub status: String,
    pub created: Option<DateTime<Utc>>,
    pub tags: BTreeMap<String, String>,
}

#[async_trait]
pub trait RdsBackups: Send + Sync {
    /// Every snapshot of `source_id` in `region` (None: the home Region), tags included.
    async fn list_snapshots(
        &self,
        kind: SourceKind,
        region: Option<&str>,
        source_id: &str,
    ) -> Result<Vec<ListedSnapshot>>;
    async fn delete_snapshot(
        &self,
        kind: SourceKind,
        region: Option<&str>,
        snapshot_id: &str,
    ) -> Result<()>;
    /// Instances and clusters in the home Region carrying `tag_key` = "true".
    async fn list_tagged(&self, tag_key: &str) -> Result<Vec<ScratchResource>>;
    /// Deletes a scratch instance or cluster: no final snapshot, no automated backups kept.
    async fn delete_resource(&self, kind: SourceKind, id: &str) -> Result<()>;
}

pub struct SdkRdsBackups {
    config: SdkConfig,
    home: aws_sdk_rds::Client,
}

impl SdkRdsBackups {
    pub fn new(config: &SdkConfig) -> Self {
        let home = Self::client(config, None);
        Self {
            config: config.clone(),
            home,
        }
    }

    fn client(config: &SdkConfig, region: Option<&str>) -> aws_sdk_rds::Client {
        let mut b = aws_sdk_rds::config::Builder::from(config)
            .retry_config(RetryConfig::standard().with_max_attempts(ATTEMPTS));
        if let Some(r) = region {
            b = b.region(aws_config::Region::new(r.to_string()));
        }
        aws_sdk_rds::Client::from_conf(b.build())
    }

    fn in_region(&self, region: Option<&str>) -> aws_sdk_rds::Client {
        match region {
            None => self.home.clone(),
            Some(r) => Self::client(&self.config, Some(r)),
        }
    }
}

fn place(region: Option<&str>) -> String {
    region.map(|r| format!(" in {r}")).unwrap_or_default()
}

#[async_trait]
impl RdsBackups for SdkRdsBackups {
    async fn list_snapshots(
        &self,
        kind: SourceKind,
        region: Option<&str>,
        source_id: &str,
    ) -> Result<Vec<ListedSnapshot>> {
        let client = self.in_region(region);
        let what = format!("list snapshots of {source_id}{}", place(region));
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let next = match kind {
                SourceKind::Instance => {
                    let page = client
                        .describe_db_snapshots()
                        .db_instance_identifier(source_id)
                        .max_records(PAGE)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(|e| classify_sdk_error(e, &what))?;
                    out.extend(page.db_snapshots().iter().map(|s| ListedSnapshot {
                        id: s.db_snapshot_identifier().unwrap_or("").to_string(),
                        status: s.status().unwrap_or("").to_string(),
                        snapshot_type: s.snapshot_type().unwrap_or("").to_string(),
                        created: from_sdk_time(s.snapshot_create_time()),
                        tags: tag_map(s.tag_list()),
                    }));
                    page.marker
                }
                SourceKind::Cluster => {
                    let page = client
                        .describe_db_cluster_snapshots()
                        .db_cluster_identifier(source_id)
                        .max_records(PAGE)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(|e| classify_sdk_error(e, &what))?;
                    out.extend(page.db_cluster_snapshots().iter().map(|s| ListedSnapshot {
                        id: s.db_cluster_snapshot_identifier().unwrap_or("").to_string(),
                        status: s.status().unwrap_or("").to_string(),
                        snapshot_type: s.snapshot_type().unwrap_or("").to_string(),
                        created: from_sdk_time(s.snapshot_create_time()),
                        tags: tag_map(s.tag_list()),
                    }));
                    page.marker
                }
            };
            match next {
                Some(m) if !m.is_empty() => marker = Some(m),
                _ => return Ok(out),
            }
        }
    }

    async fn delete_snapshot(
        &self,
        kind: SourceKind,
        region: Option<&str>,
        snapshot_id: &str,
    ) -> Result<()> {
        let client = self.in_region(region);
        let what = format!("delete snapshot {snapshot_id}{}", place(region));
        match kind {
            SourceKind::Instance => client
                .delete_db_snapshot()
                .db_snapshot_identifier(snapshot_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify_sdk_error(e, &what)),
            SourceKind::Cluster => client
                .delete_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(snapshot_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify_sdk_error(e, &what)),
        }
    }

    async fn list_tagged(&self, tag_key: &str) -> Result<Vec<ScratchResource>> {
        let tagged =
            |tags: &BTreeMap<String, String>| tags.get(tag_key).map(String::as_str) == Some("true");
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .home
                .describe_db_instances()
                .max_records(PAGE)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, "list db instances"))?;
            for i in page.db_instances() {
                let tags = tag_map(i.tag_list());
                if tagged(&tags) {
                    out.push(ScratchResource {
                        kind: SourceKind::Instance,
                        id: i.db_instance_identifier().unwrap_or("").to_string(),
                        status: i.db_instance_status().unwrap_or("").to_string(),
                        created: from_sdk_time(i.instance_create_time()),
                        tags,
                    });
                }
            }
            match page.marker {
                Some(m) if !m.is_empty() => marker = Some(m),
                _ => break,
            }
        }
        loop {
            let page = self
                .home
                .describe_db_clusters()
                .max_records(PAGE)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, "list db clusters"))?;
            for c in page.db_clusters() {
                let tags = tag_map(c.tag_list());
                if tagged(&tags) {
                    out.push(ScratchResource {
                        kind: SourceKind::Cluster,
                        id: c.db_cluster_identifier().unwrap_or("").to_string(),
                        status: c.status().unwrap_or("").to_string(),
                        created: from_sdk_time(c.cluster_create_time()),
                        tags,
                    });
                }
            }
            match page.marker {
                Some(m) if !m.is_empty() => marker = Some(m),
                _ => return Ok(out),
            }
        }
    }

    async fn delete_resource(&self, kind: SourceKind, id: &str) -> Result<()> {
        let what = format!("delete scratch {id}");
        match kind {
            SourceKind::Instance => self
                .home
                .delete_db_instance()
                .db_instance_identifier(id)
                .skip_final_snapshot(true)
                .delete_automated_backups(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify_sdk_error(e, &what)),
            SourceKind::Cluster => self
                .home
                .delete_db_cluster()
                .db_cluster_identifier(id)
                .skip_final_snapshot(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify_sdk_error(e, &what)),
        }
    }
}
