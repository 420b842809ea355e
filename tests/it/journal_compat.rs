//! Journals written by firedrill 0.1, before the layout change (`tests/fixtures/journals/`, made
//! with that release's own `Journal` API; `@DIR@` stands for a directory the test makes), are
//! read and recovered by this build: every undo kind parses and describes itself as before, and
//! the pending effects are undone for real.

use firedrill::safety::journal::Read;
use firedrill_aws::moto::Server;

use crate::aws::MOTO_CREDENTIALS;

/// The fixture `name` with `@DIR@` (and moto's address) filled in, as a journal in `state`.
fn journal(name: &str, dir: &std::path::Path, endpoint: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(crate::repo(&format!("tests/fixtures/journals/{name}")))
        .unwrap()
        .replace("@DIR@", dir.to_str().unwrap())
        .replace("http://127.0.0.1:5999", endpoint);
    let path = dir.join("state/journals").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn recover(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = crate::firedrill_process();
    cmd.arg("recover")
        .args(args)
        .env("FIREDRILL_STATE_DIR", dir.join("state"))
        .envs(MOTO_CREDENTIALS);
    crate::run_to_end(&mut cmd)
}

#[test]
fn a_local_journal_from_0_1_is_read_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let j = journal("journal-0.1-local.jsonl", d, "");
    // The world the journal describes: a sandbox directory with a standby in it.
    std::fs::create_dir_all(d.join("sandbox/standby1")).unwrap();
    std::fs::write(d.join("sandbox/standby1/PG_VERSION"), "15\n").unwrap();

    let read = Read::open(&j).unwrap();
    let pending: Vec<(u64, String)> = read
        .pending()
        .into_iter()
        .map(|(id, _, undo)| (id, undo.describe()))
        .collect();
    let dir_s = d.display();
    assert_eq!(
        pending,
        [
            (5, format!("run touch '{dir_s}/undo ran'")),
            (
                3,
                format!("resume every process in {dir_s}/sandbox/standby1")
            ),
            (
                1,
                format!("stop every process in {dir_s}/sandbox and remove it")
            ),
        ],
        "newest first; effect 2 has no undo, effect 4 was undone by the drill"
    );
    let (code, out, err) = recover(d, &[j.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("recovered: 3 effect(s) undone"), "{out}");
    assert!(
        d.join("undo ran").exists(),
        "the undo command did not run: {out}"
    );
    assert!(
        !d.join("sandbox").exists(),
        "the sandbox is still there: {out}"
    );
    assert!(Read::open(&j).unwrap().pending().is_empty());
    let (code, out, _) = recover(d, &[j.to_str().unwrap()]);
    assert_eq!(
        (code, out.trim()),
        (
            0,
            "nothing to recover: no journal has an effect left to undo"
        )
    );
}

#[test]
fn an_aws_journal_from_0_1_is_read_and_recovered_against_moto() {
    let moto = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let j = journal("journal-0.1-aws.jsonl", d, &moto.url());
    let read = Read::open(&j).unwrap();
    let described: Vec<String> = read
        .pending()
        .into_iter()
        .map(|(_, _, undo)| undo.describe())
        .collect();
    assert_eq!(
        described,
        [
            "delete DB instance firedrill-0a1b2c3d4e5f6071",
            "delete DB snapshot firedrill-0a1b2c3d4e5f6071",
            "stop the running FIS experiments of template EXT1a2b3c tagged with drill 0a1b2c3d4e5f6071",
            "delete FIS experiment template EXT1a2b3c",
        ]
    );
    // Nothing of it exists in moto: each idempotent undo finds it gone, and says so.
    let (code, out, err) = recover(d, &[j.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    for gone in [
        "DB instance firedrill-0a1b2c3d4e5f6071 already gone",
        "DB snapshot firedrill-0a1b2c3d4e5f6071 already gone",
        "no experiment of template EXT1a2b3c still running",
    ] {
        assert!(out.contains(gone), "{gone}: {out}");
    }
    assert!(out.contains("recovered: 4 effect(s) undone"), "{out}");
    assert!(Read::open(&j).unwrap().pending().is_empty());
}
