//! What every restore drill proves about the restored database, wherever it was restored (a
//! local sandbox, a temporary RDS instance): schema, per-table checksums against the source,
//! the workload's ledger write by write, and the scenario's SQL assertions. Each finding is a
//! [`Check`] in the report and an event in the timeline.
//!
//! Boundary: comparing two reachable databases. Taking and restoring the backup is the
//! drill's business ([`super`], [`super::aws`]).

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::super::{Ran, Teardown};
use crate::checksum::{self, NarrowLimits, TableName};
use crate::event::{Event, EventSink};
use crate::ledger::{self, WorkloadLog};
use crate::report::{Check, Measurements, RestoreResult, TableResult};
use crate::scenario::Assertion;
use crate::systems::sandbox::describe_pg_error;
use crate::workload;

use super::schema;

/// The findings of a restore drill so far, and where they are shown.
pub(crate) struct Findings<'a, 's> {
    pub sink: &'a EventSink<'s>,
    pub result: RestoreResult,
    pub m: Measurements,
    /// Whether the workload's ledger was read back from the restored database.
    pub ledger_checked: bool,
}

impl<'a, 's> Findings<'a, 's> {
    pub fn new(sink: &'a EventSink<'s>, result: RestoreResult) -> Self {
        Findings {
            sink,
            result,
            m: Measurements::default(),
            ledger_checked: false,
        }
    }

    /// What the engine needs of a finished restore drill: the measurements with the restore's
    /// result in them, whether the ledger was read, and how to tear down.
    pub fn finish<'t>(
        self,
        description: String,
        aborted: Option<String>,
        teardown: Teardown<'t>,
    ) -> Ran<'t> {
        let mut m = self.m;
        m.restore = Some(self.result);
        Ran {
            description,
            measurements: m,
            steady: None,
            series: None,
            aborted,
            ledger_checked: self.ledger_checked,
            teardown,
        }
    }

    fn emit(&self, e: Event) {
        self.sink.emit(e);
    }

    /// Records a check and shows it.
    pub fn check(&mut self, name: &str, ok: bool, detail: String) {
        self.emit(if ok {
            Event::Verified(format!("{name}: {detail}"))
        } else {
            Event::CheckFailed(format!("{name}: {detail}"))
        });
        self.result.checks.push(Check {
            name: name.into(),
            ok,
            detail,
        });
    }

    /// Each assertion must return one row whose first column is true.
    pub async fn assertions(&mut self, restored: &Client, assertions: &[Assertion]) {
        for a in assertions {
            let (ok, detail) = match restored.query_opt(a.sql.as_str(), &[]).await {
                Ok(Some(row)) => match row.try_get::<_, Option<bool>>(0) {
                    Ok(Some(true)) => (true, "true".to_owned()),
                    Ok(Some(false)) => (false, "returned false".to_owned()),
                    Ok(None) => (false, "returned null".to_owned()),
                    Err(_) => (false, "its first column is not a boolean".to_owned()),
                },
                Ok(None) => (false, "returned no row".to_owned()),
                Err(e) => (false, describe_pg_error(&e)),
            };
            self.check(&format!("assertion {}", a.name), ok, detail);
        }
    }

    pub async fn compare_schema(&mut self, source: &Client, restored: &Client) {
        let defs = async {
            Ok::<_, tokio_postgres::Error>((
                schema::definitions(source).await?,
                schema::definitions(restored).await?,
            ))
        }
        .await;
        match defs {
            Ok((a, b)) => {
                let diff = schema::diff(&a, &b);
                if diff.is_empty() {
                    self.check("schema", true, format!("{} definitions equal", a.len()));
                } else {
                    let mut detail = format!("{} difference(s): ", diff.len());
                    detail.push_str(&diff.iter().take(10).cloned().collect::<Vec<_>>().join("; "));
                    self.check("schema", false, detail);
                }
            }
            Err(e) => self.check("schema", false, describe_pg_error(&e)),
        }
    }

    pub async fn compare_tables(
        &mut self,
        source: &Client,
        restored: &Client,
        skip: Option<&TableName>,
    ) {
        let started = Instant::now();
        let skip: Vec<TableName> = skip.into_iter().cloned().collect();
        let limits = NarrowLimits::default();
        let checks = match checksum::compare(source, restored, limits, &skip).await {
            Ok(c) => c,
            Err(e) => {
                self.check("checksums", false, describe_pg_error(&e));
                return;
            }
        };
        let mut differing = 0;
        for c in checks {
            let differences: Vec<String> = match &c.difference {
                None => Vec::new(),
                Some(checksum::Difference::MissingInRestored) => {
                    vec!["missing in the restored copy".into()]
                }
                Some(checksum::Difference::OnlyInRestored) => {
                    vec!["only in the restored copy".into()]
                }
                Some(checksum::Difference::Content {
                    source_rows,
                    restored_rows,
                    ranges,
                }) => {
                    let mut d = vec![format!(
                        "content differs ({source_rows} rows in the source, {restored_rows} restored)"
                    )];
                    d.extend(ranges.iter().take(50).map(|r| r.to_string()));
                    d
                }
            };
            if !differences.is_empty() {
                differing += 1;
            }
            self.result.tables.push(TableResult {
                table: c.table.to_string(),
                source_rows: c.source.as_ref().map(|f| f.rows),
                restored_rows: c.restored.as_ref().map(|f| f.rows),
                matches: differences.is_empty(),
                differences,
            });
        }
        self.result.tables_differing = Some(differing);
        let rows: i64 = self
            .result
            .tables
            .iter()
            .filter_map(|t| t.source_rows)
            .sum();
        let n = self.result.tables.len();
        if differing == 0 {
            self.emit(Event::Verified(format!(
                "checksums: {n} tables, {rows} rows equal to the source{} ({:.1} s)",
                skip.first()
                    .map(|t| format!(" ({t} checked by its ledger)"))
                    .unwrap_or_default(),
                started.elapsed().as_secs_f64()
            )));
        } else {
            let named: Vec<String> = self
                .result
                .tables
                .iter()
                .filter(|t| !t.matches)
                .map(|t| format!("{}: {}", t.table, t.differences.join(", ")))
                .collect();
            self.emit(Event::CheckFailed(format!(
                "checksums: {differing} of {n} tables differ: {}",
                named.join("; ")
            )));
        }
    }

    pub async fn check_ledger(
        &mut self,
        restored: &Client,
        table: &str,
        run_id: &str,
        log: &WorkloadLog,
        (lo, hi): (Duration, Duration),
    ) {
        let rows = match workload::read_back(restored, table, run_id).await {
            Ok(rows) => rows,
            Err(e) => {
                self.check("ledger", false, describe_pg_error(&e));
                return;
            }
        };
        let c = ledger::check_point(log, &rows, run_id, lo, hi);
        self.ledger_checked = true;
        self.m.lost_writes = Some(c.missing);
        self.m.lost_examples = c.missing_examples.clone();
        self.m.integrity_failures = Some(c.integrity_failures + c.present_after);
        self.m.in_doubt_present = None;
        let ok = c.missing == 0 && c.present_after == 0 && c.integrity_failures == 0;
        let mut detail = format!(
            "{} writes acknowledged before the recovery point, {} missing; {} sent after it, {} \
             present; {} in flight across it",
            c.before, c.missing, c.after, c.present_after, c.across
        );
        if !c.missing_examples.is_empty() {
            detail.push_str(&format!("; missing: {}", c.missing_examples.join(", ")));
        }
        if !c.present_after_examples.is_empty() {
            detail.push_str(&format!(
                "; present after the point: {}",
                c.present_after_examples.join(", ")
            ));
        }
        if c.integrity_failures > 0 {
            detail.push_str(&format!("; {} rows no writer wrote", c.integrity_failures));
        }
        self.check("ledger", ok, detail);
        self.result.ledger = Some(c);
    }
}
