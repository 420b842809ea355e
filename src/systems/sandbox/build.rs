//! How a sandbox comes to be: its directory, the primary from `initdb` or the cached template,
//! the standbys from a copy of that template or a `pg_basebackup`, replication configured and
//! waited for. Running it (start, stop, promote, teardown) is [`super`]'s.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

use super::{
    Node, Progress, Role, SUPERUSER, Sandbox, SandboxConfig, append, conninfo, free_port,
    set_sync_standbys,
};
use crate::error::EnvError;
use crate::net::Fabric;
use crate::net::zone::ZoneRuntime;
use crate::pg::binaries::PgBinaries;
use crate::safety::journal;
use crate::scenario::Replication;
use crate::template::{Key, copy_tree};

/// How every sandbox cluster is initialized (part of its template's key).
const INITDB: [&str; 7] = [
    "-U",
    SUPERUSER,
    "--auth=trust",
    "-E",
    "UTF8",
    "--locale=C",
    "--no-sync",
];

impl Sandbox {
    /// Builds and starts the primary and its standbys, and waits until every standby streams
    /// (and, for synchronous replication, until one is synchronous).
    pub async fn build(
        bins: PgBinaries,
        config: SandboxConfig,
        progress: Progress<'_>,
    ) -> Result<Sandbox, EnvError> {
        let mut sb = Sandbox::create(bins, config)?;
        if let Some((layout, tools)) = sb.config.zones.clone() {
            let fabric = Fabric::build(&layout, &sb.config.journal, tools).await?;
            progress(format!(
                "zones {} as network namespaces {}-* on a bridge",
                layout
                    .zones
                    .iter()
                    .map(|(z, _)| format!("{z} ({})", fabric.address(z).expect("a zone")))
                    .collect::<Vec<_>>()
                    .join(", "),
                fabric.fabric_ns().trim_end_matches("-fabric")
            ));
            for zone in &layout.clients {
                sb.client_zones
                    .push(ZoneRuntime::start(zone, &fabric.ns(zone))?);
            }
            sb.fabric = Some(Box::new(fabric));
        }
        let template = sb.template();
        let standby_dirs: Vec<PathBuf> = (1..=sb.config.standbys)
            .map(|i| sb.root_path.join(format!("standby{i}")))
            .collect();
        // The standbys' copies are made while the primary's is made and started.
        let copies = template
            .clone()
            .filter(|_| !standby_dirs.is_empty())
            .map(|t| {
                let dirs = standby_dirs.clone();
                tokio::task::spawn_blocking(move || dirs.iter().try_for_each(|d| copy_tree(&t, d)))
            });
        sb.init_primary_from(template, progress).await?;
        let copied = match copies {
            Some(copying) => {
                copying
                    .await
                    .map_err(|e| EnvError::Database(format!("copying: {e}")))??;
                true
            }
            None => false,
        };
        let (primary_addr, primary_port) = (sb.nodes[0].addr, sb.nodes[0].port);
        let admin = sb.admin_host();
        for (i, dir) in (1..=sb.config.standbys).zip(standby_dirs) {
            let name = format!("standby{i}");
            let port = free_port()?;
            let (addr, netns) = sb.placement(&name);
            if let Some(pristine) = sb.pristine.clone() {
                // The cluster the primary started from, copied cold: a valid base backup of it,
                // and the primary still has every WAL record since (wal_keep_size).
                progress(format!("{name} copied from the template"));
                if !copied {
                    copy_tree(&pristine, &dir)?;
                }
                sb.chown_tree(&dir)?;
                append(&dir.join("postgresql.conf"), &sb.base_conf(port, addr))?;
                sb.allow_fabric(&dir)?;
            } else {
                progress(format!("pg_basebackup {name}"));
                let basebackup = sb.bins.program("pg_basebackup");
                sb.run_tool(
                    "pg_basebackup",
                    Command::new(basebackup)
                        .arg("-D")
                        .arg(&dir)
                        .args(["-h", &admin, "-p", &primary_port.to_string()])
                        .args(["-U", SUPERUSER, "-X", "stream", "-c", "fast", "--no-sync"]),
                )?;
                // The copied postgresql.conf names the primary's port and address; the last
                // setting wins.
                append(
                    &dir.join("postgresql.conf"),
                    &format!("port = {port}\nlisten_addresses = '{addr}'\n"),
                )?;
            }
            append(
                &dir.join("postgresql.auto.conf"),
                &format!(
                    "primary_conninfo = '{}'\n",
                    conninfo(primary_addr, primary_port, &name)
                ),
            )?;
            let signal = dir.join("standby.signal");
            File::create(&signal).map_err(EnvError::io("cannot write standby.signal"))?;
            sb.chown(&signal)?;
            sb.nodes.push(Node {
                name: name.clone(),
                addr,
                netns,
                port,
                data_dir: dir,
                role: Role::Standby,
                child: None,
            });
            let idx = sb.nodes.len() - 1;
            sb.start(idx).await?;
            progress(format!("{name} up on {addr}:{port}"));
        }

        let primary = sb.connect(0).await?;
        if sb.config.replication == Replication::Synchronous {
            let names: Vec<String> = sb.nodes[1..].iter().map(|n| n.name.clone()).collect();
            set_sync_standbys(&primary, &names).await?;
        }
        sb.wait_replication(&primary).await?;
        progress(format!(
            "replication streaming ({} standby{}, {})",
            sb.config.standbys,
            if sb.config.standbys == 1 { "" } else { "s" },
            match sb.config.replication {
                Replication::Async => "asynchronous",
                Replication::Synchronous => "synchronous",
            }
        ));
        for sql in &sb.config.seed_sql {
            primary.batch_execute(sql).await.map_err(|e| {
                EnvError::Database(format!(
                    "seed_sql `{sql}`: {}",
                    super::describe_pg_error(&e)
                ))
            })?;
        }
        if !sb.config.seed_sql.is_empty() {
            progress(format!(
                "seeded ({} statement(s))",
                sb.config.seed_sql.len()
            ));
        }
        if sb.config.wal_archive {
            let dir = sb.base_backup();
            sb.run_tool(
                "pg_basebackup",
                Command::new(sb.bins.program("pg_basebackup"))
                    .arg("-D")
                    .arg(&dir)
                    .args(["-h", &admin, "-p", &primary_port.to_string()])
                    .args(["-U", SUPERUSER, "-X", "stream", "-c", "fast", "--no-sync"]),
            )?;
            progress(format!(
                "base backup in {}, WAL archived into {}",
                dir.display(),
                sb.wal_archive().display()
            ));
        }
        Ok(sb)
    }

    /// An empty sandbox: its directory, socket and log directories, no node yet.
    pub fn create(bins: PgBinaries, config: SandboxConfig) -> Result<Sandbox, EnvError> {
        let (root_path, root) = journal::create_dir(
            &config.journal,
            config.work_dir.as_deref(),
            "firedrill-sandbox-",
            "the sandbox directory",
        )?;
        let sb = Sandbox {
            root: Some(root),
            root_path,
            bins,
            config,
            nodes: Vec::new(),
            pristine: None,
            fabric: None,
            client_zones: Vec::new(),
        };
        std::fs::create_dir(sb.root_path.join("sock"))
            .map_err(EnvError::io("cannot create the socket directory"))?;
        std::fs::create_dir(sb.root_path.join("log"))
            .map_err(EnvError::io("cannot create the log directory"))?;
        if sb.config.wal_archive {
            std::fs::create_dir(sb.wal_archive())
                .map_err(EnvError::io("cannot create the WAL archive directory"))?;
            sb.chown(&sb.wal_archive())?;
        }
        sb.chown(&sb.root_path)?;
        sb.chown(&sb.root_path.join("sock"))?;
        Ok(sb)
    }

    /// This PostgreSQL's cached template, if there is one.
    fn template(&self) -> Option<PathBuf> {
        let version = self.bins.version()?;
        let key = Key {
            postgres: &version,
            initdb: &INITDB,
        };
        self.config.templates.as_ref()?.find(&key)
    }

    /// initdb (or copy the template of) the primary, and start it.
    pub async fn init_primary(&mut self, progress: Progress<'_>) -> Result<(), EnvError> {
        let template = self.template();
        self.init_primary_from(template, progress).await
    }

    async fn init_primary_from(
        &mut self,
        found: Option<PathBuf>,
        progress: Progress<'_>,
    ) -> Result<(), EnvError> {
        let primary_port = free_port()?;
        let primary_dir = self.root_path.join("primary");
        if let Some(template) = found {
            progress(format!(
                "primary in {} (copied from the template {})",
                primary_dir.display(),
                template.display()
            ));
            copy_tree(&template, &primary_dir)?;
            self.chown_tree(&primary_dir)?;
            self.pristine = Some(template);
        } else {
            progress(format!("primary in {} (initdb)", primary_dir.display()));
            let initdb = self.bins.program("initdb");
            self.run_tool(
                "initdb",
                Command::new(initdb)
                    .arg("-D")
                    .arg(&primary_dir)
                    .args(INITDB),
            )?;
            let version = self.bins.version();
            let key = version.as_deref().map(|postgres| Key {
                postgres,
                initdb: &INITDB,
            });
            if let Some((cache, key)) = self.config.templates.as_ref().zip(key.as_ref()) {
                // A cache that cannot be filled costs the next sandbox an initdb, nothing more.
                match cache.store(key, &primary_dir) {
                    Ok(t) => {
                        progress(format!("kept as a template in {}", t.display()));
                        self.pristine = Some(t);
                    }
                    Err(e) => progress(format!("no template kept: {e}")),
                }
            }
        }
        let (addr, netns) = self.placement("primary");
        let conf = self.base_conf(primary_port, addr);
        append(&primary_dir.join("postgresql.conf"), &conf)?;
        self.allow_fabric(&primary_dir)?;
        self.nodes.push(Node {
            name: "primary".into(),
            addr,
            netns,
            port: primary_port,
            data_dir: primary_dir,
            role: Role::Primary,
            child: None,
        });
        self.start(0).await?;
        progress(format!("primary up on {addr}:{primary_port}"));
        Ok(())
    }
}
