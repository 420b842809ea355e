//! Running on a schedule and at scale: the shipped systemd units (checked by
//! `systemd-analyze verify`), the Kubernetes manifests (checked offline by
//! `kubernetes-validate` against the two newest Kubernetes versions it bundles), metrics pushed
//! to a real Prometheus Pushgateway and read back, and fleets split into shards on moto, all
//! appending to one S3 evidence store.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use firedrill::shard::Shard;

use crate::aws::MOTO_CREDENTIALS;
use crate::fleet::Fleet;

fn deploy(rel: &str) -> PathBuf {
    crate::repo(&format!("deploy/{rel}"))
}

/// `systemd-analyze verify` on `dir`'s units: its complaints (empty when clean).
fn systemd_verify(dir: &Path) -> String {
    let units: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "service" || e == "timer")
        })
        .collect();
    let o = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .current_dir(dir)
        .output()
        .expect("systemd-analyze (the systemd package) is installed by .ci/setup");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if o.status.success() {
        said
    } else {
        format!("exit {:?}: {said}", o.status.code())
    }
}

/// The units as shipped, with the binary's path (`/usr/local/bin/firedrill`) pointed at the
/// one this test built, since `verify` checks that ExecStart's program exists.
fn units_in(dir: &Path) {
    let bin = crate::firedrill_bin();
    for e in std::fs::read_dir(deploy("systemd")).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            dir.join(p.file_name().unwrap()),
            text.replace("/usr/local/bin/firedrill", &bin.display().to_string()),
        )
        .unwrap();
    }
}

#[test]
fn the_systemd_units_verify_clean_and_keep_what_a_drill_needs() {
    let dir = tempfile::tempdir().unwrap();
    units_in(dir.path());
    assert_eq!(systemd_verify(dir.path()), "", "systemd-analyze verify");

    for (service, timer) in [
        ("firedrill-restore-monthly", "firedrill-restore-monthly"),
        (
            "firedrill-failover-quarterly",
            "firedrill-failover-quarterly",
        ),
    ] {
        let s = std::fs::read_to_string(deploy(&format!("systemd/{service}.service"))).unwrap();
        for line in [
            "StateDirectory=firedrill",
            "EnvironmentFile=/etc/firedrill/firedrill.env",
            "ExecStartPre=/usr/local/bin/firedrill recover",
            "KillMode=mixed",
            "CapabilityBoundingSet=CAP_SETUID CAP_SETGID",
        ] {
            assert!(s.contains(line), "{service}: {line}");
        }
        let t = std::fs::read_to_string(deploy(&format!("systemd/{timer}.timer"))).unwrap();
        for line in ["Persistent=true", "RandomizedDelaySec="] {
            assert!(t.contains(line), "{timer}: {line}");
        }
        // The calendar expression parses and has a next elapse.
        let cal = t
            .lines()
            .find_map(|l| l.strip_prefix("OnCalendar="))
            .unwrap();
        let o = std::process::Command::new("systemd-analyze")
            .args(["calendar", cal])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && said.contains("Next elapse:"),
            "{cal}: {said}"
        );
    }

    // The check can fail: a misspelt directive is named.
    let broken = dir.path().join("firedrill-restore-monthly.service");
    let text = std::fs::read_to_string(&broken).unwrap();
    std::fs::write(
        &broken,
        text.replace("TimeoutStartSec=", "TimeoutStartSecs="),
    )
    .unwrap();
    let said = systemd_verify(dir.path());
    assert!(said.contains("TimeoutStartSecs"), "{said}");
}

/// kubernetes-validate, from the venv `.ci/setup` makes.
fn kubernetes_validate() -> PathBuf {
    let venv = std::env::var_os("FIREDRILL_K8S_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/firedrill/k8s-venv")
        });
    venv.join("bin/kubernetes-validate")
}

/// The two newest Kubernetes versions whose strict schemas kubernetes-validate bundles.
fn newest_kubernetes_versions() -> Vec<String> {
    let venv = kubernetes_validate()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let lib = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let schemas = lib.join("site-packages/kubernetes_validate/kubernetes-json-schema");
    let mut versions: Vec<(u32, u32, u32)> = std::fs::read_dir(&schemas)
        .unwrap_or_else(|e| panic!("{}: {e}", schemas.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let v = name
                .strip_prefix('v')?
                .strip_suffix("-local-strict")?
                .to_owned();
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next()??, parts.next()??))
        })
        .collect();
    versions.sort();
    versions
        .iter()
        .rev()
        .take(2)
        .map(|(a, b, c)| format!("{a}.{b}.{c}"))
        .collect()
}

fn validate_manifest(file: &Path, version: &str) -> (bool, String) {
    let o = std::process::Command::new(kubernetes_validate())
        .args(["--strict", "-k", version])
        .arg(file)
        .output()
        .expect("kubernetes-validate is installed by .ci/setup");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn every_manifest_is_valid_for_the_two_newest_kubernetes_versions() {
    let versions = newest_kubernetes_versions();
    assert_eq!(versions.len(), 2, "{versions:?}");
    let manifests: Vec<PathBuf> = std::fs::read_dir(deploy("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(manifests.len() >= 4, "{manifests:?}");
    for m in &manifests {
        for v in &versions {
            let (ok, said) = validate_manifest(m, v);
            assert!(
                ok && said.contains("passed"),
                "{} on {v}: {said}",
                m.display()
            );
        }
    }

    // What a drill needs of its Job: never retried blindly, never two at once, the shard count
    // the Pods are told equal to the completions.
    let cron = std::fs::read_to_string(deploy("kubernetes/cronjob-restore.yaml")).unwrap();
    for line in [
        "concurrencyPolicy: Forbid",
        "backoffLimit: 0",
        "startingDeadlineSeconds:",
        "readOnly: true",
    ] {
        assert!(cron.contains(line), "cronjob: {line}");
    }
    let job = std::fs::read_to_string(deploy("kubernetes/job-sharded.yaml")).unwrap();
    assert!(job.contains("completionMode: Indexed") && job.contains("backoffLimit: 0"));
    let completions = job
        .lines()
        .find_map(|l| l.trim().strip_prefix("completions: "))
        .unwrap();
    assert!(
        job.contains(&format!(
            "- name: FIREDRILL_SHARDS\n              value: \"{completions}\""
        )),
        "FIREDRILL_SHARDS is the completions"
    );
    // The ConfigMap carries the shipped scenario, byte for byte.
    let cm = std::fs::read_to_string(deploy("kubernetes/configmap-scenarios.yaml")).unwrap();
    let embedded: String = cm
        .split_once("rds-fleet-monthly-restore.yaml: |\n")
        .unwrap()
        .1
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let shipped =
        std::fs::read_to_string(crate::repo("scenarios/rds-fleet-monthly-restore.yaml")).unwrap();
    assert_eq!(
        embedded, shipped,
        "the ConfigMap's scenario is the shipped one"
    );

    // The check can fail: a misspelt field is refused in strict mode.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("cronjob.yaml");
    std::fs::write(
        &broken,
        cron.replace("concurrencyPolicy:", "concurrencyPolicyy:"),
    )
    .unwrap();
    let (ok, said) = validate_manifest(&broken, &versions[0]);
    assert!(!ok, "{said}");
}

/// A Pushgateway of Debian's package on a free loopback port, in memory only, stopped on drop.
struct Pushgateway {
    child: std::process::Child,
    url: String,
}

impl Pushgateway {
    fn start() -> Pushgateway {
        let port = crate::free_port();
        let child = std::process::Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus-pushgateway is installed by .ci/setup");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the Pushgateway did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Pushgateway { child, url }
    }

    fn metrics(&self) -> String {
        let mut s = std::net::TcpStream::connect(self.url.trim_start_matches("http://")).unwrap();
        use std::io::{Read, Write};
        write!(s, "GET /metrics HTTP/1.0\r\nHost: pushgateway\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A posture drill on moto pushes its metrics to a real Pushgateway: read back from its
/// `/metrics`, grouped by job and scenario, with the drill's verdict and last-run time. A
/// Pushgateway that does not answer is one error line, exit 4.
#[test]
fn metrics_pushed_to_a_real_pushgateway_are_read_back() {
    let moto = firedrill_aws::moto::Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rds = aws_sdk_rds::Client::new(&moto.conf("eu-west-1"));
    rt.block_on(
        rds.create_db_instance()
            .db_instance_identifier("orders")
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("app")
            .master_user_password("not-a-real-password")
            .storage_encrypted(true)
            .backup_retention_period(14)
            .deletion_protection(true)
            .send(),
    )
    .unwrap();
    let gateway = Pushgateway::start();
    let scenario = crate::repo("scenarios/rds-backup-posture.yaml");
    let run = |url: &str| {
        crate::run_to_end(
            crate::firedrill_process()
                .args(["run", "--pushgateway", url])
                .arg(&scenario)
                .env("AWS_ENDPOINT_URL", moto.url())
                .envs(MOTO_CREDENTIALS),
        )
    };
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (code, out, err) = run(&gateway.url);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("metrics pushed to"), "{err}");
    let metrics = gateway.metrics();
    let line = |name: &str, labels: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(labels))
            .unwrap_or_else(|| panic!("no {name} with {labels} in {metrics}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let group = "job=\"firedrill\",scenario=\"rds-backup-posture\"";
    assert_eq!(
        line("firedrill_verdict{", &format!("{group},verdict=\"pass\"")),
        1.0
    );
    assert_eq!(
        line(
            "firedrill_target_met{",
            &format!("{group},target=\"encrypted\"")
        ),
        1.0
    );
    let last = line("firedrill_last_run_timestamp_seconds{", group);
    assert!(last >= before.floor(), "{last} before {before}");
    assert!(
        metrics.contains("push_time_seconds{"),
        "the Pushgateway's own"
    );

    drop(gateway);
    let closed = format!("http://127.0.0.1:{}", crate::free_port());
    let (code, out, err) = run(&closed);
    assert_eq!(code, 4, "{out}{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].starts_with(&format!("error: pushgateway {closed}/")),
        "{err}"
    );
}

fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("db-{i:02}")).collect()
}

/// Shards of a fleet selected on moto (40 tagged instances, one untagged): together they are
/// the selection, no instance is in two, the same on a second run, and from 4 to 5 shards about
/// a fifth of the instances move, all to the new shard.
#[test]
fn shards_of_a_fleet_on_moto_partition_the_selection_stably() {
    let _x = crate::shared();
    let moto = firedrill_aws::moto::Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let all = ids(40);
    rt.block_on(async {
        for id in &all {
            moto.postgres_instance(id, false, &[("restore-test", "monthly")])
                .await;
        }
        moto.postgres_instance("other", false, &[("restore-test", "yearly")])
            .await;
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: shards\nenvironment: test\n\
             target: {{type: aws-rds, dsn_env: FD_SHARD_DSN, region: us-east-1, endpoint_url: '{}'}}\n\
             fleet: {{tags: {{restore-test: monthly}}}}\nworkload: {{connections: 0}}\n\
             restore: {{backup: {{type: rds-snapshot, snapshot: latest}}, verify: {{checksums: false}}}}\n\
             targets: {{rto: 1h}}\n",
            moto.url()
        ),
    )
    .unwrap();
    let vars = [(
        "FD_SHARD_DSN",
        "host=127.0.0.1 port={port} dbname={instance}",
    )]
    .into_iter()
    .chain(MOTO_CREDENTIALS);
    for (k, v) in vars.clone() {
        // SAFETY: these names are read by this test's selection only; the exclusive guard keeps
        // the in-process drills out, and std serializes its own environment access.
        unsafe { std::env::set_var(k, v) };
    }
    let loaded = firedrill::scenario::load(&file).unwrap();
    let firedrill::scenario::Run::Fleet(fleet) = loaded.run.clone() else {
        panic!("a fleet")
    };
    let part = |index: u32, count: u32| -> BTreeSet<String> {
        let s = rt
            .block_on(firedrill::fleet::members(
                &loaded,
                &fleet,
                Some(Shard::new(index, count).unwrap()),
            ))
            .unwrap();
        assert_eq!(s.shard.unwrap().selected, 40);
        s.members.into_iter().map(|m| m.instance).collect()
    };
    let four: Vec<BTreeSet<String>> = (0..4).map(|i| part(i, 4)).collect();
    let union: BTreeSet<String> = four.iter().flatten().cloned().collect();
    assert_eq!(union, all.iter().cloned().collect::<BTreeSet<_>>());
    assert_eq!(
        four.iter().map(BTreeSet::len).sum::<usize>(),
        40,
        "disjoint"
    );
    assert!(four.iter().all(|s| !s.is_empty()), "{four:?}");
    assert_eq!(
        (0..4).map(|i| part(i, 4)).collect::<Vec<_>>(),
        four,
        "stable"
    );
    let five: Vec<BTreeSet<String>> = (0..5).map(|i| part(i, 5)).collect();
    let moved: Vec<&String> = all
        .iter()
        .filter(|id| (0..4).any(|i| four[i].contains(*id) && !five[i].contains(*id)))
        .collect();
    assert!(
        moved.iter().all(|id| five[4].contains(*id)),
        "what moves goes to the new shard"
    );
    assert!(
        (3..=14).contains(&moved.len()),
        "{} of 40 moved (about 8 expected)",
        moved.len()
    );
    for (k, _) in vars {
        // SAFETY: as above.
        unsafe { std::env::remove_var(k) };
    }
}

/// 40 instances on moto restored as 4 shards, 4 processes at once as an Indexed Job runs them,
/// all appending to one S3 evidence store: the store verifies, the period summary lists all 40
/// with their last restore, and the one whose restored copy the test damaged is flagged as
/// never restored successfully.
#[test]
fn four_shards_of_a_fleet_append_to_one_store_and_the_summary_covers_every_database() {
    let _x = crate::shared();
    let all = ids(40);
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    let f = Fleet::with(&names);
    f.execute("db-17_restored", "delete from items where id = 42");
    let aws = firedrill_aws::Aws::from_conf(&f.moto.conf("us-east-1"));
    f.db.rt
        .block_on(aws.create_bucket("evidence", true))
        .unwrap();
    let file = f.scenario(
        "{tags: {restore-test: monthly}, concurrency: 1, start_every: 0s}",
        "2m",
    );
    let key = f.dir.path().join("key");
    let public = firedrill::signing::keygen(&key, "test").unwrap();
    let allowed = f.dir.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        firedrill::signing::allowed_signers_line("drills", &public),
    )
    .unwrap();
    let s3 = [
        ("AWS_ENDPOINT_URL", f.moto.url()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ];
    let shards: Vec<std::process::Child> = (0..4)
        .map(|i| {
            let mut cmd = f.command_to(
                &[
                    "--evidence",
                    "s3://evidence/fleet",
                    "--sign-key",
                    key.to_str().unwrap(),
                ],
                &file,
                Fleet::source_dsn(),
                &f.restored_dsn(),
            );
            cmd.env("JOB_COMPLETION_INDEX", i.to_string())
                .env("FIREDRILL_SHARDS", "4")
                .env(
                    "FIREDRILL_STATE_DIR",
                    f.dir.path().join(format!("state-{i}")),
                )
                .envs(s3.clone())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let mut taken = 0;
    for (i, child) in shards.into_iter().enumerate() {
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let shard_line = err
            .lines()
            .find(|l| l.contains(&format!("shard {i}/4 takes")))
            .unwrap_or_else(|| panic!("shard {i}: {err}"));
        taken += shard_line
            .split("takes ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap();
        assert!(
            shard_line.contains("of the 40 DB instance(s)"),
            "{shard_line}"
        );
        // Only db-17's shard misses a target.
        let expected = if Shard::new(i as u32, 4).unwrap().owns("db-17") {
            1
        } else {
            0
        };
        assert_eq!(o.status.code(), Some(expected), "shard {i}: {err}");
    }
    assert_eq!(taken, 40);

    let (code, out, err) = crate::run_to_end(
        crate::firedrill_process()
            .args(["verify", "s3://evidence/fleet", "--allowed-signers"])
            .arg(&allowed)
            .envs(s3.clone())
            .envs(MOTO_CREDENTIALS),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("40 reports verified"), "{out}");

    let today =
        humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10].to_owned();
    let summary = f.dir.path().join("summary");
    let (code, out, err) = crate::run_to_end(
        crate::firedrill_process()
            .args(["evidence", "s3://evidence/fleet", "--allowed-signers"])
            .arg(&allowed)
            .args([
                "--from",
                &today,
                "--to",
                &today,
                "--expect",
                "restore=monthly",
                "--out",
            ])
            .arg(&summary)
            .envs(s3)
            .envs(MOTO_CREDENTIALS),
    );
    assert_eq!(code, 1, "db-17 was never restored: {out}{err}");
    let unproven: Vec<&str> = out.lines().filter(|l| l.starts_with("UNPROVEN")).collect();
    assert_eq!(unproven.len(), 1, "{out}");
    assert!(
        unproven[0].starts_with(
            "UNPROVEN db-17: no successful restore in the period (1 drill(s), the last FAIL"
        ),
        "{out}"
    );
    assert!(
        out.contains("39 of 40 fleet database(s) restored successfully"),
        "{out}"
    );
    let md = std::fs::read_to_string(summary.join("summary.md")).unwrap();
    let table: Vec<&str> = md
        .split("## Restore coverage, per database")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| db-"))
        .collect();
    assert_eq!(table.len(), 40, "{md}");
    assert!(
        table
            .iter()
            .filter(|l| l.contains("NEVER in the period"))
            .count()
            == 1
            && table
                .iter()
                .any(|l| l.starts_with("| db-17 ") && l.contains("NEVER")),
        "{table:#?}"
    );
    assert!(f.left_in_aws().is_empty(), "{:?}", f.left_in_aws());
}
