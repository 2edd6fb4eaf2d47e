//! What the planner reads: one catalog query for tables (and one for indexes in `reindex`
//! mode), never a round trip per table.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::error::Result;

/// One table as the catalog and the statistics collector see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableStats {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub live_tuples: i64,
    pub dead_tuples: i64,
    pub mods_since_analyze: i64,
    pub analyzed: bool,
    pub xid_age: i64,
    pub mxid_age: i64,
    /// `relpages × block_size`: an estimate that needs no file access.
    pub table_bytes: i64,
    /// Bytes the live rows need by their average width (from pg_stats), when analyzed.
    pub live_bytes_estimate: Option<i64>,
}

impl TableStats {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    pub fn dead_ratio(&self) -> f64 {
        let total = self.live_tuples + self.dead_tuples;
        if total == 0 {
            0.0
        } else {
            self.dead_tuples as f64 / total as f64
        }
    }

    /// Estimated share of the table that is not live data: from the row width when the
    /// table has statistics, else from the dead-tuple ratio.
    pub fn bloat_estimate(&self) -> f64 {
        match self.live_bytes_estimate {
            Some(live) if self.table_bytes > 0 => {
                (1.0 - live as f64 / self.table_bytes as f64).clamp(0.0, 1.0)
            }
            _ => self.dead_ratio(),
        }
    }
}

// Ordinary tables and materialized views, leaf partitions included (partitioned parents hold
// no rows); temporary tables, ours or other sessions', are never touched.
const TABLES_SQL: &str = r#"
SELECT coalesce(json_agg(json_build_object(
  'oid', c.oid::int8, 'schema', n.nspname, 'name', c.relname,
  'liveTuples', coalesce(s.n_live_tup, 0), 'deadTuples', coalesce(s.n_dead_tup, 0),
  'modsSinceAnalyze', coalesce(s.n_mod_since_analyze, 0),
  'analyzed', (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL),
  'xidAge', age(c.relfrozenxid), 'mxidAge', mxid_age(c.relminmxid),
  'tableBytes', c.relpages::int8 * current_setting('block_size')::int8,
  'liveBytesEstimate', WIDTH
)), '[]')::text
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
"#;

/// Row width from pg_stats, only where it is needed (VACUUM FULL's bloat guard): a join
/// per table that the other modes need not pay for.
const WIDTH_SQL: &str = "(SELECT (coalesce(s.n_live_tup, 0) * (sum(st.avg_width) + 28))::int8
  FROM pg_stats st WHERE st.schemaname = n.nspname AND st.tablename = c.relname)";

pub async fn load_tables(client: &Client, with_width: bool) -> Result<Vec<TableStats>> {
    let sql = TABLES_SQL.replace("WIDTH", if with_width { WIDTH_SQL } else { "NULL::int8" });
    crate::pg::query_json(client, &sql, "table catalog").await
}

/// A B-tree index with its estimated bloat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexStats {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub table: String,
    pub valid: bool,
    pub bytes: i64,
    /// Pages the entries would fill at the default 90% fill factor.
    pub expected_bytes: Option<i64>,
}

impl IndexStats {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    pub fn bloat_estimate(&self) -> f64 {
        match self.expected_bytes {
            Some(e) if self.bytes > 0 => (1.0 - e as f64 / self.bytes as f64).clamp(0.0, 1.0),
            _ => 0.0,
        }
    }
}

// Entry size: 8-byte tuple header + key width (from pg_stats, 8 bytes when unknown) rounded
// up to 8, + a 4-byte line pointer; plus one metapage.
const INDEXES_SQL: &str = r#"
SELECT coalesce(json_agg(json_build_object(
  'oid', ci.oid::int8, 'schema', n.nspname, 'name', ci.relname, 'table', ct.relname,
  'valid', i.indisvalid,
  'bytes', ci.relpages::int8 * bs.size,
  'expectedBytes', CASE WHEN ci.reltuples > 0 THEN (bs.size + ceil(ci.reltuples * (12 + 8 * ceil(
      (SELECT coalesce(sum(coalesce(st.avg_width, 8)), 8) FROM pg_attribute a
       LEFT JOIN pg_stats st ON st.schemaname = n.nspname AND st.tablename = ct.relname AND st.attname = a.attname
       WHERE a.attrelid = ci.oid AND a.attnum > 0) / 8.0)) / (bs.size * 0.9)) * bs.size)::int8 END
)), '[]')::text
FROM pg_index i
JOIN pg_class ci ON ci.oid = i.indexrelid
JOIN pg_class ct ON ct.oid = i.indrelid
JOIN pg_namespace n ON n.oid = ci.relnamespace
JOIN pg_am am ON am.oid = ci.relam
CROSS JOIN (SELECT current_setting('block_size')::int8 AS size) bs
WHERE am.amname = 'btree' AND ci.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
"#;

pub async fn load_indexes(client: &Client) -> Result<Vec<IndexStats>> {
    crate::pg::query_json(client, INDEXES_SQL, "index catalog").await
}
