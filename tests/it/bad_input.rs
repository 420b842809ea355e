//! Broken scenarios: each gives clear errors naming file:line:column and key, never a panic.
//! The messages are snapshot-tested: a change to what users read is a reviewed change.

use std::path::Path;
use std::time::Instant;

use firedrill::scenario;

use crate::repo;

fn render(path: &Path) -> String {
    let err = scenario::load(path).expect_err("a broken scenario must not load");
    // Paths relative to the repository, so snapshots do not depend on where it is checked out.
    err.to_string()
        .replace(&format!("{}/", env!("CARGO_MANIFEST_DIR")), "")
}

#[test]
fn every_corpus_file_fails_with_located_snapshotted_messages() {
    let dir = repo("tests/corpus/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 12, "the corpus is there: {files:?}");
    for f in files {
        let started = Instant::now();
        let message = render(&f);
        assert!(
            started.elapsed().as_secs() < 2,
            "{} took {:?}",
            f.display(),
            started.elapsed()
        );
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        for line in message.lines() {
            assert!(
                line.starts_with("tests/corpus/bad/"),
                "{name}: every line names the file: {line}"
            );
        }
        insta::assert_snapshot!(name, message);
    }
}

#[test]
fn a_50_mb_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(50 * 1024 * 1024).unwrap();
    let started = Instant::now();
    let message = scenario::load(&path).unwrap_err().to_string();
    assert!(started.elapsed().as_millis() < 500);
    assert_eq!(
        message.replace(&dir.path().display().to_string(), "DIR"),
        "DIR/huge.yaml: file is 50.0 MiB; scenario files are limited to 1024 KiB"
    );
}

#[test]
fn missing_and_non_utf8_files_are_named() {
    let message = scenario::load(Path::new("no/such/drill.yaml"))
        .unwrap_err()
        .to_string();
    assert_eq!(message, "no/such/drill.yaml: no such file");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.yaml");
    std::fs::write(&path, b"name: caf\xe9\n").unwrap();
    let message = scenario::load(&path).unwrap_err().to_string();
    assert!(
        message.ends_with("latin1.yaml: not UTF-8 text (invalid byte at offset 9)"),
        "{message}"
    );
}

#[test]
fn shipped_scenarios_are_valid() {
    for f in std::fs::read_dir(repo("scenarios")).unwrap() {
        let f = f.unwrap().path();
        scenario::load(&f).unwrap_or_else(|e| panic!("{e}"));
    }
}
