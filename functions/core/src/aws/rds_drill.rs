//! What the verification drill needs of RDS beyond the restore port: restore a snapshot as a
//! scratch instance (or cluster) and tag a snapshot as verified.

use super::rds_convert::sdk_tags;
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_rds::types::Tag;

use super::classify_sdk_error;
use super::rds_snapshots::SourceKind;
use crate::error::{Error, Result};

/// A scratch restore of `snapshot` as `target`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScratchSpec {
    pub kind: SourceKind,
    pub snapshot: String,
    pub target: String,
    pub instance_class: String,
    pub subnet_group: String,
    pub security_groups: Vec<String>,
    pub tags: Vec<(String, String)>,
}

#[async_trait]
pub trait RdsDrill: Send + Sync {
    /// RestoreDBInstanceFromDBSnapshot (or RestoreDBClusterFromSnapshot), private, tagged.
    async fn restore_snapshot(&self, spec: &ScratchSpec) -> Result<()>;
    /// Adds (or replaces) one tag on a snapshot.
    async fn tag_snapshot(
        &self,
        kind: SourceKind,
        snapshot: &str,
        key: &str,
        value: &str,
    ) -> Result<()>;
}

pub struct SdkRdsDrill {
    client: aws_sdk_rds::Client,
}

impl SdkRdsDrill {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_rds::Client::new(config),
        }
    }
}

#[async_trait]
impl RdsDrill for SdkRdsDrill {
    async fn restore_snapshot(&self, spec: &ScratchSpec) -> Result<()> {
        let what = format!("restore snapshot {} to {}", spec.snapshot, spec.target);
        match spec.kind {
            SourceKind::Instance => self
                .client
                .restore_db_instance_from_db_snapshot()
                .db_snapshot_identifier(&spec.snapshot)
                .db_instance_identifier(&spec.target)
                .db_instance_class(&spec.instance_class)
                .db_subnet_group_name(&spec.subnet_group)
                .set_vpc_security_group_ids(Some(spec.security_groups.clone()))
                .publicly_accessible(false)
                .multi_az(false)
                .set_tags(Some(sdk_tags(&spec.tags)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify_sdk_error(e, &what)),
            SourceKind::Cluster => self
                .client
                .restore_db_cluster_from_snapshot()
                .snapshot_identifier(&spec.snapshot)
                .db_cluster_identifier(&spec.target)
                .engine("aurora-postgresql")
                .db_subnet_group_name(&spec.subnet_group)
                .set_vpc_security_group_ids(Some(spec.security_groups.clone()))
                .set_tags(Some(sdk_tags(&spec.tags)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify_sdk_error(e, &what)),
        }
    }

    async fn tag_snapshot(
        &self,
        kind: SourceKind,
        snapshot: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        let what = format!("tag snapshot {snapshot}");
        let arn = match kind {
            SourceKind::Instance => self
                .client
                .describe_db_snapshots()
                .db_snapshot_identifier(snapshot)
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, &what))?
                .db_snapshots()
                .first()
                .and_then(|s| s.db_snapshot_arn().map(str::to_string)),
            SourceKind::Cluster => self
                .client
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(snapshot)
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, &what))?
                .db_cluster_snapshots()
                .first()
                .and_then(|s| s.db_cluster_snapshot_arn().map(str::to_string)),
        }
        .ok_or_else(|| Error::NotFound(format!("snapshot '{snapshot}' does not exist")))?;
        self.client
            .add_tags_to_resource()
            .resource_name(arn)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify_sdk_error(e, &what))
    }
}
