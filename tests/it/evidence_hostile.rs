//! A local evidence directory shaped by someone else: links out of it, endless and oversized
//! files. (A hostile bucket is in `evidence_s3`.)

use std::path::Path;

use firedrill::evidence;
use firedrill::report::Report;

use crate::evidence::Keyring;

/// An evidence directory is shaped by whoever wrote it. Its index linked to an endless file
/// (`/dev/zero`), a signature and a report moved out and linked back (they would verify if
/// followed), a report directory that is a link, and a report grown to 2 GB (sparse): `verify`
/// names each, reads none, and ends at once in bounded memory. (Before, the linked index made
/// it read 13.8 GB in 30 s and never finish.)
#[test]
fn links_out_of_an_evidence_directory_and_endless_files_are_refused_in_bounded_memory() {
    let k = Keyring::new();
    let dir = &k.tmp.path().join("evidence");
    let signer = k.signer();
    for i in 1..=5 {
        let mut r: Report = serde_json::from_slice(
            &std::fs::read(crate::repo("tests/fixtures/report-pass.json")).unwrap(),
        )
        .unwrap();
        r.run_id = format!("run-{i}");
        evidence::append(dir, &mut r, Some(&signer)).unwrap();
    }
    let measure = || {
        crate::run_measured(
            crate::firedrill_process()
                .arg("verify")
                .arg(dir)
                .arg("--allowed-signers")
                .arg(&k.allowed),
            std::time::Duration::from_secs(60),
        )
    };
    let intact = measure();
    assert_eq!(intact.code, 0, "{}{}", intact.stdout, intact.stderr);
    let outside = k.tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let entry = |n: u32| dir.join(format!("{n:06}-sandbox-failover-sync"));
    let link_out = |inside: &Path, name: &str| {
        std::fs::rename(inside, outside.join(name)).unwrap();
        std::os::unix::fs::symlink(outside.join(name), inside).unwrap();
    };
    std::fs::remove_file(dir.join("index.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("index.json")).unwrap();
    link_out(&entry(1).join("report.json.sig"), "1.sig");
    link_out(&entry(2).join("report.json"), "2.json");
    link_out(&entry(3), "3");
    // A report whose scenario name holds a terminal escape (its signature fails; its row is
    // still shown).
    let fifth = entry(5).join("report.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&fifth).unwrap()).unwrap();
    json["scenario"]["name"] = "x\u{1b}[2J".into();
    std::fs::write(&fifth, serde_json::to_vec(&json).unwrap()).unwrap();
    // A directory holding a report under a name that is not a report directory's, with a
    // terminal escape in it.
    let odd = dir.join("copy\u{1b}[2J");
    std::fs::create_dir(&odd).unwrap();
    std::fs::copy(entry(4).join("report.json"), odd.join("report.json")).unwrap();
    std::fs::File::options()
        .write(true)
        .open(entry(4).join("report.json"))
        .unwrap()
        .set_len(2 << 30)
        .unwrap();

    let run = measure();
    let text = format!("{}{}", run.stdout, run.stderr);
    println!(
        "verify: intact {:.0} ms, peak RSS {} KiB (wait4: <= {}); hostile: exit {}, {:.0} ms, \
         peak RSS {} KiB (wait4: <= {})",
        intact.wall.as_secs_f64() * 1000.0,
        intact.sampled_kib,
        intact.max_rss_kib,
        run.code,
        run.wall.as_secs_f64() * 1000.0,
        run.sampled_kib,
        run.max_rss_kib
    );
    println!("{text}");
    assert_eq!(run.code, 1, "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("000005-sandbox-failover-sync") && l.contains(" x\\u{1b}[2J ")),
        "{text}"
    );
    let refused = "refused: a symbolic link, not followed";
    for named in [
        format!("problem: index.json: {refused}"),
        format!(
            "problem: 000001-sandbox-failover-sync: signature: unreadable report.json.sig: {refused}"
        ),
        format!("problem: 000002-sandbox-failover-sync/report.json: {refused}"),
        format!(
            "problem: 000003-sandbox-failover-sync: refused: a symbolic link (evidence is read only \
             from inside {})",
            dir.display()
        ),
        "problem: 000004-sandbox-failover-sync/report.json: refused: 2147483648 bytes, over the \
         33554432-byte limit of evidence"
            .to_owned(),
        "problem: copy\\u{1b}[2J: refused: holds a report.json but is not a report directory's \
         name (NNNNNN-SCENARIO)"
            .to_owned(),
    ] {
        assert!(text.lines().any(|l| l == named), "{named}\nnot in:\n{text}");
    }
    // Bounded: no more than the intact directory's verify, measured in this run, and a margin
    // far below what reading any of the refused files would take; by either figure.
    run.assert_within(&intact, 16 * 1024);
}
