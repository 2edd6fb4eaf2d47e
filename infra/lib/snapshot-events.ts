import * as events from 'aws-cdk-lib/aws-events';

/** The EventBridge detail types of RDS's snapshot events (instance and Aurora cluster). */
export const SNAPSHOT_DETAIL_TYPES = ['RDS DB Snapshot Event', 'RDS DB Cluster Snapshot Event'];

/**
 * RDS events that mean "a manual snapshot is available" in this Region: RDS-EVENT-0042
 * (DB snapshot) and RDS-EVENT-0075 (DB cluster snapshot). Managed snapshots are
 * manual snapshots; RDS-EVENT-0169 is the *automated* cluster snapshot event.
 */
export const SNAPSHOT_CREATED_EVENT_IDS = ['RDS-EVENT-0042', 'RDS-EVENT-0075'];

/**
 * RDS events, in a destination Region, that mean "the copy is available there", so it
 * can be shared: RDS-EVENT-0060 "Finished copy of snapshot" (DB snapshots). Aurora
 * documents no copy event; the copy announces itself as RDS-EVENT-0075 in its Region.
 */
export const COPY_FINISHED_EVENT_IDS = ['RDS-EVENT-0060', 'RDS-EVENT-0075'];

/**
 * The start of every managed snapshot name of this database, as the snapshot function
 * makes it (request.rs `snapshot_name`: lowercase, other characters as single hyphens,
 * then `-<yyyymmdd>-<hhmm>`); the function accepts an event by the same prefix.
 */
export function managedSnapshotPrefix(dbIdentifier: string): string {
  const clean = dbIdentifier.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return `pgsteward-${clean}-`;
}

/**
 * RDS snapshot events with these ids about this database's managed snapshots. No
 * `region`: events forwarded from a copy's Region keep their own and must match too.
 */
export function snapshotEventPattern(dbIdentifier: string, eventIds: string[]): events.EventPattern {
  return {
    source: ['aws.rds'],
    detailType: SNAPSHOT_DETAIL_TYPES,
    detail: {
      EventID: [...new Set(eventIds)],
      SourceIdentifier: events.Match.prefix(managedSnapshotPrefix(dbIdentifier)),
    },
  };
}
