//! Evidence chains: one real signed drill, extended through the library's own write path, then
//! checked by `firedrill verify` as an auditor would, intact and tampered with.

use std::path::Path;

use firedrill::evidence;
use firedrill::report::Report;
use firedrill::signing::{self, Signer};

use crate::repo;

fn verify(dir: &Path, allowed: &Path) -> (i32, String, String) {
    let out = crate::firedrill_cmd()
        .arg("verify")
        .arg(dir)
        .arg("--allowed-signers")
        .arg(allowed)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A fresh key, its allowed_signers file and an evidence directory path, in a temp dir.
pub(crate) struct Keyring {
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) key: std::path::PathBuf,
    pub(crate) allowed: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl Keyring {
    pub(crate) fn new() -> Keyring {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("key");
        let public = signing::keygen(&key, "test").unwrap();
        let allowed = tmp.path().join("allowed_signers");
        std::fs::write(&allowed, signing::allowed_signers_line("drills", &public)).unwrap();
        let dir = tmp.path().join("evidence");
        Keyring {
            tmp,
            key,
            allowed,
            dir,
        }
    }

    pub(crate) fn signer(&self) -> Signer {
        Signer::load(&self.key).unwrap()
    }
}

/// The committed report of a real drill.
fn fixture() -> Report {
    serde_json::from_slice(&std::fs::read(repo("tests/fixtures/report-pass.json")).unwrap())
        .unwrap()
}

#[test]
fn verify_accepts_an_intact_chain_and_names_every_kind_of_tampering() {
    let _x = crate::shared();
    let k = Keyring::new();
    let (tmp, key, allowed, chain) = (k.tmp.path(), &k.key, &k.allowed, k.dir.clone());

    // Report 1: a real drill, through the command line.
    crate::firedrill_cmd()
        .current_dir(repo(""))
        .args(["run", "scenarios/sandbox-failover-sync.yaml", "--evidence"])
        .arg(&chain)
        .arg("--sign-key")
        .arg(key)
        .assert()
        .code(0);
    let first: Report = serde_json::from_slice(
        &std::fs::read(chain.join("000001-sandbox-failover-sync/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(first.chain.as_ref().unwrap().sequence, 1);
    assert_eq!(first.chain.as_ref().unwrap().previous_sha256, None);

    // Reports 2..5 through the same write path; report 4 lies: it claims pass with an RTO over
    // its target, correctly signed and chained (a forged or buggy writer).
    let signer = Signer::load(key).unwrap();
    for i in 2..=5u64 {
        let mut r = first.clone();
        r.run_id = format!("run-{i}");
        if i == 4 {
            r.measurements.rto_ms = Some(99_999.0);
        }
        let path = evidence::append(&chain, &mut r, Some(&signer)).unwrap();
        assert_eq!(r.chain.as_ref().unwrap().sequence, i);
        assert!(path.ends_with(format!("{i:06}-sandbox-failover-sync/report.json")));
    }
    let (code, stdout, stderr) = verify(&chain, allowed);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.trim().lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert_eq!(
        lines[..2].join("\n"),
        "problem: 000004-sandbox-failover-sync: target rto claims met (Some(742.0)) but the \
         measurements give missed (Some(99999.0))\n\
         problem: 000004-sandbox-failover-sync: verdict claims Pass but the targets give Fail"
            .replace(
                "742.0",
                &format!("{:?}", first.measurements.rto_ms.unwrap())
            ),
    );
    // The probe record gives the true RTO again (to the microsecond the figures are rounded to).
    let recomputed = lines[2]
        .strip_prefix(
            "problem: 000004-sandbox-failover-sync: rto_ms: the report says 99999.000, its probe \
             record gives ",
        )
        .unwrap_or_else(|| panic!("{stderr}"));
    let recomputed: f64 = recomputed.parse().unwrap();
    assert!(
        (recomputed - first.measurements.rto_ms.unwrap()).abs() <= 0.002,
        "{stderr}"
    );

    // Without the liar the chain is intact.
    let honest = tmp.join("honest");
    for i in 1..=5u64 {
        let mut r = first.clone();
        r.run_id = format!("honest-{i}");
        evidence::append(&honest, &mut r, Some(&signer)).unwrap();
    }
    let (code, stdout, stderr) = verify(&honest, allowed);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("5 reports verified: signatures, chain, index, verdicts and what could be re-derived all hold"),
        "{stdout}"
    );
    let index = std::fs::read_to_string(honest.join("index.json")).unwrap();
    assert_eq!(index.matches("\"sequence\"").count(), 5, "{index}");
    // The index is signed like a report: the auditor's own tool accepts it.
    crate::signing::ssh_keygen_verify(allowed, "drills", &honest.join("index.json"))
        .expect("ssh-keygen accepts the index signature");

    // The newest report removed: no later report points back at it, the signed index does.
    let newest = tmp.join("newest-removed");
    copy_dir(&honest, &newest);
    std::fs::remove_dir_all(newest.join("000005-sandbox-failover-sync")).unwrap();
    let (code, _, stderr) = verify(&newest, allowed);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "000005-sandbox-failover-sync: listed in the index (sequence 5) but missing: removed"
        ),
        "{stderr}"
    );
    // ...and rewriting the index to hide it breaks the index's signature.
    let index_path = newest.join("index.json");
    let mut idx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
    idx["reports"].as_array_mut().unwrap().pop();
    std::fs::write(&index_path, serde_json::to_vec_pretty(&idx).unwrap()).unwrap();
    let (code, _, stderr) = verify(&newest, allowed);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("index.json: signature: signature does not match the content"),
        "{stderr}"
    );

    // A report removed from the middle.
    let removed = tmp.join("removed");
    std::fs::create_dir_all(&removed).unwrap();
    copy_dir(&honest, &removed);
    std::fs::remove_dir_all(removed.join("000003-sandbox-failover-sync")).unwrap();
    let (code, _, stderr) = verify(&removed, allowed);
    assert_eq!(code, 1);
    assert!(
        stderr
            .contains("000004-sandbox-failover-sync: sequence 4 follows 2: report(s) 3..3 missing"),
        "{stderr}"
    );

    // A verdict edited by hand: the signature breaks, and so does the next link.
    let edited = tmp.join("edited");
    std::fs::create_dir_all(&edited).unwrap();
    copy_dir(&honest, &edited);
    let path = edited.join("000002-sandbox-failover-sync/report.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("\"verdict\": \"pass\"", "\"verdict\": \"fail\"", 1),
    )
    .unwrap();
    let (code, _, stderr) = verify(&edited, allowed);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "000002-sandbox-failover-sync: signature: signature does not match the content"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("000003-sandbox-failover-sync: the previous report's SHA-256 does not match (000002-sandbox-failover-sync was edited or replaced)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "000002-sandbox-failover-sync: verdict claims Fail but the targets give Pass"
        ),
        "{stderr}"
    );

    // A missing signature file.
    std::fs::remove_file(honest.join("000005-sandbox-failover-sync/report.json.sig")).unwrap();
    let (code, _, stderr) = verify(&honest, allowed);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("000005-sandbox-failover-sync: signature: no report.json.sig"),
        "{stderr}"
    );
}

/// Two writers at once never claim the same sequence number: the directory lock serializes
/// them and the chain stays intact.
#[test]
fn concurrent_writers_get_distinct_sequence_numbers() {
    let _x = crate::shared();
    let k = Keyring::new();
    let (_, key, allowed, dir) = (k.tmp.path(), &k.key, &k.allowed, k.dir.clone());
    let base = fixture();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (dir, key, mut r) = (dir.clone(), key.clone(), base.clone());
            std::thread::spawn(move || {
                r.run_id = format!("writer-{i}");
                let signer = Signer::load(&key).unwrap();
                evidence::append(&dir, &mut r, Some(&signer)).unwrap();
                r.chain.unwrap().sequence
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    let (code, stdout, stderr) = verify(&dir, allowed);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("8 reports verified"), "{stdout}");
}

/// A year of drills: the period summary lists those inside the period, flags the months
/// without a restore test, and marks a tampered report.
#[test]
fn evidence_summary_flags_missing_months_and_unverified_reports() {
    let _x = crate::shared();
    let k = Keyring::new();
    let (tmp, _, allowed, dir) = (k.tmp.path(), &k.key, &k.allowed, k.dir.clone());
    let signer = k.signer();
    let base = fixture();
    // Restore tests in Jan, Feb and Apr (none in March); a failover drill in Feb; one
    // restore test in December of the year before, outside the period.
    let drills = [
        (
            "2025-12-15",
            firedrill::report::DrillKind::Restore,
            "monthly-restore",
        ),
        (
            "2026-01-10",
            firedrill::report::DrillKind::Restore,
            "monthly-restore",
        ),
        (
            "2026-02-10",
            firedrill::report::DrillKind::Restore,
            "monthly-restore",
        ),
        (
            "2026-02-20",
            firedrill::report::DrillKind::Failover,
            "sandbox-failover-sync",
        ),
        (
            "2026-04-02",
            firedrill::report::DrillKind::Restore,
            "monthly-restore",
        ),
    ];
    for (i, (day, kind, name)) in drills.iter().enumerate() {
        let mut r = base.clone();
        r.run_id = format!("run-{i}");
        r.started_at = format!("{day}T02:00:00.000Z");
        r.finished_at = format!("{day}T02:00:09.500Z");
        r.drill = *kind;
        r.scenario.name = (*name).into();
        evidence::append(&dir, &mut r, Some(&signer)).unwrap();
    }
    // Report 3 (February's restore test) edited after signing.
    let edited = dir.join("000003-monthly-restore/report.json");
    let text = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, text.replacen("\"rto_ms\": ", "\"rto_ms\": 1", 1)).unwrap();

    let out_dir = tmp.join("summary");
    let out = crate::firedrill_cmd()
        .arg("evidence")
        .arg(&dir)
        .args([
            "--from",
            "2026-01-01",
            "--to",
            "2026-04-30",
            "--allowed-signers",
        ])
        .arg(allowed)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("MISSING  restore=monthly in 2026-03-01 to 2026-03-31"),
        "{stdout}"
    );
    // Q1 has the February failover drill; the April part of Q2 has none.
    assert!(
        stdout.contains("MISSING  failover=quarterly in 2026-04-01 to 2026-04-30"),
        "{stdout}"
    );
    assert!(!stdout.contains("2026-01-01 to 2026-03-31"), "{stdout}");
    assert!(
        stdout.contains("4 drills, 4 passed, 0 failed, 0 aborted; 2 scheduled drill(s) missing"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(out_dir.join("drills.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 5, "{csv}");
    assert!(rows[0].starts_with("entry,sequence,scenario,drill,started_at,verdict,rto_ms"));
    let feb = rows.iter().find(|r| r.starts_with("000003-")).unwrap();
    assert!(
        feb.contains(",PROBLEM,"),
        "the edited report is marked: {feb}"
    );
    // ...and so is the next one, whose link to it no longer holds.
    let mar = rows.iter().find(|r| r.starts_with("000004-")).unwrap();
    assert!(mar.contains(",PROBLEM,"), "{mar}");
    assert_eq!(rows.iter().filter(|r| r.contains(",verified,")).count(), 2);
    let md = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
    assert!(
        md.contains("| **restore=monthly** | 2026-03-01 to 2026-03-31 |"),
        "{md}"
    );
    assert!(md.contains("| A1.3 |"), "{md}");
    let html = std::fs::read_to_string(out_dir.join("summary.html")).unwrap();
    assert!(html.contains("<table id=\"gaps\">") && !html.contains("<script"));

    // A full period with everything present and intact exits 0.
    let out = crate::firedrill_cmd()
        .arg("evidence")
        .arg(&dir)
        .args([
            "--from",
            "2026-01-01",
            "--to",
            "2026-02-28",
            "--expect",
            "restore=monthly",
        ])
        .arg("--out")
        .arg(tmp.join("q1"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("signatures not checked"), "{stdout}");
}

/// A writer that died between its report and the index leaves a report the next append adopts
/// (it links to the indexed head); a removed newest report stops the next append instead of
/// being buried under it.
#[test]
fn append_adopts_a_crashed_writers_report_and_refuses_a_broken_directory() {
    let _x = crate::shared();
    let k = Keyring::new();
    let (allowed, dir, signer, base) = (&k.allowed, &k.dir, k.signer(), fixture());
    let mut r = base.clone();
    let second = evidence::append(dir, &mut r.clone(), Some(&signer))
        .and_then(|_| evidence::append(dir, &mut r, Some(&signer)))
        .unwrap();
    // The crashed writer: report 3 written and linked, index not updated.
    let mut orphan = base.clone();
    orphan.run_id = "crashed".into();
    orphan.chain = Some(firedrill::report::ChainLink {
        sequence: 3,
        previous_sha256: Some(evidence::sha256(&std::fs::read(&second).unwrap())),
    });
    evidence::write(&dir.join("000003-crashed"), &orphan, Some(&signer)).unwrap();
    let mut fourth = base.clone();
    evidence::append(dir, &mut fourth, Some(&signer)).unwrap();
    assert_eq!(fourth.chain.unwrap().sequence, 4);
    let (code, stdout, stderr) = verify(dir, allowed);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("4 reports verified"), "{stdout}");

    std::fs::remove_dir_all(dir.join("000004-sandbox-failover-sync")).unwrap();
    let err = evidence::append(dir, &mut base.clone(), Some(&signer))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "000004-sandbox-failover-sync is in the index but missing; run `firedrill verify"
        ),
        "{err}"
    );
    assert!(!dir.join("000004-sandbox-failover-sync").exists());
}

/// A signer who rewrites a report and signs it again, chained and indexed as if honest, is still
/// named by `verify`: it re-derives every target and limit from the scenario the report embeds,
/// recomputes the figures from its probe record, and (`--scenarios`) checks the embedded scenario
/// against the files at the audited commit. One real drill whose RTO target (1 ms) is missed.
#[test]
fn verify_names_a_resigned_report_whose_targets_figures_or_scenario_were_rewritten() {
    let _x = crate::shared();
    let k = Keyring::new();
    let scenarios = k.tmp.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    let original = std::fs::read_to_string(repo("scenarios/sandbox-failover-sync.yaml"))
        .unwrap()
        .replace(
            "runbook: ../runbooks/",
            &format!("runbook: {}/", repo("runbooks").display()),
        )
        .replace("  rto: 2s\n", "  rto: 1ms\n");
    let file = scenarios.join("sandbox-failover-sync.yaml");
    std::fs::write(&file, &original).unwrap();
    let honest = k.tmp.path().join("honest");
    crate::firedrill_cmd()
        .args(["run", "--evidence"])
        .arg(&honest)
        .arg("--sign-key")
        .arg(&k.key)
        .arg(&file)
        .assert()
        .code(1);
    let real: Report = serde_json::from_slice(
        &std::fs::read(honest.join("000001-sandbox-failover-sync/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        real.format_version,
        firedrill::report::REPORT_FORMAT_VERSION
    );
    assert!(real.measurements.probe_record.is_some());
    let rto = real.targets.iter().find(|t| t.name == "rto").unwrap();
    assert!(!rto.met, "the 1 ms target is missed");

    let verify_with = |dir: &Path, scenarios: Option<&Path>| {
        let mut cmd = crate::firedrill_cmd();
        cmd.arg("verify")
            .arg(dir)
            .arg("--allowed-signers")
            .arg(&k.allowed);
        if let Some(s) = scenarios {
            cmd.arg("--scenarios").arg(s);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (code, text) = verify_with(&honest, Some(&scenarios));
    assert_eq!(code, 0, "{text}");

    // Each lie re-signed into a chain of its own, so that signature, chain and index hold.
    let signer = k.signer();
    let forge = |name: &str, edit: &dyn Fn(&mut Report)| {
        let mut r = real.clone();
        r.chain = None;
        edit(&mut r);
        let dir = k.tmp.path().join(name);
        evidence::append(&dir, &mut r, Some(&signer)).unwrap();
        dir
    };
    let pass = |r: &mut Report| r.verdict = firedrill::report::Verdict::Pass;

    let dir = forge("deleted", &|r| {
        r.targets.retain(|t| t.name != "rto");
        pass(r);
    });
    let (code, text) = verify_with(&dir, None);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("target rto (limit 1.0 ms) is the scenario's but missing from the report"),
        "{text}"
    );

    let dir = forge("raised", &|r| {
        let t = r.targets.iter_mut().find(|t| t.name == "rto").unwrap();
        t.limit = 20_000.0;
        t.met = true;
        pass(r);
    });
    let (code, text) = verify_with(&dir, None);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("target rto: the report's limit 20000.0 ms is not the scenario's 1.0 ms"),
        "{text}"
    );

    let achieved = real.measurements.rto_ms.unwrap();
    let dir = forge("edited-rto", &|r| {
        r.measurements.rto_ms = Some(0.5);
        r.measurements.time_to_first_success_ms = Some(0.5);
        let t = r.targets.iter_mut().find(|t| t.name == "rto").unwrap();
        t.achieved = Some(0.5);
        t.met = true;
        pass(r);
    });
    let (code, text) = verify_with(&dir, None);
    assert_eq!(code, 1, "{text}");
    let recomputed: f64 = text
        .split("rto_ms: the report says 0.500, its probe record gives ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap();
    assert!((recomputed - achieved).abs() <= 0.002, "{text}");

    // A scenario text swapped for a laxer one: without a matching SHA-256 it shows at once;
    // with the SHA-256 updated too, the committed scenario shows it.
    let lax = original.replace("  rto: 1ms\n", "  rto: 20s\n");
    let swap = |r: &mut Report| {
        r.scenario.source = Some(lax.clone());
        let t = r.targets.iter_mut().find(|t| t.name == "rto").unwrap();
        t.limit = 20_000.0;
        t.met = true;
        pass(r);
    };
    let dir = forge("swapped", &|r| swap(r));
    let (code, text) = verify_with(&dir, None);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("the embedded scenario does not match the report's scenario SHA-256"),
        "{text}"
    );
    let dir = forge("swapped-and-hashed", &|r| {
        swap(r);
        r.scenario.sha256 = evidence::sha256(lax.as_bytes());
    });
    let (code, text) = verify_with(&dir, None);
    assert_eq!(
        code, 0,
        "a consistent lie passes without the committed scenarios: {text}"
    );
    let (code, text) = verify_with(&dir, Some(&scenarios));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "scenario {} (SHA-256 {}) differs from {}",
            file.display(),
            evidence::sha256(lax.as_bytes()),
            file.display()
        )),
        "{text}"
    );

    // A report from before format 3 is marked, not failed.
    let old = k.tmp.path().join("old");
    let mut f = fixture();
    f.chain = None;
    evidence::append(&old, &mut f, Some(&signer)).unwrap();
    let (code, text) = verify_with(&old, None);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("targets not re-derivable (format < 3)"),
        "{text}"
    );
}

/// Builds before this one wrote the report format's number into the index (1, then 2); such a
/// directory is still extended.
#[test]
fn an_index_written_by_an_older_build_is_still_extended() {
    let k = Keyring::new();
    let signer = k.signer();
    let mut r = fixture();
    evidence::append(&k.dir, &mut r, Some(&signer)).unwrap();
    let path = k.dir.join("index.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"format_version\": 1"), "{text}");
    std::fs::write(
        &path,
        text.replace("\"format_version\": 1", "\"format_version\": 2"),
    )
    .unwrap();
    let mut r = fixture();
    r.run_id = "second".into();
    evidence::append(&k.dir, &mut r, Some(&signer)).unwrap();
    assert_eq!(r.chain.unwrap().sequence, 2);
}
