//! Targets: one interface ([`Driver`]) over the databases a scenario can name, each in a file of
//! its own: the sandbox firedrill builds ([`sandbox`]), an existing PostgreSQL ([`existing`]), an
//! RDS instance or Aurora cluster ([`aws_rds`]). A driver builds or reaches its target, injects a
//! fault (journaled first, with its undo), performs the recovery action and tears down. The
//! engine never needs to know which target it drives; which fault suits which target is the
//! model's one rule (`Fault::target_kind`).

pub mod aws_rds;
pub mod existing;
pub mod patroni;
pub mod sandbox;

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::Config;

use crate::dsn::Template;
use crate::error::EnvError;
use crate::pg::binaries::{self, PgBinaries};
use crate::safety::journal::{EffectId, Journal, Undo};
use crate::scenario::placeholder::{NodeField, SandboxField};
use crate::scenario::{DbTarget, Fault, Fence, Placeholder, Recovery};
use aws_rds::AwsTarget;
use existing::Existing;
use patroni::Patroni;
use sandbox::{Progress, Sandbox, SandboxConfig};

pub enum Driver {
    Sandbox(Sandbox),
    Existing(Existing),
    Aws(Box<AwsTarget>),
    Patroni(Box<Patroni>),
}

pub struct Injected {
    pub description: String,
    /// How to take the fault back while it is in effect, and its journal entry; `None` when
    /// there is nothing to take back (a killed node stays dead; recovery replaces it).
    pub undo: Option<(Undo, EffectId)>,
    /// The fault ends by itself this long after injection (a pause).
    pub ends_after: Option<Duration>,
    /// When the fault took effect, where that is later than the call began by more than a
    /// moment (a member resolved through the REST API first): the fault instant.
    pub at: Option<std::time::Instant>,
}

impl Driver {
    /// Checks the environment and builds or reaches the target. A sandbox is fully running and
    /// replicating when this returns.
    pub async fn build(
        target: &DbTarget,
        journal: &Journal,
        templates: Option<&crate::template::TemplateCache>,
        progress: Progress<'_>,
    ) -> Result<Driver, EnvError> {
        match target {
            DbTarget::Sandbox(spec) => {
                // Zones need CAP_NET_ADMIN, `ip` and `nft`: refused before anything is made.
                let zones = spec
                    .zone_layout()
                    .map(|l| crate::net::preflight().map(|tools| (l, tools)))
                    .transpose()?;
                let bins = PgBinaries::locate(spec.bin_dir.as_deref())?;
                let run_as = binaries::run_as(spec.run_as.as_deref())?;
                progress(format!("PostgreSQL programs in {}", bins.dir.display()));
                let config = SandboxConfig {
                    standbys: spec.standbys,
                    replication: spec.replication,
                    settings: spec.settings.clone(),
                    work_dir: spec.work_dir.clone(),
                    run_as,
                    journal: journal.clone(),
                    templates: templates.cloned(),
                    seed_sql: spec.seed_sql.clone(),
                    wal_archive: spec.wal_archive,
                    zones,
                };
                Ok(Driver::Sandbox(
                    Sandbox::build(bins, config, progress).await?,
                ))
            }
            DbTarget::Postgres(spec) => Ok(Driver::Existing(Existing::build(spec)?)),
            DbTarget::PatroniSandbox(spec) => Ok(Driver::Patroni(Box::new(
                Patroni::sandbox(spec, journal, progress).await?,
            ))),
            DbTarget::Patroni(spec) => {
                progress("reading the cluster through its REST API".into());
                Ok(Driver::Patroni(Box::new(Patroni::existing(spec).await?)))
            }
            DbTarget::AwsRds(rds) => {
                let dsn = Template::read(&rds.dsn_env)?;
                progress("describing it through AWS".into());
                Ok(Driver::Aws(Box::new(AwsTarget::build(rds, &dsn).await?)))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Driver::Sandbox(sb) => sb.describe(),
            Driver::Existing(e) => e.description.clone(),
            Driver::Aws(t) => t.description.clone(),
            Driver::Patroni(p) => p.describe(),
        }
    }

    /// The connection settings firedrill itself uses (set up, verify, read back), with `timeout`
    /// per connection attempt: the application's, except for a sandbox with zones, whose
    /// nodes firedrill reaches through their sockets.
    pub fn client_config(&self, timeout: Duration) -> Config {
        match self {
            Driver::Sandbox(sb) => sb.admin_config(timeout),
            Driver::Existing(e) => e.client_config(timeout),
            Driver::Aws(t) => {
                let mut c = t.config.clone();
                c.connect_timeout(timeout);
                c
            }
            Driver::Patroni(p) => p.client_config(timeout),
        }
    }

    /// The connection settings an application would use: what the probes and writers use,
    /// from the runtimes of [`Driver::client_zones`] when there are zones.
    pub fn app_config(&self, timeout: Duration) -> Config {
        match self {
            Driver::Sandbox(sb) => sb.client_config(timeout),
            Driver::Existing(_) | Driver::Aws(_) | Driver::Patroni(_) => {
                self.client_config(timeout)
            }
        }
    }

    /// Where clients run: a runtime per client zone of a sandbox with zones (the probes in the
    /// first, the writers dealt in turn); empty for every other target (the drill's own).
    pub fn client_zones(&self) -> Vec<(String, tokio::runtime::Handle)> {
        match self {
            Driver::Sandbox(sb) => sb
                .client_zones()
                .iter()
                .map(|z| (z.zone.clone(), z.handle().clone()))
                .collect(),
            Driver::Existing(_) | Driver::Aws(_) | Driver::Patroni(_) => Vec::new(),
        }
    }

    /// The name of the server at `addr:port` (a sandbox node), as a writer's acknowledgement
    /// names it; else `addr:port`.
    pub fn server_name(&self, server: std::net::SocketAddr) -> String {
        match self {
            Driver::Sandbox(sb) => sb
                .node_at(&server.ip().to_string(), server.port())
                .map(str::to_owned)
                .unwrap_or_else(|| server.to_string()),
            Driver::Existing(_) | Driver::Aws(_) | Driver::Patroni(_) => server.to_string(),
        }
    }

    /// The server whose history survives, as [`Driver::server_name`] names it, where the
    /// driver knows it (the sandbox node it made primary); `None` elsewhere.
    pub fn survivor(&self) -> Option<String> {
        match self {
            Driver::Sandbox(sb) => sb.primary().map(|i| sb.nodes[i].name.clone()),
            Driver::Existing(_) | Driver::Aws(_) | Driver::Patroni(_) => None,
        }
    }

    /// Injects the fault, after recording it and its undo in the journal.
    pub async fn inject(
        &mut self,
        fault: &Fault,
        journal: &Journal,
        run_id: &str,
    ) -> Result<Injected, EnvError> {
        let kinds = fault.target_kinds().join("` or `");
        let kind = kinds.as_str();
        match fault {
            Fault::RdsFailover => {
                let t = self.aws(kind, fault.kind())?;
                Ok(Injected {
                    description: t.rds_failover(journal).await?,
                    undo: None,
                    ends_after: None,
                    at: None,
                })
            }
            Fault::AuroraFailover { target_instance } => {
                let t = self.aws(kind, fault.kind())?;
                Ok(Injected {
                    description: t
                        .aurora_failover(target_instance.as_deref(), journal)
                        .await?,
                    undo: None,
                    ends_after: None,
                    at: None,
                })
            }
            Fault::FisExperiment {
                template_id,
                template,
                ..
            } => {
                let t = self.aws(kind, fault.kind())?;
                let (description, undo) = t
                    .fis_experiment(template_id.as_deref(), template.as_ref(), journal, run_id)
                    .await?;
                Ok(Injected {
                    description,
                    undo,
                    ends_after: None,
                    at: None,
                })
            }
            Fault::Kill { node } => {
                let sb = self.sandbox(kind, fault.kind())?;
                let idx = node_index(sb, node)?;
                let pid = sb.nodes[idx].pid().unwrap_or_default();
                let description = format!("SIGKILL every process of {node} (postmaster pid {pid})");
                journal.effect(&description, None)?;
                sb.kill(idx)?;
                Ok(Injected {
                    description,
                    undo: None,
                    ends_after: None,
                    at: None,
                })
            }
            Fault::Stop { node, mode } => {
                let sb = self.sandbox(kind, fault.kind())?;
                let idx = node_index(sb, node)?;
                let description = format!("stopped {node} ({mode:?} shutdown)").to_lowercase();
                journal.effect(&description, None)?;
                sb.stop(idx, *mode).await?;
                Ok(Injected {
                    description,
                    undo: None,
                    ends_after: None,
                    at: None,
                })
            }
            Fault::Pause { node, duration } => {
                let sb = self.sandbox(kind, fault.kind())?;
                let idx = node_index(sb, node)?;
                if sb.nodes[idx].pid().is_none() {
                    return Err(EnvError::Database(format!(
                        "{node} is not running; nothing to pause"
                    )));
                }
                let undo = Undo::Resume {
                    dir: sb.nodes[idx].data_dir.clone(),
                };
                let id = journal.effect(
                    format!("SIGSTOP every process of {node} for {duration}"),
                    Some(undo.clone()),
                )?;
                let pids = sb.pause(idx).unwrap_or_default();
                Ok(Injected {
                    description: format!(
                        "SIGSTOP all {} processes of {node} for {duration}",
                        pids.len()
                    ),
                    undo: Some((undo, id)),
                    ends_after: Some(duration.get()),
                    at: None,
                })
            }
            Fault::Command { run, undo, timeout } => {
                let e = self.existing(kind, fault.kind())?;
                let (description, undo, at) = e
                    .fault_command(run, undo.as_ref(), timeout.get(), journal)
                    .await?;
                Ok(Injected {
                    description,
                    undo,
                    ends_after: None,
                    at,
                })
            }
            Fault::Sql { query } => {
                if !matches!(self, Driver::Sandbox(_) | Driver::Existing(_)) {
                    return Err(mismatch(kind, fault.kind()));
                }
                let description = format!("ran `{query}` on the primary");
                journal.effect(&description, None)?;
                let (client, conn) = self
                    .client_config(Duration::from_secs(5))
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| EnvError::Unreachable {
                        what: "the primary, to run the fault's SQL".into(),
                        reason: sandbox::describe_pg_error(&e),
                    })?;
                tokio::spawn(conn);
                client.batch_execute(query).await.map_err(|e| {
                    EnvError::Database(format!("`{query}`: {}", sandbox::describe_pg_error(&e)))
                })?;
                Ok(Injected {
                    description,
                    undo: None,
                    ends_after: None,
                    at: None,
                })
            }
            Fault::ZoneOutage { zone, duration } => {
                let sb = self.sandbox(kind, fault.kind())?;
                let fabric = sb.fabric().ok_or_else(|| no_zones(fault.kind()))?;
                let (undo, id, at) = fabric.zone_down(zone, journal).await?;
                let nodes = fabric
                    .layout()
                    .zones
                    .iter()
                    .find(|(z, _)| z == zone)
                    .map(|(_, n)| n.join(", "))
                    .unwrap_or_default();
                Ok(Injected {
                    description: format!(
                        "zone {zone} lost: its link to the bridge down ({})",
                        if nodes.is_empty() {
                            "clients only".into()
                        } else {
                            nodes
                        }
                    ),
                    undo: Some((undo, id)),
                    ends_after: duration.map(|d| d.get()),
                    // The links change here, after the journal's fsync: the fault instant.
                    at: Some(at),
                })
            }
            Fault::Partition {
                between,
                one_way,
                duration,
            } => {
                let sb = self.sandbox(kind, fault.kind())?;
                let fabric = sb.fabric().ok_or_else(|| no_zones(fault.kind()))?;
                let (from, to) = match between.as_slice() {
                    [a, b] => (a, b),
                    _ => return Err(EnvError::Database("a partition has two sides".into())),
                };
                let (undo, id, at) = fabric.partition(from, to, *one_way, journal).await?;
                Ok(Injected {
                    description: format!(
                        "partition: {} {} {}",
                        from.join(", "),
                        if *one_way {
                            "cannot send to"
                        } else {
                            "cut from"
                        },
                        to.join(", ")
                    ),
                    undo: Some((undo, id)),
                    ends_after: duration.map(|d| d.get()),
                    // The links change here, after the journal's fsync: the fault instant.
                    at: Some(at),
                })
            }
            Fault::KillHost { .. }
            | Fault::KillPostgres { .. }
            | Fault::PauseHost { .. }
            | Fault::Switchover { .. }
            | Fault::Failover { .. }
            | Fault::StopDcs { .. } => match self {
                Driver::Patroni(p) => p.inject(fault, journal).await,
                Driver::Sandbox(_) | Driver::Existing(_) | Driver::Aws(_) => {
                    Err(mismatch(kind, fault.kind()))
                }
            },
        }
    }

    /// Reads what the target can tell about itself before the fault (a Patroni cluster's
    /// members and settings), for the report.
    /// What it found worth a timeline entry (failsafe mode armed), if anything.
    pub async fn before_fault(&mut self) -> Result<Option<String>, EnvError> {
        match self {
            Driver::Patroni(p) => p.before_fault().await,
            Driver::Sandbox(_) | Driver::Existing(_) | Driver::Aws(_) => Ok(None),
        }
    }

    /// A Patroni cluster's view after the observation, with the RTO its settings should give.
    pub async fn patroni_view(
        &mut self,
        fault: &Fault,
        rto_ms: Option<f64>,
    ) -> Option<crate::cluster::PatroniView> {
        match self {
            Driver::Patroni(p) => Some(p.view(fault, rto_ms).await),
            Driver::Sandbox(_) | Driver::Existing(_) | Driver::Aws(_) => None,
        }
    }

    /// Takes back a fault that is still in effect (on abort, or when a pause ends), and records
    /// it in the journal.
    pub async fn undo(
        &mut self,
        (undo, id): (Undo, EffectId),
        journal: &Journal,
    ) -> Result<String, EnvError> {
        let timeout = if crate::safety::signals::hurry() {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(60)
        };
        let how = crate::safety::undo::apply(&undo, timeout)
            .await
            .map_err(EnvError::Database)?;
        // The record is synced to disk: off the runtime's workers, whose probes are timing the
        // very recovery this undo starts.
        let (journal, record) = (journal.clone(), how.clone());
        let _ = tokio::task::spawn_blocking(move || journal.undone(id, &record)).await;
        Ok(how)
    }

    /// Performs the scenario's recovery action; `None` when there is none to perform.
    pub async fn recover(&mut self, recovery: &Recovery) -> Result<Option<String>, EnvError> {
        let kind = recovery.target_kind().unwrap_or_default();
        match recovery {
            Recovery::Wait => Ok(None),
            Recovery::Promote { node, fence, .. } => {
                let sb = self.sandbox(kind, recovery.kind())?;
                let idx = node_index(sb, node)?;
                let fenced = match fence {
                    Fence::None => String::new(),
                    Fence::StopOldPrimary => match sb.primary() {
                        Some(old) => {
                            let name = sb.nodes[old].name.clone();
                            sb.kill(old)?;
                            format!("fenced {name} (SIGKILL), then ")
                        }
                        None => "no old primary running to fence; ".into(),
                    },
                };
                sb.promote(idx).await?;
                Ok(Some(format!("{fenced}promoted {node}")))
            }
            Recovery::Command { run, timeout, .. } => {
                let e = self.existing(kind, recovery.kind())?;
                Ok(Some(e.recovery_command(run, timeout.get()).await?))
            }
        }
    }

    /// The sandbox, or why a `what` (a fault or recovery for `kind` targets) does not apply.
    fn sandbox(&mut self, kind: &str, what: &str) -> Result<&mut Sandbox, EnvError> {
        match self {
            Driver::Sandbox(sb) => Ok(sb),
            Driver::Existing(_) | Driver::Aws(_) | Driver::Patroni(_) => Err(mismatch(kind, what)),
        }
    }

    fn existing(&mut self, kind: &str, what: &str) -> Result<&mut Existing, EnvError> {
        match self {
            Driver::Existing(e) => Ok(e),
            Driver::Sandbox(_) | Driver::Aws(_) | Driver::Patroni(_) => Err(mismatch(kind, what)),
        }
    }

    fn aws(&mut self, kind: &str, what: &str) -> Result<&mut AwsTarget, EnvError> {
        match self {
            Driver::Aws(t) => Ok(t),
            Driver::Sandbox(_) | Driver::Existing(_) | Driver::Patroni(_) => {
                Err(mismatch(kind, what))
            }
        }
    }

    /// Stops and removes what the driver built; returns the kept directory, if any.
    pub async fn teardown(&mut self, keep: bool) -> Option<PathBuf> {
        match self {
            Driver::Sandbox(sb) => sb.shutdown(keep).await,
            Driver::Patroni(p) => p.teardown(keep).await,
            Driver::Existing(_) | Driver::Aws(_) => None,
        }
    }

    /// Whether `node` (a sandbox node, a Patroni member) takes writes now: a game day's
    /// `primary-is` condition. Asked of the node itself (a sandbox) or of Patroni's view.
    pub async fn primary_is(&mut self, node: &str) -> Result<bool, EnvError> {
        match self {
            Driver::Sandbox(sb) => {
                let idx = node_index(sb, node)?;
                let client = sb.connect(idx).await?;
                let row = client
                    .query_one("select not pg_is_in_recovery()", &[])
                    .await
                    .map_err(|e| EnvError::Database(format!("asking {node}: {e}")))?;
                Ok(row.get(0))
            }
            Driver::Patroni(p) => p.leads(node).await,
            Driver::Existing(_) | Driver::Aws(_) => Err(EnvError::Database(
                "`primary-is` needs a sandbox or Patroni target".into(),
            )),
        }
    }

    /// What a game day's instruction names as `{{NAME.FIELD}}` on a sandbox; `None` on other
    /// targets, for a node it does not have, or for the fault (which the engine knows).
    pub fn fact(&self, placeholder: &Placeholder) -> Option<String> {
        let Driver::Sandbox(sb) = self else {
            return None;
        };
        match placeholder {
            Placeholder::Fault(_) => None,
            Placeholder::Sandbox(field) => Some(match field {
                SandboxField::BaseBackup => sb.base_backup().display().to_string(),
                SandboxField::WalArchive => sb.wal_archive().display().to_string(),
                SandboxField::BinDir => sb.bins().dir.display().to_string(),
            }),
            Placeholder::Node { node, field } => {
                let (port, dir) = sb.node_port_dir(sb.node(node)?);
                Some(match field {
                    NodeField::Port => port.to_string(),
                    NodeField::DataDir => dir.display().to_string(),
                })
            }
        }
    }

    /// A fault's progress worth a timeline entry (an FIS experiment's state), when it changed.
    pub async fn observe(&mut self) -> Option<String> {
        match self {
            Driver::Aws(t) => t.observe().await,
            Driver::Sandbox(_) | Driver::Existing(_) | Driver::Patroni(_) => None,
        }
    }

    /// Ends what may outlast the observation (a running FIS experiment, a created template);
    /// says what it did.
    pub async fn release(&mut self, journal: &Journal) -> Vec<String> {
        match self {
            Driver::Aws(t) => t.release(journal).await,
            Driver::Sandbox(_) | Driver::Existing(_) | Driver::Patroni(_) => Vec::new(),
        }
    }
}

/// A fault or recovery on the wrong kind of target; validation refuses these first, by the same
/// rule ([`Fault::target_kind`]).
pub(crate) fn mismatch(kind: &str, what: &str) -> EnvError {
    EnvError::Database(format!(
        "a `{what}` fault or recovery applies to `{kind}` targets, not this one"
    ))
}

/// A zone fault on a sandbox built without zones (validation refuses it first).
fn no_zones(kind: &str) -> EnvError {
    EnvError::Database(format!(
        "a `{kind}` fault needs a sandbox with zones (`target.zones`)"
    ))
}

fn node_index(sb: &Sandbox, node: &str) -> Result<usize, EnvError> {
    sb.node(node)
        .ok_or_else(|| EnvError::Database(format!("no node named {node} in this sandbox")))
}
