//! Evidence chains: one real signed drill, extended through the library's own write path, then
//! checked by `firedrill verify` as an auditor would, intact and tampered with.

use std::path::Path;

use assert_cmd::Command;
use firedrill::evidence;
use firedrill::report::Report;
use firedrill::signing::{self, Signer};

use crate::repo;

fn verify(dir: &Path, allowed: &Path) -> (i32, String, String) {
    let out = Command::cargo_bin("firedrill")
        .unwrap()
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

#[test]
fn verify_accepts_an_intact_chain_and_names_every_kind_of_tampering() {
    let _x = crate::exclusive();
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key");
    let public = signing::keygen(&key, "test").unwrap();
    let allowed = tmp.path().join("allowed_signers");
    std::fs::write(&allowed, signing::allowed_signers_line("drills", &public)).unwrap();
    let chain = tmp.path().join("evidence");

    // Report 1: a real drill, through the command line.
    Command::cargo_bin("firedrill")
        .unwrap()
        .current_dir(repo(""))
        .args(["run", "scenarios/sandbox-failover-sync.yaml", "--evidence"])
        .arg(&chain)
        .arg("--sign-key")
        .arg(&key)
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
    let signer = Signer::load(&key).unwrap();
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
    let (code, stdout, stderr) = verify(&chain, &allowed);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(
        stderr.trim(),
        "problem: 000004-sandbox-failover-sync: target rto claims met (Some(742.0)) but the \
         measurements give missed (Some(99999.0))\n\
         problem: 000004-sandbox-failover-sync: verdict claims Pass but the targets give Fail"
            .replace(
                "742.0",
                &format!("{:?}", first.measurements.rto_ms.unwrap())
            ),
    );

    // Without the liar the chain is intact.
    let honest = tmp.path().join("honest");
    for i in 1..=5u64 {
        let mut r = first.clone();
        r.run_id = format!("honest-{i}");
        evidence::append(&honest, &mut r, Some(&signer)).unwrap();
    }
    let (code, stdout, stderr) = verify(&honest, &allowed);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("5 reports verified: signatures, chain, index and verdicts all hold"),
        "{stdout}"
    );
    let index = std::fs::read_to_string(honest.join("index.json")).unwrap();
    assert_eq!(index.matches("\"sequence\"").count(), 5, "{index}");
    // The index is signed like a report: the auditor's own tool accepts it.
    crate::signing::ssh_keygen_verify(&allowed, "drills", &honest.join("index.json"))
        .expect("ssh-keygen accepts the index signature");

    // The newest report removed: no later report points back at it, the signed index does.
    let newest = tmp.path().join("newest-removed");
    copy_dir(&honest, &newest);
    std::fs::remove_dir_all(newest.join("000005-sandbox-failover-sync")).unwrap();
    let (code, _, stderr) = verify(&newest, &allowed);
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
    let (code, _, stderr) = verify(&newest, &allowed);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("index.json: signature: signature does not match the content"),
        "{stderr}"
    );

    // A report removed from the middle.
    let removed = tmp.path().join("removed");
    std::fs::create_dir_all(&removed).unwrap();
    copy_dir(&honest, &removed);
    std::fs::remove_dir_all(removed.join("000003-sandbox-failover-sync")).unwrap();
    let (code, _, stderr) = verify(&removed, &allowed);
    assert_eq!(code, 1);
    assert!(
        stderr
            .contains("000004-sandbox-failover-sync: sequence 4 follows 2: report(s) 3..3 missing"),
        "{stderr}"
    );

    // A verdict edited by hand: the signature breaks, and so does the next link.
    let edited = tmp.path().join("edited");
    std::fs::create_dir_all(&edited).unwrap();
    copy_dir(&honest, &edited);
    let path = edited.join("000002-sandbox-failover-sync/report.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("\"verdict\": \"pass\"", "\"verdict\": \"fail\"", 1),
    )
    .unwrap();
    let (code, _, stderr) = verify(&edited, &allowed);
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
    let (code, _, stderr) = verify(&honest, &allowed);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("000005-sandbox-failover-sync: signature: no report.json.sig"),
        "{stderr}"
    );
}
