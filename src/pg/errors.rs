//! PostgreSQL errors as a person reads them: the server's message, detail and hint rather than
//! the client library's debug form.

use crate::error::EnvError;

pub fn db_err(what: &'static str) -> impl Fn(tokio_postgres::Error) -> EnvError {
    move |e| EnvError::Database(format!("{what}: {}", describe_pg_error(&e)))
}

/// A tokio-postgres error with its server message, if any (its `Display` alone is often just
/// "db error").
pub fn describe_pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) if *db.code() == tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION => {
            format!(
                "{}: {} (the DSN reached a standby: add target_session_attrs=read-write, or \
                 list every member's host)",
                db.severity(),
                db.message()
            )
        }
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(&format!(": {inner}"));
                src = inner.source();
            }
            s
        }
    }
}
