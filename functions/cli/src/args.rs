//! The command line, with help that teaches.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub const FUNCTIONS: &[&str] = &[
    "health-check",
    "vacuum-sweep",
    "snapshot",
    "retention-prune",
    "pitr-restore",
    "backup-verify",
];

#[derive(Parser)]
#[command(
    name = "pgsteward",
    version,
    about = "PostgreSQL maintenance runbooks as code: health checks, snapshots, restores, vacuum, retention",
    long_about = "pgsteward runs the steps of a PostgreSQL maintenance runbook for you, locally or as AWS Lambda \
functions.\n\nConnection: --database-url (or PGSTEWARD_DATABASE_URL) takes a libpq URL. TLS is on and verified \
unless the URL says sslmode=disable; name the CA with sslrootcert=/path/ca.pem or PGSTEWARD_CA_BUNDLE. \
In Lambda, PGSTEWARD_DB_SECRET_ARN (an RDS secret) or PGSTEWARD_DB_IAM_AUTH=true are used instead.",
    after_help = "Examples:\n  pgsteward health-check --database-url 'postgresql://app@localhost/orders?sslmode=disable'\n  \
pgsteward health-check --terminate-idle --dry-run --format json\n  \
pgsteward invoke health-check --event events/health-check/schedule.json"
)]
pub struct Cli {
    /// libpq connection URL, e.g. postgresql://user@host:5432/db?sslrootcert=ca.pem
    #[arg(
        long,
        global = true,
        env = "PGSTEWARD_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Publish the run report to this EventBridge bus (source "pgsteward")
    #[arg(long, global = true)]
    pub event_bus: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// Aligned columns for people; levels coloured on a terminal
    Table,
    /// The full run report, as the Lambda returns it
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum VerifyKind {
    /// The latest logical dump (pg_dump -Fc in S3 with its manifest)
    Logical,
    /// The latest managed RDS snapshot, restored to a scratch instance
    Snapshot,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SweepMode {
    Standard,
    Analyze,
    Freeze,
    Full,
    Reindex,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PruneScope {
    /// Backups, scratch resources and old rows
    All,
    /// Managed snapshots, their copies and logical dumps
    Backups,
    /// Scratch instances and clusters left by the verification drill
    Scratch,
    /// Archive-then-delete of old rows
    Rows,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PitrStep {
    /// The restorable window, the checks on the name, and the restore that would be made
    Plan,
    /// The restore itself (with --apply; else the same as plan)
    Restore,
    /// Where the restore is: status and endpoint
    Wait,
    /// Row counts, ANALYZE, connectivity and smoke queries, in the state machine's order
    Checklist,
    /// The checklist, then the application secret moved to the restore (with --apply)
    CutOver,
    /// The application secret back to its previous version (with --apply)
    Rollback,
}

#[derive(Subcommand)]
pub enum Command {
    /// Measure the runbook's monitoring metrics (cache hit ratio, dead tuples, connections,
    /// replication lag, long queries, idle-in-transaction sessions, size, xid age) and level
    /// each against the alerting thresholds (override with PGSTEWARD_THRESHOLDS)
    #[command(name = "health-check")]
    HealthCheck {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Also terminate sessions idle in a transaction past the critical limit (300 s by
        /// default), never those of protected roles (PGSTEWARD_PROTECTED_ROLES)
        #[arg(long)]
        terminate_idle: bool,
        /// With --terminate-idle: list the sessions that would be terminated, terminate none
        #[arg(long, requires = "terminate_idle")]
        dry_run: bool,
    },
    /// Plan and run targeted maintenance that never blocks production: VACUUM (ANALYZE) of
    /// tables over the dead-tuple threshold, FREEZE of tables near transaction-id wraparound,
    /// ANALYZE of stale statistics, VACUUM FULL (maintenance window only), REINDEX CONCURRENTLY
    /// of bloated indexes. Tables it cannot lock at once are skipped, not waited on
    #[command(
        name = "vacuum-sweep",
        after_help = "Examples:\n  pgsteward vacuum-sweep --dry-run                 # the plan and the reason for each table\n  \
pgsteward vacuum-sweep --jobs 4\n  pgsteward vacuum-sweep --mode freeze --table public.events\n  \
PGSTEWARD_MAINTENANCE_WINDOW=sun:03:00-sun:05:00 PGSTEWARD_FREE_STORAGE_BYTES=50000000000 pgsteward vacuum-sweep --mode full"
    )]
    VacuumSweep {
        /// standard: VACUUM (ANALYZE) / FREEZE / ANALYZE as each table needs; analyze; freeze;
        /// full (VACUUM FULL, window and storage checked); reindex (REINDEX INDEX CONCURRENTLY)
        #[arg(long, value_enum, default_value = "standard")]
        mode: SweepMode,
        /// Connections working in parallel, like vacuumdb --jobs
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Only these relations (schema.name), if the plan selects them; repeatable
        #[arg(long = "table", value_name = "SCHEMA.NAME")]
        tables: Vec<String>,
        /// Show the plan and the reason for every table; change nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Take this slot's backup: an RDS/Aurora snapshot of PGSTEWARD_DB_IDENTIFIER (named
    /// pgsteward-<db>-<yyyymmdd-hhmm>, tagged as managed; a second run in the same minute finds
    /// it), or with --logical a pg_dump -Fc streamed into S3 with a SHA-256 and a manifest
    #[command(
        name = "snapshot",
        after_help = "Examples:\n  pgsteward snapshot --dry-run\n  \
pgsteward snapshot --logical --bucket orders-backups --database-url 'postgresql://app@db/orders?sslrootcert=ca.pem'"
    )]
    Snapshot {
        /// A logical backup (pg_dump to S3) instead of an RDS snapshot
        #[arg(long)]
        logical: bool,
        /// The S3 bucket for --logical (else PGSTEWARD_BACKUP_BUCKET)
        #[arg(long)]
        bucket: Option<String>,
        /// Say what would be created; create nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show what retention would delete (every managed snapshot, copy and logical dump with
    /// keep/delete and the rule that decided), old scratch resources, and old rows to archive.
    /// Nothing is deleted without --apply. Policy: PGSTEWARD_RETENTION_POLICY (default
    /// {"days":30,"minKeep":3}); rows: PGSTEWARD_ARCHIVE_RULES
    #[command(
        name = "retention-prune",
        after_help = "Examples:\n  pgsteward retention-prune                        # the plan, nothing deleted\n  \
PGSTEWARD_RETENTION_POLICY='{\"days\":7,\"weeks\":4,\"months\":12}' pgsteward retention-prune --scope backups\n  \
pgsteward retention-prune --apply --bucket orders-backups\n\n\
Never deleted: unmanaged or automated snapshots, pinned ones (pgsteward:pinned=true), the newest verified\n\
backup, the newest minKeep backups, anything still being created."
    )]
    RetentionPrune {
        /// Delete what the plan says; without it this is a dry run
        #[arg(long)]
        apply: bool,
        /// What to cover
        #[arg(long, value_enum, default_value = "all")]
        scope: PruneScope,
        /// The bucket of logical dumps and archives (else PGSTEWARD_BACKUP_BUCKET)
        #[arg(long)]
        bucket: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Restore PGSTEWARD_DB_IDENTIFIER to a point in time as a new instance (explicit subnet
    /// group, security groups, parameter group; tags copied plus pgsteward's; never public), then
    /// the post-restore checklist: row counts against expectations, ANALYZE of every table,
    /// connectivity with the application's credentials, read-only smoke queries, and the
    /// cut-over of the application's secret. Nothing changes without --apply
    #[command(
        name = "pitr-restore",
        after_help = "Examples:\n  pgsteward pitr-restore --target orders-restore-1 --restore-time 2026-11-22T01:30:00Z   # the plan\n  \
pgsteward pitr-restore --target orders-restore-1 --latest --apply\n  \
pgsteward pitr-restore wait --target orders-restore-1\n  \
pgsteward pitr-restore checklist --target orders-restore-1 --min-rows public.orders=1000 --smoke 'SELECT count(*) FROM orders'\n  \
pgsteward pitr-restore checklist --local --database-url URL --min-rows public.orders=1000   # any database, no AWS\n  \
pgsteward pitr-restore cut-over --target orders-restore-1 --app-secret-arn ARN --apply\n\n\
Never modifies or deletes the source; never cuts over unless every check passed."
    )]
    PitrRestore {
        #[arg(value_enum, default_value = "plan")]
        step: PitrStep,
        /// The new instance's identifier
        #[arg(long, value_name = "ID")]
        target: Option<String>,
        /// RFC 3339, e.g. 2026-11-22T01:30:00Z
        #[arg(long, conflicts_with = "latest")]
        restore_time: Option<String>,
        /// The latest restorable time
        #[arg(long)]
        latest: bool,
        /// Make the change (restore, cut-over, rollback); without it they are dry runs
        #[arg(long)]
        apply: bool,
        /// Minimum rows, repeatable
        #[arg(long = "min-rows", value_name = "SCHEMA.TABLE=N")]
        min_rows: Vec<String>,
        /// "source" or "manifest:s3://bucket/key.manifest.json"
        #[arg(long)]
        compare_with: Option<String>,
        /// How far below the compared counts a table may be
        #[arg(long)]
        tolerance_percent: Option<f64>,
        /// A read-only smoke query, repeatable
        #[arg(long = "smoke", value_name = "SQL")]
        smoke: Vec<String>,
        /// The application's secret (connectivity, cut-over, rollback)
        #[arg(long, value_name = "ARN")]
        app_secret_arn: Option<String>,
        /// Run the checklist against the configured database itself (--database-url), no AWS
        #[arg(long)]
        local: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// The restore drill, end to end: pick the latest backup (managed RDS snapshot, or logical
    /// dump with its manifest), restore it to scratch (an instance, or a database on the
    /// verification server), check every table's rows against the manifest, amcheck every
    /// B-tree index, checksum failures, smoke queries, RTO/RPO against targets; tag the backup
    /// verified when all passed; always tear the scratch down; report. Exits 1 when the drill failed
    #[command(
        name = "backup-verify",
        after_help = "Examples:\n  pgsteward backup-verify --kind logical --bucket orders-backups --database-url URL\n  \
pgsteward backup-verify --kind logical --verify-database-url URL --format json\n  \
pgsteward backup-verify --kind snapshot --dry-run\n\n\
Never touches what the drill did not create; never tags a backup that failed a check."
    )]
    BackupVerify {
        #[arg(long, value_enum, default_value = "logical")]
        kind: VerifyKind,
        /// Test a random backup of the last --window-days days instead of the latest
        #[arg(long)]
        random: bool,
        #[arg(long, default_value_t = 7)]
        window_days: u32,
        /// Where the dumps are (PGSTEWARD_BACKUP_BUCKET)
        #[arg(long)]
        bucket: Option<String>,
        /// The server scratch databases are restored on (PGSTEWARD_VERIFY_DATABASE_URL;
        /// default: --database-url's server)
        #[arg(long, value_name = "URL")]
        verify_database_url: Option<String>,
        /// pg_restore --jobs (default: the cores, for dumps of 32 MiB and more)
        #[arg(long)]
        jobs: Option<u32>,
        /// Pick and check the checksum only: restore, tag and delete nothing
        #[arg(long)]
        dry_run: bool,
        /// Seconds between polls of a scratch instance, and how many polls
        #[arg(long, default_value_t = 30)]
        poll_seconds: u64,
        #[arg(long, default_value_t = 60)]
        polls: u32,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Run a Lambda handler in-process on an event file and print its JSON result; on failure
    /// print {errorType, errorMessage} and exit non-zero. Configuration comes from the same
    /// environment variables the Lambda reads
    Invoke {
        /// The function: health-check, vacuum-sweep, snapshot, retention-prune, pitr-restore or backup-verify
        function: String,
        /// A JSON event, e.g. one from events/<function>/
        #[arg(long)]
        event: PathBuf,
    },
}
