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
    child.stdin.take().unwrap().write_all(msg).unwrap();
    child.wait().unwrap().success()
}

#[test]
fn a_signature_is_accepted_by_ssh_keygen_and_any_flipped_byte_is_rejected_by_both() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("drill_ed25519");
    let public = signing::keygen(&key_path, "firedrill test").unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(matches!(
        signing::keygen(&key_path, "again"),
        Err(signing::SigningError::Exists { .. })
    ));

    let allowed = dir.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        signing::allowed_signers_line("auditor@example", &public) + "\n",
    )
    .unwrap();
    let signers = signing::read_allowed_signers(&allowed).unwrap();

    let signer = Signer::load(&key_path).unwrap();
    let msg = br#"{"format_version":1,"verdict":"pass","measurements":{"lost_writes":0}}"#.to_vec();
    let armored = signer.sign(&msg).unwrap();
    let sig_path = dir.path().join("report.json.sig");
    std::fs::write(&sig_path, &armored).unwrap();

    assert!(ssh_keygen_accepts(
        &allowed,
        "auditor@example",
        &sig_path,
        &msg
    ));
    assert_eq!(
        signing::verify(&signers, &msg, &armored).unwrap(),
        "auditor@example"
    );

    let signers = &signers;
    let both_refuse = |content: &[u8], armored: &str, what: &str| {
        let bad_path = dir.path().join("bad.sig");
        std::fs::write(&bad_path, armored).unwrap();
        assert!(
            signing::verify(signers, content, armored).is_err(),
            "firedrill accepted {what}"
        );
        assert!(
            !ssh_keygen_accepts(&allowed, "auditor@example", &bad_path, content),
            "ssh-keygen accepted {what}"
        );
    };
    // The content: one flipped bit and both verifiers refuse.
    for i in (0..msg.len()).step_by(7) {
        let mut bad = msg.clone();
        bad[i] ^= 0x01;
        both_refuse(&bad, &armored, &format!("content byte {i} flipped"));
    }
    // The signature's base64 body: a changed character and both refuse.
    let body_start = armored.find('\n').unwrap() + 1;
    let body_end = armored.rfind("-----END").unwrap();
    for i in (body_start..body_end).step_by(37) {
        let mut chars: Vec<u8> = armored.clone().into_bytes();
        if chars[i] == b'\n' {
            continue;
        }
        chars[i] = if chars[i] == b'A' { b'B' } else { b'A' };
        both_refuse(
            &msg,
            &String::from_utf8(chars).unwrap(),
            &format!("signature char {i} changed"),
        );
    }
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
