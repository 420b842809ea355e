//! Schema equality between source and restored database: every table's columns (type, nullability,
//! default), constraints, indexes and sequences, each as one canonical line, compared as sets.
//!
//! Boundary: definitions only. Row content is [`crate::checksum`]'s job; owners and privileges
//! are not compared, since a dump is restored with `--no-owner --no-privileges`.

use std::collections::BTreeSet;

use tokio_postgres::Client;

const USER_NAMESPACES: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

/// The schema of the connected database, one line per definition.
pub async fn definitions(client: &Client) -> Result<BTreeSet<String>, tokio_postgres::Error> {
    // Names are printed schema-qualified whatever the search path.
    client.batch_execute("SET search_path = ''").await?;
    let sql = format!(
        "SELECT 'column ' || c.oid::regclass::text || '.' || quote_ident(a.attname) || ' ' \
                || format_type(a.atttypid, a.atttypmod) \
                || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END \
                || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE c.relkind IN ('r', 'p', 'v', 'm') AND a.attnum > 0 AND NOT a.attisdropped \
           AND {USER_NAMESPACES} \
         UNION ALL \
         SELECT 'constraint ' || co.conrelid::regclass::text || ' ' || quote_ident(co.conname) \
                || ' ' || pg_get_constraintdef(co.oid) \
         FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace \
         WHERE {USER_NAMESPACES} \
         UNION ALL \
         SELECT 'index ' || pg_get_indexdef(i.indexrelid) \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_NAMESPACES} \
         UNION ALL \
         SELECT 'sequence ' || s.seqrelid::regclass::text || ' ' || format_type(s.seqtypid, NULL) \
                || ' start ' || s.seqstart || ' increment ' || s.seqincrement \
                || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cycle ' || s.seqcycle \
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_NAMESPACES}"
    );
    let rows = client.query(&sql, &[]).await?;
    client.batch_execute("RESET search_path").await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// What differs, source first: `missing in restored: ...` and `only in restored: ...`.
pub fn diff(source: &BTreeSet<String>, restored: &BTreeSet<String>) -> Vec<String> {
    source
        .difference(restored)
        .map(|d| format!("missing in restored: {d}"))
        .chain(
            restored
                .difference(source)
                .map(|d| format!("only in restored: {d}")),
        )
        .collect()
}
