//! Restore drills of an `aws-rds` instance: AWS restores a DB snapshot, a point in time or an
//! AWS Backup recovery point into a temporary instance, and firedrill verifies that instance
//! exactly as it verifies a local restore ([`super::verify`]), then deletes it.
//!
//! Everything the drill creates (the snapshot it takes, the temporary instance) is journaled
//! before the call that creates it, tagged `firedrill:drill=<run id>`, and deleted when the
//! drill ends, whatever the outcome, Ctrl-C included; `firedrill recover` or `firedrill
//! cleanup` delete it if firedrill itself died.
//!
//! Boundary: the AWS side of the flow and its timing. The calls are `firedrill-aws`'s; the
//! comparison is [`super::verify`]'s.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, SystemTime};

use firedrill_aws::wait::Poll;
use firedrill_aws::{Aws, AwsError, DRILL_TAG};
use tokio_postgres::Config;

use super::{Context, Finding, Interrupted, Writers, connect, first_query, start_writers};
use super::{Ran, RunError};
use crate::dsn::{Template, at_endpoint};
use crate::event::{Event, Phase};
use crate::ledger::WorkloadLog;
use crate::measure::ms;
use crate::report::RestoreResult;
use crate::safety::journal::{EffectId, Undo};
use crate::scenario::{
    AwsRdsSpec, Backup, RdsResource, RdsTarget, RecoveryTarget, RestoredInstance,
};
use crate::systems::aws_rds::AwsTarget;

use super::verify::Findings;

/// How far this machine's clock and AWS's may disagree: a write within this margin of a
/// point-in-time recovery point is counted as in doubt, not as lost or as extra.
const CLOCK_MARGIN: Duration = Duration::from_secs(1);

/// What to restore from, once the backup is taken or found.
enum From {
    Snapshot(String),
    PointInTime(Option<SystemTime>),
    RecoveryPoint { arn: String, vault: String },
}

struct Found {
    from: From,
    /// How the report names it.
    source: String,
    point: Option<SystemTime>,
    point_on_clock: Option<(Duration, Duration)>,
}

/// Something the drill created in AWS, to delete at the end.
enum Created {
    Snapshot(String, EffectId),
    Instance(String, EffectId),
}

pub(super) async fn run<'a>(
    cx: Context<'a, '_>,
    spec: &AwsRdsSpec,
    source_id: &str,
    dsn_env: &str,
) -> Result<Ran<'a>, RunError> {
    let r = cx.restore;
    let sink = cx.sink;
    sink.emit(Event::Phase(Phase::Setup));
    let source_id = source_id.to_owned();
    let instance = r.instance.clone().unwrap_or_default();
    // A missing override DSN stops the drill before AWS is touched.
    let via = instance
        .dsn_env
        .as_deref()
        .map(Template::read)
        .transpose()?;
    let rds = RdsTarget {
        spec: spec.clone(),
        resource: RdsResource::Instance(source_id.clone()),
        dsn_env: dsn_env.to_owned(),
    };
    let dsn = Template::read(dsn_env)?;
    sink.emit(Event::Setup("describing it through AWS".into()));
    let mut cancel = cx.cancel.clone();
    let target = tokio::select! {
        t = AwsTarget::build(&rds, &dsn) => Box::new(t?),
        _ = cancel.wait_for(|c| *c) => return Err(RunError::AbortedInSetup),
    };
    let description = format!(
        "{}; restored from {} into a temporary DB instance",
        target.description,
        r.backup.kind()
    );
    sink.emit(Event::Setup(description.clone()));
    let new_id = format!("firedrill-{}", cx.run_id);
    let result = RestoreResult {
        restored_into: Some(format!("DB instance {new_id}")),
        ..cx.result(false)
    };
    let mut d = AwsRestore {
        f: Findings::new(sink, result),
        cx,
        target,
        source_id,
        new_id,
        instance,
        via,
        created: Vec::new(),
    };
    let ran = d.run().await;
    if !*d.cx.cancel.borrow() {
        d.cx.remove_source_rows(&d.target.config).await;
    }
    let aborted = d.cx.aborted(ran, "deleting what the drill created");
    d.delete_created().await;
    // Nothing local to keep: AWS resources are deleted above, whatever the cleanup policy (a
    // kept instance would cost money unnoticed).
    Ok(d.f.finish(description, aborted, super::super::nothing_to_tear_down()))
}

struct AwsRestore<'a, 's> {
    cx: Context<'a, 's>,
    f: Findings<'a, 's>,
    target: Box<AwsTarget>,
    source_id: String,
    new_id: String,
    instance: RestoredInstance,
    /// The DSN to reach the restored instance by, instead of its endpoint.
    via: Option<Template>,
    created: Vec<Created>,
}

impl AwsRestore<'_, '_> {
    fn aws(&self) -> &Aws {
        self.target.aws()
    }

    fn at(&self) -> firedrill_aws::Options {
        self.target.at().clone()
    }

    fn tag(&self) -> [(&str, &str); 1] {
        [(DRILL_TAG, self.cx.run_id)]
    }

    fn poll(&self) -> Poll {
        Poll::minutes(self.instance.available_within.get())
    }

    /// Runs an AWS call or wait unless the drill is interrupted first.
    async fn call<T>(&self, fut: impl Future<Output = Result<T, AwsError>>) -> Result<T, Finding> {
        let mut cancel = self.cx.cancel.clone();
        tokio::select! {
            r = fut => r.map_err(|e| Finding::Failed(e.to_string())),
            _ = cancel.wait_for(|c| *c) => Err(Finding::Interrupted),
        }
    }

    async fn run(&mut self) -> Result<(), Interrupted> {
        let s = &self.cx.loaded.scenario;
        let r = self.cx.restore;
        let t0 = self.cx.sink.t0;
        let source_config = self.target.config.clone();

        self.cx.sink.emit(Event::Phase(Phase::Backup));
        let ledger = s.workload.connections > 0 && r.ledger_writes(false);
        let writers = if ledger {
            match start_writers(self.cx.sink, s, self.cx.run_id, &source_config).await {
                Ok(w) => {
                    // Writes acknowledged before the point, so that the ledger has some to find.
                    self.nap(r.write_after_backup.get().min(Duration::from_secs(1)))
                        .await;
                    Some(w)
                }
                Err(e) => {
                    self.f.check("workload", false, e);
                    return Ok(());
                }
            }
        } else {
            None
        };
        let started = t0.elapsed();
        let found = self.find_backup(writers).await;
        let (found, log) = match found {
            Ok(pair) => pair,
            Err(Finding::Interrupted) => return Err(Interrupted),
            Err(Finding::Failed(e)) => {
                self.f.check("backup", false, e);
                return Ok(());
            }
        };
        if r.backup.takes(false) {
            self.f.result.backup_ms = Some(ms(t0.elapsed() - started));
        }
        self.f.result.backup_source = found.source.clone();
        self.f.result.recovery_point = found.point.map(rfc3339);
        if let Some(log) = &log {
            self.f.m.acknowledged_writes = log.acks.len() as u64;
            self.f.m.in_doubt_writes = log.in_doubt.len() as u64;
        }

        self.cx.sink.emit(Event::Phase(Phase::Restore));
        let started = t0.elapsed();
        let restored = match self.restore(&found).await {
            Ok(c) => c,
            Err(Finding::Interrupted) => return Err(Interrupted),
            Err(Finding::Failed(e)) => {
                self.f.check("restore", false, e);
                return Ok(());
            }
        };
        let available = t0.elapsed();
        let left = self
            .instance
            .available_within
            .get()
            .saturating_sub(available - started);
        let client = match first_query(&restored, left, &self.cx.cancel).await {
            Ok(c) => c,
            Err(Finding::Interrupted) => return Err(Interrupted),
            Err(Finding::Failed(e)) => {
                self.f.check(
                    "restore",
                    false,
                    format!(
                        "DB instance {} did not answer a query within {} of the restore call: {e}",
                        self.new_id, self.instance.available_within
                    ),
                );
                return Ok(());
            }
        };
        let answered = t0.elapsed();
        self.f.result.restore_ms = Some(ms(available - started));
        self.f.m.rto_ms = Some(ms(answered - started));
        // The point-in-time kinds know their point once RDS chose it.
        let point = found
            .point
            .or(self.f.result.recovery_point.as_deref().and_then(parse));
        if let Some(at) = point {
            self.f.m.rpo_ms = Some(ms(SystemTime::now().duration_since(at).unwrap_or_default()));
        }
        self.f.check(
            "restore",
            true,
            format!(
                "DB instance {} available after {:.1} s, first query after {:.1} s",
                self.new_id,
                ms(available - started) / 1000.0,
                ms(answered - started) / 1000.0
            ),
        );

        self.cx.sink.emit(Event::Phase(Phase::Verify));
        let source = match connect(&source_config).await {
            Ok(c) => c,
            Err(e) => {
                self.f
                    .check("source", false, format!("cannot connect: {e}"));
                return Ok(());
            }
        };
        if r.verify.schema {
            self.f.compare_schema(&source, &client).await;
        }
        if r.verify.checksums {
            // The ledger table moved on after the point; it is checked write by write below.
            let moving = ledger.then(|| crate::checksum::TableName {
                schema: "public".into(),
                name: s.workload.table.clone(),
            });
            self.f
                .compare_tables(&source, &client, moving.as_ref())
                .await;
        }
        if let (Some(log), Some(point)) = (&log, found.point_on_clock) {
            self.f
                .check_ledger(&client, &s.workload.table, self.cx.run_id, log, point)
                .await;
        }
        if *self.cx.cancel.borrow() {
            return Err(Interrupted);
        }
        self.f.assertions(&client, &r.verify.assertions).await;
        Ok(())
    }

    async fn nap(&self, d: Duration) {
        let mut cancel = self.cx.cancel.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = cancel.wait_for(|c| *c) => {}
        }
    }

    /// Takes the snapshot, chooses the point in time, or finds the snapshot or recovery point
    /// to restore; the writers, if any, stop once the point is behind them.
    async fn find_backup(
        &mut self,
        mut writers: Option<Writers>,
    ) -> Result<(Found, Option<WorkloadLog>), Finding> {
        let mut log = None;
        let r = self.cx.restore;
        let t0 = self.cx.sink.t0;
        let source = self.source_id.clone();
        let found = match (&r.backup, &r.recovery_target) {
            (Backup::RdsSnapshot { snapshot }, _) if snapshot == "create" => {
                self.take_snapshot().await?
            }
            (Backup::RdsSnapshot { snapshot }, _) => self.pick_snapshot(snapshot).await?,
            (Backup::RdsPointInTime {}, RecoveryTarget::Latest) => Found {
                from: From::PointInTime(None),
                source: format!("continuous backup of {source}, latest restorable time"),
                point: None,
                point_on_clock: None,
            },
            (Backup::RdsPointInTime {}, RecoveryTarget::Time { at }) => {
                let at = parse(at).ok_or_else(|| Finding::Failed(format!("bad time {at}")))?;
                self.restorable(at).await?;
                Found {
                    from: From::PointInTime(Some(at)),
                    source: format!("continuous backup of {source} at {}", rfc3339(at)),
                    point: Some(at),
                    point_on_clock: None,
                }
            }
            (Backup::RdsPointInTime {}, RecoveryTarget::AfterBackup { offset }) => {
                let on_clock = t0.elapsed() + offset.get();
                let at = SystemTime::now() + offset.get();
                self.cx.sink.emit(Event::Step(format!(
                    "recovery point {} ({offset} from now); writing on for {}",
                    rfc3339(at),
                    r.write_after_backup
                )));
                self.nap(r.write_after_backup.get()).await;
                // The writers stop before the long wait for RDS: the point is behind them.
                if let Some(w) = writers.take() {
                    log = Some(w.stop(self.cx.sink).await.0);
                }
                self.restorable(at).await?;
                Found {
                    from: From::PointInTime(Some(at)),
                    source: format!("continuous backup of {source} at {}", rfc3339(at)),
                    point: Some(at),
                    point_on_clock: Some((
                        on_clock.saturating_sub(CLOCK_MARGIN),
                        on_clock + CLOCK_MARGIN,
                    )),
                }
            }
            (Backup::AwsBackup { recovery_point, .. }, _) => {
                self.pick_recovery_point(recovery_point.as_deref()).await?
            }
            (b, _) => {
                return Err(Finding::Failed(format!(
                    "`{}` is not an AWS backup kind",
                    b.kind()
                )));
            }
        };
        if let Some(w) = writers {
            // A snapshot taken under writes: writes sent after it must exist, to be absent.
            if found.point_on_clock.is_some() {
                self.nap(r.write_after_backup.get()).await;
            }
            log = Some(w.stop(self.cx.sink).await.0);
        }
        self.f.check(
            "backup",
            true,
            format!(
                "{}{}",
                found.source,
                found
                    .point
                    .map(|p| format!(", recovery point {}", rfc3339(p)))
                    .unwrap_or_default()
            ),
        );
        Ok((found, log))
    }

    /// Takes a snapshot of the source (journaled and tagged first), until it is available.
    async fn take_snapshot(&mut self) -> Result<Found, Finding> {
        let source = self.source_id.clone();
        let t0 = self.cx.sink.t0;
        let id = self.new_id.clone();
        let effect = self.cx.journal.effect(
            format!("CreateDBSnapshot {id} of DB instance {source}"),
            Some(Undo::AwsDeleteSnapshot {
                aws: self.at(),
                id: id.clone(),
            }),
        )?;
        self.created.push(Created::Snapshot(id.clone(), effect));
        let called = t0.elapsed();
        self.call(self.aws().create_snapshot(&source, &id, &self.tag()))
            .await?;
        self.cx.sink.emit(Event::Step(format!(
            "CreateDBSnapshot {id} of {source}; waiting until it is available"
        )));
        let snap = self
            .call(self.aws().snapshot_available(&id, self.poll()))
            .await?;
        let done = t0.elapsed();
        self.cx.sink.emit(Event::Step(format!(
            "DB snapshot {id} available after {:.1} s",
            ms(done - called) / 1000.0
        )));
        Ok(Found {
            from: From::Snapshot(id.clone()),
            source: format!("DB snapshot {id} (taken by this drill)"),
            point: snap.created,
            // The snapshot holds every write acknowledged before the call, and none
            // sent after it was available.
            point_on_clock: Some((called, done)),
        })
    }

    /// The source's newest available snapshot (`latest`), or the one named.
    async fn pick_snapshot(&self, snapshot: &str) -> Result<Found, Finding> {
        let source = self.source_id.clone();
        let snap = if snapshot == "latest" {
            let all = self.call(self.aws().snapshots(Some(&source))).await?;
            all.into_iter()
                .find(|s| s.status == "available")
                .ok_or_else(|| {
                    Finding::Failed(format!(
                        "DB instance {source} has no available snapshot to restore"
                    ))
                })?
        } else {
            let snap = self.call(self.aws().snapshot(snapshot)).await?;
            if snap.status != "available" {
                return Err(Finding::Failed(format!(
                    "DB snapshot {snapshot} is {}, not available",
                    snap.status
                )));
            }
            snap
        };
        if snap.instance != source {
            self.cx.sink.emit(Event::Warning(format!(
                "DB snapshot {} is of DB instance {}, not of {source}",
                snap.id, snap.instance
            )));
        }
        Ok(Found {
            from: From::Snapshot(snap.id.clone()),
            source: format!("DB snapshot {}", snap.id),
            point: snap.created,
            point_on_clock: None,
        })
    }

    /// The source's newest completed AWS Backup recovery point, or the one named.
    async fn pick_recovery_point(&self, recovery_point: Option<&str>) -> Result<Found, Finding> {
        let source = self.source_id.clone();
        let arn = self.target_arn().await?;
        let points = self.call(self.aws().recovery_points(&arn)).await?;
        let point = match recovery_point {
            Some(wanted) => points
                .into_iter()
                .find(|p| p.arn == wanted)
                .ok_or_else(|| {
                    Finding::Failed(format!(
                        "recovery point {wanted} is not one of DB instance {source}'s"
                    ))
                })?,
            None => points
                .into_iter()
                .find(|p| p.status == "COMPLETED")
                .ok_or_else(|| {
                    Finding::Failed(format!(
                        "DB instance {source} has no completed AWS Backup recovery point"
                    ))
                })?,
        };
        if point.status != "COMPLETED" {
            return Err(Finding::Failed(format!(
                "recovery point {} is {}, not COMPLETED",
                point.arn, point.status
            )));
        }
        Ok(Found {
            source: format!(
                "AWS Backup recovery point {} (vault {})",
                point.arn, point.vault
            ),
            from: From::RecoveryPoint {
                arn: point.arn,
                vault: point.vault,
            },
            point: point.created,
            point_on_clock: None,
        })
    }

    async fn target_arn(&self) -> Result<String, Finding> {
        Ok(self.call(self.aws().instance(&self.source_id)).await?.arn)
    }

    /// Waits until RDS can restore the source to `at` (its latest restorable time lags a few
    /// minutes behind).
    async fn restorable(&self, at: SystemTime) -> Result<(), Finding> {
        let source = self.source_id.clone();
        let aws = self.aws();
        let what = format!("the latest restorable time of {source}");
        let wanted = format!("at or after {}", rfc3339(at));
        let wait = firedrill_aws::wait::until(&what, &wanted, self.poll(), || async {
            let i = aws.instance(&source).await?;
            Ok(match i.latest_restorable {
                Some(t) if t >= at => (Some(()), rfc3339(t)),
                Some(t) => (None, rfc3339(t)),
                None => (None, "none yet".into()),
            })
        });
        self.call(wait).await
    }

    /// Restores into the temporary instance and waits until AWS calls it available; the DSN
    /// to reach it by.
    async fn restore(&mut self, found: &Found) -> Result<Config, Finding> {
        let r = self.cx.restore;
        let id = self.new_id.clone();
        let class = self.instance.class.clone();
        let effect = self.cx.journal.effect(
            format!("restore {} into DB instance {id}", found.source),
            Some(Undo::AwsDeleteInstance {
                aws: self.at(),
                id: id.clone(),
            }),
        )?;
        self.created.push(Created::Instance(id.clone(), effect));
        match &found.from {
            From::Snapshot(snap) => {
                self.call(
                    self.aws()
                        .restore_snapshot(snap, &id, class.as_deref(), &self.tag()),
                )
                .await?;
                self.step(format!("RestoreDBInstanceFromDBSnapshot {snap} into {id}"));
            }
            From::PointInTime(at) => {
                let source = self.source_id.clone();
                let i = self
                    .call(self.aws().restore_point_in_time(
                        &source,
                        &id,
                        *at,
                        class.as_deref(),
                        &self.tag(),
                    ))
                    .await?;
                if at.is_none() {
                    // The latest restorable time RDS used, read from the source right after.
                    let src = self.call(self.aws().instance(&source)).await?;
                    self.f.result.recovery_point = src.latest_restorable.map(rfc3339);
                }
                self.step(format!(
                    "RestoreDBInstanceToPointInTime {source} into {} at {}",
                    i.id,
                    at.map(rfc3339)
                        .unwrap_or_else(|| "the latest restorable time".into())
                ));
            }
            From::RecoveryPoint { arn, vault } => {
                let Backup::AwsBackup {
                    iam_role_arn,
                    metadata,
                    ..
                } = &r.backup
                else {
                    return Err(Finding::Failed("not an AWS Backup restore".into()));
                };
                let mut meta: HashMap<String, String> =
                    self.call(self.aws().restore_metadata(vault, arn)).await?;
                meta.extend(metadata.clone());
                meta.insert("DBInstanceIdentifier".into(), id.clone());
                if let Some(c) = &class {
                    meta.insert("DBInstanceClass".into(), c.clone());
                }
                let job = self
                    .call(self.aws().start_restore(arn, Some(iam_role_arn), meta))
                    .await?;
                self.step(format!(
                    "StartRestoreJob {job} of {arn} into {id}; polling DescribeRestoreJob"
                ));
                let done = self
                    .call(self.aws().restore_done(&job, self.poll()))
                    .await?;
                self.step(format!(
                    "restore job {job} COMPLETED{}",
                    done.created_resource_arn
                        .as_ref()
                        .map(|a| format!(": {a}"))
                        .unwrap_or_default()
                ));
            }
        }
        let i = self
            .call(self.aws().instance_available(&id, self.poll()))
            .await?;
        if matches!(found.from, From::RecoveryPoint { .. }) {
            // AWS Backup's restore cannot tag; tag it now so that `cleanup` finds it.
            self.call(self.aws().tag(&i.arn, &self.tag())).await?;
        }
        self.step(format!(
            "DB instance {id} available at {}",
            i.endpoint
                .as_ref()
                .map(|(h, p)| format!("{h}:{p}"))
                .unwrap_or_else(|| "no endpoint".into())
        ));
        let Some(via) = &self.via else {
            let (host, port) = i.endpoint.ok_or_else(|| {
                Finding::Failed(format!("DB instance {id} is available but has no endpoint"))
            })?;
            return Ok(at_endpoint(&self.target.config, &host, port));
        };
        let vars = [("instance", id.as_str()), ("source", &self.source_id)];
        via.fill_at(i.endpoint.as_ref(), &vars)
            .map(|(config, _)| config)
            .map_err(|e| Finding::Failed(e.to_string()))
    }

    fn step(&self, s: String) {
        self.cx.sink.emit(Event::Step(s));
    }

    /// Deletes what the drill created, newest first; what cannot be deleted stays pending in
    /// the journal and is named with the command that finishes the job.
    async fn delete_created(&mut self) {
        while let Some(c) = self.created.pop() {
            let (what, effect, result) = match &c {
                Created::Instance(id, effect) => (
                    format!("DB instance {id}"),
                    *effect,
                    self.aws().delete_instance(id).await,
                ),
                Created::Snapshot(id, effect) => (
                    format!("DB snapshot {id}"),
                    *effect,
                    self.aws().delete_snapshot(id).await,
                ),
            };
            match result {
                Ok(gone) => {
                    let how = if gone { "deleted" } else { "was never created" };
                    self.cx.journal.undone(effect, how);
                    self.cx.sink.emit(Event::Setup(format!("{what}: {how}")));
                }
                Err(e) => self.cx.sink.emit(Event::Warning(format!(
                    "cannot delete {what}: {e}; run `firedrill recover` or `firedrill cleanup \
                     --drill {}`",
                    self.cx.run_id
                ))),
            }
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn parse(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok()
}
