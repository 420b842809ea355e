//! Table checksums: an order-independent fingerprint of each table's content, computed inside
//! the database in one sequential scan, compared source against restored copy; on a mismatch,
//! narrowed by bisection over the primary key to the key ranges (and at the leaves, the keys)
//! that differ.
//!
//! The fingerprint of a table is (row count, exact sum of 64-bit row hashes), each row hashed by `hash_record_extended` (PostgreSQL 14+), or by `hashtextextended` of the
//! row's text form for types without an extended hash. A sum is order-independent, so
//! a heap in another physical order (every restore) gives the same fingerprint. The collision
//! bound is in the README.
//!
//! Boundary: reads only. The caller chooses the snapshot (e.g. `SET TRANSACTION SNAPSHOT` to
//! see the source as the backup saw it).

use std::fmt;

use tokio_postgres::Client;

/// A table, schema-qualified.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    /// Quoted for SQL.
    pub fn sql(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The fingerprint of a table or of a key range of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub rows: i64,
    /// Exact sum of the row hashes (numeric, as text: it does not fit 64 bits).
    pub sum: String,
}

/// Settings that fix the text form of values, for the text-hash fallback: both sides must
/// print a timestamp or a float the same way.
const TEXT_FORM: &str = "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; \
    SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; SET bytea_output = 'hex'";

/// Prepares a session for checksumming.
pub async fn prepare(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(TEXT_FORM).await
}

/// User tables with storage (plain tables and leaf partitions), in name order.
pub async fn tables(client: &Client) -> Result<Vec<TableName>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' \
             ORDER BY 1, 2",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TableName {
            schema: r.get(0),
            name: r.get(1),
        })
        .collect())
}

/// How rows are hashed: typed (`hash_record_extended`, exact per type, fast) or by text form
/// (for tables with a column type that has no extended hash function, such as `json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowHash {
    Typed,
    Text,
}

impl RowHash {
    fn sql(self) -> &'static str {
        match self {
            RowHash::Typed => "hash_record_extended(t.*, 0)",
            RowHash::Text => "hashtextextended(t::text, 0)",
        }
    }
}

/// One aggregate over the hash: the planner pulls the subquery up and would compute the hash
/// once per aggregate using it (`benches/checksum.rs` measures a second one, `bit_xor`).
pub fn fingerprint_sql(table: &TableName, hash: RowHash, filter: &str) -> String {
    let hash = hash.sql();
    format!(
        "SELECT count(*), coalesce(sum(h), 0)::text \
         FROM (SELECT {hash} AS h FROM ONLY {} t {filter}) x",
        table.sql()
    )
}

/// The fingerprint of a whole table, in one scan, and the row hash that worked: typed if it
/// can, else text. The other side of a comparison must use the same [`RowHash`].
pub async fn fingerprint(
    client: &Client,
    table: &TableName,
) -> Result<(Fingerprint, RowHash), tokio_postgres::Error> {
    // Inside a transaction (a source read in a dump's exported snapshot) the failed attempt
    // would abort it: try under a savepoint there. Outside one, SAVEPOINT itself fails (25P01).
    let savepoint = match client.batch_execute("SAVEPOINT firedrill_hash").await {
        Ok(()) => true,
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::NO_ACTIVE_SQL_TRANSACTION) => {
            false
        }
        Err(e) => return Err(e),
    };
    match fingerprint_with(client, table, RowHash::Typed).await {
        Ok(f) => {
            if savepoint {
                client
                    .batch_execute("RELEASE SAVEPOINT firedrill_hash")
                    .await?;
            }
            Ok((f, RowHash::Typed))
        }
        // "could not identify an extended hash function for type ...": raised at the first
        // value of such a type, so usually at once.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_FUNCTION) => {
            if savepoint {
                client
                    .batch_execute(
                        "ROLLBACK TO SAVEPOINT firedrill_hash; RELEASE SAVEPOINT firedrill_hash",
                    )
                    .await?;
            }
            Ok((
                fingerprint_with(client, table, RowHash::Text).await?,
                RowHash::Text,
            ))
        }
        Err(e) => Err(e),
    }
}

pub async fn fingerprint_with(
    client: &Client,
    table: &TableName,
    hash: RowHash,
) -> Result<Fingerprint, tokio_postgres::Error> {
    fingerprint_of(client, &fingerprint_sql(table, hash, "")).await
}

/// How a table differs between source and restored copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    MissingInRestored,
    OnlyInRestored,
    /// Same row count or not, different content; `ranges` names where, when a primary key
    /// allowed narrowing.
    Content {
        source_rows: i64,
        restored_rows: i64,
        ranges: Vec<KeyRange>,
    },
}

/// Where two tables differ: a key range, or at the leaves the keys themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange {
    /// `lo <= key < hi`, either end open.
    Range {
        lo: Option<String>,
        hi: Option<String>,
        source_rows: i64,
        restored_rows: i64,
    },
    MissingInRestored(String),
    OnlyInRestored(String),
    Changed(String),
}

impl fmt::Display for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRange::Range {
                lo,
                hi,
                source_rows,
                restored_rows,
            } => write!(
                f,
                "keys {} to {} ({source_rows} rows in the source, {restored_rows} restored)",
                lo.as_deref().unwrap_or("-inf"),
                hi.as_deref()
                    .map(|h| format!("{h} (excl.)"))
                    .unwrap_or("+inf".into())
            ),
            KeyRange::MissingInRestored(k) => write!(f, "key {k} missing in the restored copy"),
            KeyRange::OnlyInRestored(k) => write!(f, "key {k} only in the restored copy"),
            KeyRange::Changed(k) => write!(f, "key {k} changed"),
        }
    }
}

/// Limits on narrowing: a mismatch costs at most this many range queries per side, and a
/// range this small is listed key by key.
#[derive(Clone, Copy, Debug)]
pub struct NarrowLimits {
    pub max_queries: usize,
    pub leaf_rows: i64,
}

impl Default for NarrowLimits {
    fn default() -> Self {
        NarrowLimits {
            max_queries: 200,
            leaf_rows: 32,
        }
    }
}

/// The single-column primary key of `table`, if it has one.
pub async fn primary_key(
    client: &Client,
    table: &TableName,
) -> Result<Option<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT a.attname FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = ($1 || '.' || $2)::regclass AND i.indisprimary",
            &[&ident(&table.schema), &ident(&table.name)],
        )
        .await?;
    Ok(match rows.as_slice() {
        [one] => Some(one.get(0)),
        _ => None,
    })
}

fn range_filter(pk: &str, key_type: &str, lo: &Option<String>, hi: &Option<String>) -> String {
    let col = format!("t.{}", ident(pk));
    let mut conds = Vec::new();
    // Keys travel as text and are cast back by the column's own type, so any orderable key
    // type works.
    if let Some(lo) = lo {
        conds.push(format!("{col} >= {}::text::{key_type}", literal(lo)));
    }
    if let Some(hi) = hi {
        conds.push(format!("{col} < {}::text::{key_type}", literal(hi)));
    }
    if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    }
}

/// Narrows a content difference of `table` (same name on both sides, primary key `pk`) to the
/// key ranges that differ, by bisection on the source's (or the larger side's) keys.
pub async fn narrow(
    source: &Client,
    restored: &Client,
    table: &TableName,
    pk: &str,
    hash: RowHash,
    limits: NarrowLimits,
) -> Result<Vec<KeyRange>, tokio_postgres::Error> {
    let key_type: String = source
        .query_one(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             WHERE a.attrelid = ($1 || '.' || $2)::regclass AND a.attname = $3",
            &[&ident(&table.schema), &ident(&table.name), &pk],
        )
        .await?
        .get(0);
    let col = format!("t.{}", ident(pk));
    let mut out = Vec::new();
    let mut queries = 0;
    let mut stack: Vec<(Option<String>, Option<String>)> = vec![(None, None)];
    while let Some((lo, hi)) = stack.pop() {
        let filter = range_filter(pk, &key_type, &lo, &hi);
        let sql = fingerprint_sql(table, hash, &filter);
        let (a, b) = (
            fingerprint_of(source, &sql).await?,
            fingerprint_of(restored, &sql).await?,
        );
        queries += 1;
        if a == b {
            continue;
        }
        let rows = a.rows.max(b.rows);
        if rows <= limits.leaf_rows {
            out.extend(leaf(source, restored, table, &col, &filter, hash).await?);
            continue;
        }
        // Split at the median key of the side with more rows in this range, while the query
        // budget lasts; past it (or if a range cannot split), the range itself is the answer.
        let (side, n) = if a.rows >= b.rows {
            (source, a.rows)
        } else {
            (restored, b.rows)
        };
        let mid: Option<String> = if queries < limits.max_queries {
            let sql = format!(
                "SELECT {col}::text FROM ONLY {} t {filter} ORDER BY {col} OFFSET {} LIMIT 1",
                table.sql(),
                n / 2
            );
            Some(side.query_one(&sql, &[]).await?.get(0))
        } else {
            None
        };
        match mid {
            Some(mid) if lo.as_deref() != Some(mid.as_str()) => {
                // Upper half first on the stack so ranges come out in key order.
                stack.push((Some(mid.clone()), hi));
                stack.push((lo, Some(mid)));
            }
            _ => out.push(KeyRange::Range {
                lo,
                hi,
                source_rows: a.rows,
                restored_rows: b.rows,
            }),
        }
    }
    Ok(out)
}

async fn fingerprint_of(c: &Client, sql: &str) -> Result<Fingerprint, tokio_postgres::Error> {
    let r = c.query_one(sql, &[]).await?;
    Ok(Fingerprint {
        rows: r.get(0),
        sum: r.get(1),
    })
}

async fn keyed_hashes(
    c: &Client,
    sql: &str,
) -> Result<std::collections::BTreeMap<String, i64>, tokio_postgres::Error> {
    Ok(c.query(sql, &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Key by key, within a small range: which keys are missing, extra or changed.
async fn leaf(
    source: &Client,
    restored: &Client,
    table: &TableName,
    col: &str,
    filter: &str,
    hash: RowHash,
) -> Result<Vec<KeyRange>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {col}::text, {} FROM ONLY {} t {filter} ORDER BY {col}",
        hash.sql(),
        table.sql()
    );
    let a = keyed_hashes(source, &sql).await?;
    let b = keyed_hashes(restored, &sql).await?;
    let mut out = Vec::new();
    for (k, h) in &a {
        match b.get(k) {
            None => out.push(KeyRange::MissingInRestored(k.clone())),
            Some(h2) if h2 != h => out.push(KeyRange::Changed(k.clone())),
            Some(_) => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(KeyRange::OnlyInRestored(k.clone()));
    }
    Ok(out)
}

/// One table's result.
#[derive(Clone, Debug)]
pub struct TableCheck {
    pub table: TableName,
    pub source: Option<Fingerprint>,
    pub restored: Option<Fingerprint>,
    pub difference: Option<Difference>,
}

/// Fingerprints every table on both sides, except `skip`, and narrows each content difference.
pub async fn compare(
    source: &Client,
    restored: &Client,
    limits: NarrowLimits,
    skip: &[TableName],
) -> Result<Vec<TableCheck>, tokio_postgres::Error> {
    prepare(source).await?;
    prepare(restored).await?;
    let src_tables = tables(source).await?;
    let dst_tables = tables(restored).await?;
    let mut all: Vec<TableName> = src_tables.iter().chain(&dst_tables).cloned().collect();
    all.sort();
    all.dedup();
    all.retain(|t| !skip.contains(t));
    let mut out = Vec::new();
    for t in all {
        let (in_src, in_dst) = (src_tables.contains(&t), dst_tables.contains(&t));
        let (a, hash) = if in_src {
            let (f, h) = fingerprint(source, &t).await?;
            (Some(f), h)
        } else {
            (None, RowHash::Typed)
        };
        let b = if !in_dst {
            None
        } else if in_src {
            Some(fingerprint_with(restored, &t, hash).await?)
        } else {
            Some(fingerprint(restored, &t).await?.0)
        };
        let difference = match (&a, &b) {
            (Some(_), None) => Some(Difference::MissingInRestored),
            (None, Some(_)) => Some(Difference::OnlyInRestored),
            (Some(x), Some(y)) if x != y => {
                let ranges = match primary_key(source, &t).await? {
                    Some(pk) => narrow(source, restored, &t, &pk, hash, limits).await?,
                    None => Vec::new(),
                };
                Some(Difference::Content {
                    source_rows: x.rows,
                    restored_rows: y.rows,
                    ranges,
                })
            }
            _ => None,
        };
        out.push(TableCheck {
            table: t,
            source: a,
            restored: b,
            difference,
        });
    }
    Ok(out)
}
