//! Signatures checked by the independent verifier, OpenSSH's `ssh-keygen -Y verify`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use firedrill::signing::{self, Signer};

/// `ssh-keygen -Y verify` over `msg`; true when it accepts.
fn ssh_keygen_accepts(allowed: &Path, identity: &str, sig: &Path, msg: &[u8]) -> bool {
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", identity, "-n", signing::NAMESPACE, "-s"])
        .arg(sig)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh-keygen is installed");
    // ssh-keygen may refuse before reading its input: a broken pipe is its answer, not ours.
    let _ = child.stdin.take().unwrap().write_all(msg);
    child.wait().unwrap().success()
}

/// `ssh-keygen -Y verify` of `file` against `file.sig`.
pub fn ssh_keygen_verify(allowed: &Path, identity: &str, file: &Path) -> Result<(), String> {
    let msg = std::fs::read(file).map_err(|e| e.to_string())?;
    let sig = Path::new(&format!("{}.sig", file.display())).to_path_buf();
    if ssh_keygen_accepts(allowed, identity, &sig, &msg) {
        Ok(())
    } else {
        Err(format!("ssh-keygen refused {}", file.display()))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    allowed: std::path::PathBuf,
    signers: Vec<signing::AllowedSigner>,
    msg: Vec<u8>,
    armored: String,
}

/// A real drill report (the committed fixture) signed with a fresh key.
fn signed_report() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let key_path = dir.join("drill_ed25519");
    let public = signing::keygen(&key_path, "firedrill test").unwrap();
    let allowed = dir.join("allowed_signers");
    std::fs::write(
        &allowed,
        signing::allowed_signers_line("auditor@example", &public) + "\n",
    )
    .unwrap();
    let signers = signing::read_allowed_signers(&allowed).unwrap();
    let msg = std::fs::read(crate::repo("tests/fixtures/report-pass.json")).unwrap();
    let armored = Signer::load(&key_path).unwrap().sign(&msg).unwrap();
    Fixture {
        _dir: tmp,
        dir,
        allowed,
        signers,
        msg,
        armored,
    }
}

impl Fixture {
    fn firedrill_accepts(&self, content: &[u8], armored: &str) -> bool {
        signing::verify(&self.signers, content, armored).is_ok()
    }

    fn ssh_keygen_accepts(&self, content: &[u8], armored: impl AsRef<[u8]>) -> bool {
        let path = self.dir.join(format!("{}.sig", std::process::id()));
        std::fs::write(&path, armored).unwrap();
        ssh_keygen_accepts(&self.allowed, "auditor@example", &path, content)
    }
}

/// `b` changed to a different byte.
fn flip(bytes: &[u8], at: usize, mask: u8) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at] ^= mask;
    v
}

#[test]
fn a_signed_report_is_accepted_by_ssh_keygen_and_firedrill() {
    let f = signed_report();
    assert!(f.ssh_keygen_accepts(&f.msg, &f.armored));
    assert_eq!(
        signing::verify(&f.signers, &f.msg, &f.armored).unwrap(),
        "auditor@example"
    );
    use std::os::unix::fs::PermissionsExt;
    let key = f.dir.join("drill_ed25519");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(matches!(
        signing::keygen(&key, "again"),
        Err(signing::SigningError::Exists { .. })
    ));
}

/// Every byte of the signature file, changed, makes both verifiers refuse.
#[test]
fn every_byte_of_the_signature_file_matters_to_both_verifiers() {
    // Hundreds of ssh-keygen processes: not while a drill measures time.
    let _x = crate::shared();
    let f = signed_report();
    let sig = f.armored.as_bytes();
    for at in 0..sig.len() {
        let mask = (at % 255) as u8 + 1;
        let bad = flip(sig, at, mask);
        // `firedrill verify` reads the file as text: invalid UTF-8 is refused before parsing.
        let firedrill =
            String::from_utf8(bad.clone()).is_ok_and(|text| f.firedrill_accepts(&f.msg, &text));
        assert!(
            !firedrill,
            "firedrill accepted signature byte {at} ^ {mask:#x}"
        );
        assert!(
            !f.ssh_keygen_accepts(&f.msg, &bad),
            "ssh-keygen accepted signature byte {at} ^ {mask:#x}"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
    /// Any byte of the report, changed to any other value: firedrill refuses.
    #[test]
    fn any_changed_report_byte_is_refused_by_firedrill(at in 0usize..100_000, mask in 1u8..=255) {
        // Ed25519 over 20 KiB, unoptimized, 400 times: a core's worth of work.
        let _x = crate::shared();
        let f = fixture_once();
        let at = at % f.msg.len();
        proptest::prop_assert!(!f.firedrill_accepts(&flip(&f.msg, at, mask), &f.armored));
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(40))]
    /// The same property for the independent verifier (a process per case, so fewer cases).
    #[test]
    fn any_changed_report_byte_is_refused_by_ssh_keygen(at in 0usize..100_000, mask in 1u8..=255) {
        let _x = crate::shared();
        let f = fixture_once();
        let at = at % f.msg.len();
        proptest::prop_assert!(!f.ssh_keygen_accepts(&flip(&f.msg, at, mask), &f.armored));
    }
}

/// One key and signature for all property cases.
fn fixture_once() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(signed_report)
}

#[test]
fn a_key_not_in_allowed_signers_is_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let pub_a = signing::keygen(&a, "a").unwrap();
    signing::keygen(&b, "b").unwrap();
    let allowed = dir.path().join("allowed");
    std::fs::write(&allowed, signing::allowed_signers_line("a@x", &pub_a)).unwrap();
    let armored = Signer::load(&b).unwrap().sign(b"report").unwrap();
    let err = signing::verify(
        &signing::read_allowed_signers(&allowed).unwrap(),
        b"report",
        &armored,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("signed by SHA256:")
            && err.ends_with("which is not in the allowed signers"),
        "{err}"
    );
}

/// The other direction: a signature OpenSSH made, over a report, verifies in firedrill.
#[test]
fn firedrill_accepts_a_signature_made_by_ssh_keygen() {
    let f = signed_report();
    let report = f.dir.join("report.json");
    std::fs::write(&report, &f.msg).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-q", "-n", signing::NAMESPACE, "-f"])
        .arg(f.dir.join("drill_ed25519"))
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let armored = std::fs::read_to_string(f.dir.join("report.json.sig")).unwrap();
    assert_eq!(
        signing::verify(&f.signers, &f.msg, &armored).unwrap(),
        "auditor@example"
    );
}
