//! The RDS port for snapshots, shaped by what the snapshot task needs, and its SDK adapter.

use super::rds_convert::{not_found_is_none, sdk_tags};
use async_trait::async_trait;
use aws_config::SdkConfig;

use super::classify_sdk_error;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// An RDS DB instance.
    Instance,
    /// An Aurora DB cluster.
    Cluster,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    pub id: String,
    pub status: String,
    pub arn: Option<String>,
}

#[async_trait]
pub trait RdsSnapshots: Send + Sync {
    /// The source's status, or None when it does not exist.
    async fn source_status(&self, kind: SourceKind, id: &str) -> Result<Option<String>>;
    async fn find_snapshot(
        &self,
        kind: SourceKind,
        snapshot_id: &str,
    ) -> Result<Option<SnapshotInfo>>;
    async fn create_snapshot(
        &self,
        kind: SourceKind,
        source_id: &str,
        snapshot_id: &str,
        tags: &[(String, String)],
    ) -> Result<SnapshotInfo>;
    /// (used, max) of the account's manual-snapshot quota, when the API tells.
    async fn manual_snapshot_quota(&self) -> Result<Option<(i64, i64)>>;
    /// Snapshot copies still in progress in `region` (RDS allows 5 cross-Region copies at once).
    async fn copies_in_progress(&self, kind: SourceKind, region: &str) -> Result<usize>;
    /// `snapshot_id` in `region`, or None when it is not there.
    async fn find_in(
        &self,
        kind: SourceKind,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Option<SnapshotInfo>>;
    /// Starts a copy of `source_arn` into `region` as `target_id`, tags copied and added.
    async fn copy_to(
        &self,
        kind: SourceKind,
        source_arn: &str,
        region: &str,
        target_id: &str,
        kms_key: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<()>;
    /// The Region this client works in (the function's home Region), when configured.
    fn home_region(&self) -> Option<String>;
    /// Accounts allowed to restore `snapshot_id` in `region` (its `restore` attribute;
    /// `all` means public).
    async fn restore_accounts(
        &self,
        kind: SourceKind,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>>;
    /// Adds `account` to the accounts allowed to restore `snapshot_id` in `region`.
    async fn share_with(
        &self,
        kind: SourceKind,
        region: &str,
        snapshot_id: &str,
        account: &str,
    ) -> Result<()>;
}

/// The snapshot attribute that lists the accounts allowed to copy or restore it.
const RESTORE: &str = "restore";

pub struct SdkRdsSnapshots {
    client: aws_sdk_rds::Client,
    config: SdkConfig,
}

impl SdkRdsSnapshots {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_rds::Client::new(config),
            config: config.clone(),
        }
    }

    fn in_region(&self, region: &str) -> aws_sdk_rds::Client {
        let conf = aws_sdk_rds::config::Builder::from(&self.config)
            .region(aws_config::Region::new(region.to_string()))
            .build();
        aws_sdk_rds::Client::from_conf(conf)
    }
}

#[async_trait]
impl RdsSnapshots for SdkRdsSnapshots {
    async fn source_status(&self, kind: SourceKind, id: &str) -> Result<Option<String>> {
        let what = format!(
            "describe {} {id}",
            if kind == SourceKind::Instance {
                "db instance"
            } else {
                "db cluster"
            }
        );
        let found = match kind {
            SourceKind::Instance => self
                .client
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
                .map(|o| {
                    o.db_instances
                        .unwrap_or_default()
                        .first()
                        .and_then(|i| i.db_instance_status.clone())
                })
                .map_err(|e| classify_sdk_error(e, &what)),
            SourceKind::Cluster => self
                .client
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
                .map(|o| {
                    o.db_clusters
                        .unwrap_or_default()
                        .first()
                        .and_then(|c| c.status.clone())
                })
                .map_err(|e| classify_sdk_error(e, &what)),
        };
        not_found_is_none(found)
    }

    async fn find_snapshot(
        &self,
        kind: SourceKind,
        snapshot_id: &str,
    ) -> Result<Option<SnapshotInfo>> {
        let what = format!("describe snapshot {snapshot_id}");
        let found = match kind {
            SourceKind::Instance => self
                .client
                .describe_db_snapshots()
                .db_snapshot_identifier(snapshot_id)
                .send()
                .await
                .map(|o| {
                    o.db_snapshots
                        .unwrap_or_default()
                        .first()
                        .map(|s| SnapshotInfo {
                            id: snapshot_id.into(),
                            status: s.status.clone().unwrap_or_default(),
                            arn: s.db_snapshot_arn.clone(),
                        })
                })
                .map_err(|e| classify_sdk_error(e, &what)),
            SourceKind::Cluster => self
                .client
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(snapshot_id)
                .send()
                .await
                .map(|o| {
                    o.db_cluster_snapshots
                        .unwrap_or_default()
                        .first()
                        .map(|s| SnapshotInfo {
                            id: snapshot_id.into(),
                            status: s.status.clone().unwrap_or_default(),
                            arn: s.db_cluster_snapshot_arn.clone(),
                        })
                })
                .map_err(|e| classify_sdk_error(e, &what)),
        };
        not_found_is_none(found)
    }

    async fn create_snapshot(
        &self,
        kind: SourceKind,
        source_id: &str,
        snapshot_id: &str,
        pairs: &[(String, String)],
    ) -> Result<SnapshotInfo> {
        let what = format!("create snapshot {snapshot_id} of {source_id}");
        match kind {
            SourceKind::Instance => {
                let out = self
                    .client
                    .create_db_snapshot()
                    .db_instance_identifier(source_id)
                    .db_snapshot_identifier(snapshot_id)
                    .set_tags(Some(sdk_tags(pairs)))
                    .send()
                    .await
                    .map_err(|e| classify_sdk_error(e, &what))?;
                let s = out
                    .db_snapshot
                    .ok_or_else(|| Error::internal(format!("{what}: no snapshot in the answer")))?;
                Ok(SnapshotInfo {
                    id: snapshot_id.into(),
                    status: s.status.unwrap_or_default(),
                    arn: s.db_snapshot_arn,
                })
            }
            SourceKind::Cluster => {
                let out = self
                    .client
                    .create_db_cluster_snapshot()
                    .db_cluster_identifier(source_id)
                    .db_cluster_snapshot_identifier(snapshot_id)
                    .set_tags(Some(sdk_tags(pairs)))
                    .send()
                    .await
                    .map_err(|e| classify_sdk_error(e, &what))?;
                let s = out
                    .db_cluster_snapshot
                    .ok_or_else(|| Error::internal(format!("{what}: no snapshot in the answer")))?;
                Ok(SnapshotInfo {
                    id: snapshot_id.into(),
                    status: s.status.unwrap_or_default(),
                    arn: s.db_cluster_snapshot_arn,
                })
            }
        }
    }

    async fn manual_snapshot_quota(&self) -> Result<Option<(i64, i64)>> {
        let out = match self.client.describe_account_attributes().send().await {
            Ok(out) => out,
            // Some endpoints (and emulators) do not answer it: the quota is then unknown.
            Err(e) => {
                return match classify_sdk_error(e, "describe account attributes") {
                    Error::Internal(_) | Error::Retryable(_) => Ok(None),
                    other => Err(other),
                }
            }
        };
        Ok(out
            .account_quotas
            .unwrap_or_default()
            .iter()
            .find(|q| q.account_quota_name() == Some("ManualSnapshots"))
            .and_then(|q| Some((q.used()?, q.max()?))))
    }

    async fn copies_in_progress(&self, kind: SourceKind, region: &str) -> Result<usize> {
        let client = self.in_region(region);
        let what = format!("list snapshots in {region}");
        let busy = |s: Option<&str>| matches!(s, Some("creating" | "copying" | "pending"));
        Ok(match kind {
            SourceKind::Instance => client
                .describe_db_snapshots()
                .snapshot_type("manual")
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, &what))?
                .db_snapshots()
                .iter()
                .filter(|s| busy(s.status()))
                .count(),
            SourceKind::Cluster => client
                .describe_db_cluster_snapshots()
                .snapshot_type("manual")
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, &what))?
                .db_cluster_snapshots()
                .iter()
                .filter(|s| busy(s.status()))
                .count(),
        })
    }

    async fn find_in(
        &self,
        kind: SourceKind,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Option<SnapshotInfo>> {
        let regional = SdkRdsSnapshots {
            client: self.in_region(region),
            config: self.config.clone(),
        };
        regional.find_snapshot(kind, snapshot_id).await
    }

    async fn copy_to(
        &self,
        kind: SourceKind,
        source_arn: &str,
        region: &str,
        target_id: &str,
        kms_key: Option<&str>,
        pairs: &[(String, String)],
    ) -> Result<()> {
        let client = self.in_region(region);
        let what = format!("copy {source_arn} to {region} as {target_id}");
        // RDS builds the cross-Region pre-signed request itself outside GovCloud.
        match kind {
            SourceKind::Instance => client
                .copy_db_snapshot()
                .source_db_snapshot_identifier(source_arn)
                .target_db_snapshot_identifier(target_id)
                .set_kms_key_id(kms_key.map(str::to_string))
                .copy_tags(true)
                .set_tags(Some(sdk_tags(pairs)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify_sdk_error(e, &what)),
            SourceKind::Cluster => client
                .copy_db_cluster_snapshot()
                .source_db_cluster_snapshot_identifier(source_arn)
                .target_db_cluster_snapshot_identifier(target_id)
                .set_kms_key_id(kms_key.map(str::to_string))
                .copy_tags(true)
                .set_tags(Some(sdk_tags(pairs)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify_sdk_error(e, &what)),
        }
    }

    fn home_region(&self) -> Option<String> {
        self.config.region().map(|r| r.to_string())
    }

    async fn restore_accounts(
        &self,
        kind: SourceKind,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>> {
        let client = self.in_region(region);
        let what = format!("read who may restore snapshot {snapshot_id} in {region}");
        let accounts = match kind {
            SourceKind::Instance => client
                .describe_db_snapshot_attributes()
                .db_snapshot_identifier(snapshot_id)
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, &what))?
                .db_snapshot_attributes_result
                .map(|r| {
                    r.db_snapshot_attributes
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|a| a.attribute_name() == Some(RESTORE))
                        .flat_map(|a| a.attribute_values.unwrap_or_default())
                        .collect()
                }),
            SourceKind::Cluster => client
                .describe_db_cluster_snapshot_attributes()
                .db_cluster_snapshot_identifier(snapshot_id)
                .send()
                .await
                .map_err(|e| classify_sdk_error(e, &what))?
                .db_cluster_snapshot_attributes_result
                .map(|r| {
                    r.db_cluster_snapshot_attributes
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|a| a.attribute_name() == Some(RESTORE))
                        .flat_map(|a| a.attribute_values.unwrap_or_default())
                        .collect()
                }),
        };
        Ok(accounts.unwrap_or_default())
    }

    async fn share_with(
        &self,
        kind: SourceKind,
        region: &str,
        snapshot_id: &str,
        account: &str,
    ) -> Result<()> {
        let client = self.in_region(region);
        let what = format!("share snapshot {snapshot_id} in {region} with account {account}");
        match kind {
            SourceKind::Instance => client
                .modify_db_snapshot_attribute()
                .db_snapshot_identifier(snapshot_id)
                .attribute_name(RESTORE)
                .values_to_add(account)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify_sdk_error(e, &what)),
            SourceKind::Cluster => client
                .modify_db_cluster_snapshot_attribute()
                .db_cluster_snapshot_identifier(snapshot_id)
                .attribute_name(RESTORE)
                .values_to_add(account)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify_sdk_error(e, &what)),
        }
    }
}
