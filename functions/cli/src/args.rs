//! The command line, with help that teaches.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub const FUNCTIONS: &[&str] = &["health-check"];

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
    /// Run a Lambda handler in-process on an event file and print its JSON result; on failure
    /// print {errorType, errorMessage} and exit non-zero. Configuration comes from the same
    /// environment variables the Lambda reads
    Invoke {
        /// The function: health-check
        function: String,
        /// A JSON event, e.g. one from events/<function>/
        #[arg(long)]
        event: PathBuf,
    },
}
