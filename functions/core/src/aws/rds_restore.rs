//! The RDS port for point-in-time restores, shaped by what pitr-restore needs, and its SDK
//! adapter. The only mutating call is `restore`; nothing here modifies or deletes a source.

use super::rds_convert::{from_sdk_time, not_found_is_none, sdk_tags, tag_pairs, to_sdk_time};
use async_trait::async_trait;
use aws_config::SdkConfig;
use chrono::{DateTime, Utc};

use super::classify_sdk_error;
use super::rds_snapshots::SourceKind;
use crate::error::{Error, Result};

/// What validation needs to know about the source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    pub status: String,
    pub arn: String,
    pub instance_class: Option<String>,
    pub engine: Option<String>,
    pub backup_retention_days: i32,
    /// Instances: `LatestRestorableTime`; clusters: the same.
    pub latest_restorable: Option<DateTime<Utc>>,
    /// Clusters: `EarliestRestorableTime`. Instances: from the automated backups.
    pub earliest_restorable: Option<DateTime<Utc>>,
    pub tags: Vec<(String, String)>,
}

/// A restored instance (or cluster) as RDS describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetInfo {
    pub status: String,
    pub endpoint: Option<Endpoint>,
    #[serde(skip)]
    pub tags: Vec<(String, String)>,
    /// When RDS created it: statistics gathered after this were gathered on the restore.
    #[serde(skip)]
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    pub address: String,
    pub port: u16,
}

/// Everything a restore call carries, decided before it is made.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    pub kind: SourceKind,
    pub source: String,
    pub target: String,
    /// None: the latest restorable time.
    pub restore_time: Option<DateTime<Utc>>,
    pub subnet_group: String,
    pub security_groups: Vec<String>,
    pub parameter_group: Option<String>,
    pub instance_class: Option<String>,
    pub engine: Option<String>,
    pub tags: Vec<(String, String)>,
}

#[async_trait]
pub trait RdsRestore: Send + Sync {
    /// The source instance or cluster, or None when there is none by that name.
    async fn source(&self, kind: SourceKind, id: &str) -> Result<Option<SourceInfo>>;
    /// Instances: the earliest restorable time of the automated backups (their restore
    /// window, else the oldest automated snapshot), or None when there are none.
    async fn earliest_restorable(&self, id: &str) -> Result<Option<DateTime<Utc>>>;
    /// The restored instance (or cluster), or None.
    async fn target(&self, kind: SourceKind, id: &str) -> Result<Option<TargetInfo>>;
    /// RestoreDBInstanceToPointInTime / RestoreDBClusterToPointInTime, not publicly accessible.
    async fn restore(&self, spec: &RestoreSpec) -> Result<TargetInfo>;
    /// A restored Aurora cluster has no instance: adds its writer (`cluster_writer`).
    async fn add_writer(&self, spec: &RestoreSpec) -> Result<()>;
}

/// A restored cluster whose writer instance does not exist (yet).
pub const WRITER_MISSING: &str = "writer-missing";

pub struct SdkRdsRestore {
    client: aws_sdk_rds::Client,
}

impl SdkRdsRestore {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_rds::Client::new(config),
        }
    }
}

/// The writer instance of a restored Aurora cluster.
pub fn cluster_writer(target: &str) -> String {
    format!("{target}-writer")
}

#[async_trait]
impl RdsRestore for SdkRdsRestore {
    async fn source(&self, kind: SourceKind, id: &str) -> Result<Option<SourceInfo>> {
        let what = format!("describe source {id}");
        let found = match kind {
            SourceKind::Instance => self
                .client
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, &what))
                .map(|o| {
                    o.db_instances().first().map(|i| SourceInfo {
                        status: i.db_instance_status().unwrap_or_default().to_string(),
                        arn: i.db_instance_arn().unwrap_or_default().to_string(),
                        instance_class: i.db_instance_class().map(str::to_string),
                        engine: i.engine().map(str::to_string),
                        backup_retention_days: i.backup_retention_period().unwrap_or(0),
                        latest_restorable: from_sdk_time(i.latest_restorable_time()),
                        earliest_restorable: None,
                        tags: tag_pairs(i.tag_list()),
                    })
                }),
            SourceKind::Cluster => self
                .client
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, &what))
                .map(|o| {
                    o.db_clusters().first().map(|c| SourceInfo {
                        status: c.status().unwrap_or_default().to_string(),
                        arn: c.db_cluster_arn().unwrap_or_default().to_string(),
                        instance_class: c.db_cluster_instance_class().map(str::to_string),
                        engine: c.engine().map(str::to_string),
                        backup_retention_days: c.backup_retention_period().unwrap_or(0),
                        latest_restorable: from_sdk_time(c.latest_restorable_time()),
                        earliest_restorable: from_sdk_time(c.earliest_restorable_time()),
                        tags: tag_pairs(c.tag_list()),
                    })
                }),
        };
        not_found_is_none(found)
    }

    async fn earliest_restorable(&self, id: &str) -> Result<Option<DateTime<Utc>>> {
        let what = format!("describe automated backups of {id}");
        let backups = self
            .client
            .describe_db_instance_automated_backups()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, &what));
        let backups = not_found_is_none(backups.map(Some))?;
        let window = backups
            .iter()
            .flat_map(|o| o.db_instance_automated_backups())
            .filter_map(|b| from_sdk_time(b.restore_window()?.earliest_time()))
            .min();
        if window.is_some() {
            return Ok(window);
        }
        // Some endpoints (and emulators) give no restore window: the oldest automated
        // snapshot is where the backups start.
        let what = format!("describe automated snapshots of {id}");
        let snaps = self
            .client
            .describe_db_snapshots()
            .db_instance_identifier(id)
            .snapshot_type("automated")
            .send()
            .await
            .map_err(|e| classify_sdk_error(e, &what));
        Ok(not_found_is_none(snaps.map(Some))?
            .iter()
            .flat_map(|o| o.db_snapshots())
            .filter_map(|s| from_sdk_time(s.snapshot_create_time()))
            .min())
    }

    async fn target(&self, kind: SourceKind, id: &str) -> Result<Option<TargetInfo>> {
        let what = format!("describe restored {id}");
        let found = match kind {
            SourceKind::Instance => self
                .client
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, &what))
                .map(|o| {
                    o.db_instances().first().map(|i| TargetInfo {
                        status: i.db_instance_status().unwrap_or_default().to_string(),
                        endpoint: i.endpoint().and_then(|e| {
                            Some(Endpoint {
                                address: e.address()?.to_string(),
                                port: u16::try_from(e.port()?).ok()?,
                            })
                        }),
                        tags: tag_pairs(i.tag_list()),
                        created_at: from_sdk_time(i.instance_create_time()),
                    })
                }),
            SourceKind::Cluster => self
                .client
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, &what))
                .map(|o| {
                    o.db_clusters().first().map(|c| TargetInfo {
                        status: c.status().unwrap_or_default().to_string(),
                        endpoint: c.endpoint().and_then(|a| {
                            Some(Endpoint {
                                address: a.to_string(),
                                port: u16::try_from(c.port()?).ok()?,
                            })
                        }),
                        tags: tag_pairs(c.tag_list()),
                        created_at: from_sdk_time(c.cluster_create_time()),
                    })
                }),
        };
        let mut found = not_found_is_none(found)?;
        // An available cluster serves SQL only once its writer is available too.
        if let (SourceKind::Cluster, Some(t)) = (kind, found.as_mut()) {
            if t.status == "available" {
                let writer = cluster_writer(id);
                t.status = match self.target(SourceKind::Instance, &writer).await? {
                    None => WRITER_MISSING.to_string(),
                    Some(w) => w.status,
                };
            }
        }
        Ok(found)
    }

    async fn restore(&self, spec: &RestoreSpec) -> Result<TargetInfo> {
        let what = format!("restore {} to {}", spec.source, spec.target);
        match spec.kind {
            SourceKind::Instance => {
                let out = self
                    .client
                    .restore_db_instance_to_point_in_time()
                    .source_db_instance_identifier(&spec.source)
                    .target_db_instance_identifier(&spec.target)
                    .set_restore_time(spec.restore_time.map(to_sdk_time))
                    .use_latest_restorable_time(spec.restore_time.is_none())
                    .db_subnet_group_name(&spec.subnet_group)
                    .set_vpc_security_group_ids(Some(spec.security_groups.clone()))
                    .set_db_parameter_group_name(spec.parameter_group.clone())
                    .set_db_instance_class(spec.instance_class.clone())
                    .publicly_accessible(false)
                    .copy_tags_to_snapshot(true)
                    .set_tags(Some(sdk_tags(&spec.tags)))
                    .send()
                    .await
                    .map_err(|e| classify_sdk_error(e, &what))?;
                let i = out
                    .db_instance
                    .ok_or_else(|| Error::internal(format!("{what}: no instance in the answer")))?;
                Ok(TargetInfo {
                    status: i.db_instance_status.unwrap_or_default(),
                    endpoint: None,
                    tags: spec.tags.clone(),
                    created_at: None,
                })
            }
            SourceKind::Cluster => {
                let out = self
                    .client
                    .restore_db_cluster_to_point_in_time()
                    .source_db_cluster_identifier(&spec.source)
                    .db_cluster_identifier(&spec.target)
                    .set_restore_to_time(spec.restore_time.map(to_sdk_time))
                    .use_latest_restorable_time(spec.restore_time.is_none())
                    .db_subnet_group_name(&spec.subnet_group)
                    .set_vpc_security_group_ids(Some(spec.security_groups.clone()))
                    .set_db_cluster_parameter_group_name(spec.parameter_group.clone())
                    .copy_tags_to_snapshot(true)
                    .set_tags(Some(sdk_tags(&spec.tags)))
                    .send()
                    .await
                    .map_err(|e| classify_sdk_error(e, &what))?;
                let c = out
                    .db_cluster
                    .ok_or_else(|| Error::internal(format!("{what}: no cluster in the answer")))?;
                Ok(TargetInfo {
                    status: c.status.unwrap_or_default(),
                    endpoint: None,
                    tags: spec.tags.clone(),
                    created_at: None,
                })
            }
        }
    }

    async fn add_writer(&self, spec: &RestoreSpec) -> Result<()> {
        let writer = cluster_writer(&spec.target);
        let class = spec.instance_class.clone().ok_or_else(|| {
            Error::InvalidConfig(format!(
                "the writer of '{}' needs an instance class; set PGSTEWARD_RESTORE_INSTANCE_CLASS, e.g. db.r6g.large",
                spec.target
            ))
        })?;
        self.client
            .create_db_instance()
            .db_instance_identifier(&writer)
            .db_cluster_identifier(&spec.target)
            .db_instance_class(class)
            .set_engine(spec.engine.clone())
            .publicly_accessible(false)
            .set_tags(Some(sdk_tags(&spec.tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_sdk_error(e, &format!("create writer {writer}")))
    }
}
