//! Report signatures an auditor can check without trusting firedrill: OpenSSH Ed25519 keys and
//! SSH signatures (SSHSIG), verifiable with `ssh-keygen -Y verify -n firedrill-report`.
//!
//! This module only makes keys, signs bytes and checks signatures; which bytes are signed (the
//! report file exactly as written) is the caller's business.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// The SSHSIG namespace: a signature made for a report cannot pass as one for anything else.
pub const NAMESPACE: &str = "firedrill-report";

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("{path}: already exists; firedrill never overwrites a key (move it away first)")]
    Exists { path: PathBuf },
    #[error("{path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Signature(String),
}

/// A new key pair: `path` (private, mode 0600) and `path.pub`. Refuses to overwrite either.
/// Returns the public key.
pub fn keygen(path: &Path, comment: &str) -> Result<PublicKey, SigningError> {
    let public_path = pub_path(path);
    for p in [path, public_path.as_path()] {
        if p.exists() {
            return Err(SigningError::Exists { path: p.to_owned() });
        }
    }
    let mut key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)
        .map_err(|e| key_error(path, e))?;
    key.set_comment(comment);
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| key_error(path, e))?;
    // create_new + mode 0600: the private key is never readable by others, not even briefly.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| SigningError::Io {
            path: path.to_owned(),
            source,
        })?;
    file.write_all(pem.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|source| SigningError::Io {
            path: path.to_owned(),
            source,
        })?;
    let public = key.public_key().clone();
    let line = public.to_openssh().map_err(|e| key_error(path, e))?;
    std::fs::write(&public_path, format!("{line}\n")).map_err(|source| SigningError::Io {
        path: public_path,
        source,
    })?;
    Ok(public)
}

pub fn pub_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// A loaded signing key. Its `Debug` shows only the fingerprint.
pub struct Signer {
    key: PrivateKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.fingerprint())
    }
}

impl Signer {
    pub fn load(path: &Path) -> Result<Signer, SigningError> {
        let text = std::fs::read_to_string(path).map_err(|source| SigningError::Io {
            path: path.to_owned(),
            source,
        })?;
        let key = PrivateKey::from_openssh(text).map_err(|e| key_error(path, e))?;
        if key.is_encrypted() {
            return Err(SigningError::Key {
                path: path.to_owned(),
                reason: "the key is passphrase-protected; firedrill signs unattended and needs an \
                         unencrypted key kept with mode 0600"
                    .into(),
            });
        }
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(SigningError::Key {
                path: path.to_owned(),
                reason: format!("{} key; firedrill signs with Ed25519", key.algorithm()),
            });
        }
        Ok(Signer { key })
    }

    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// An armored SSH signature (`-----BEGIN SSH SIGNATURE-----`) over `msg`, without the
    /// trailing newline OpenSSH writes: ssh-keygen ignores whatever follows the END line, so
    /// with it the file would hold one byte that nobody checks.
    pub fn sign(&self, msg: &[u8]) -> Result<String, SigningError> {
        self.key
            .sign(NAMESPACE, HashAlg::Sha512, msg)
            .and_then(|sig| sig.to_pem(LineEnding::LF))
            .map(|pem| pem.trim_end().to_owned())
            .map_err(|e| SigningError::Signature(format!("signing failed: {e}")))
    }
}

/// Checks an armored signature over `msg` against the keys of an OpenSSH `allowed_signers` file
/// whose namespaces admit [`NAMESPACE`]. Returns the principal that matched.
pub fn verify(
    allowed: &[AllowedSigner],
    msg: &[u8],
    armored: &str,
) -> Result<String, SigningError> {
    let sig = SshSig::from_pem(armored)
        .map_err(|e| SigningError::Signature(format!("unreadable signature: {e}")))?;
    // The ssh-key decoder ignores a length prefix it does not need (ssh-encoding 0.2's
    // `read_prefixed` never checks the nested length), so an altered signature file can still
    // parse. Only the canonical encoding of what was parsed counts, as OpenSSH writes it.
    let canonical = sig
        .to_pem(ssh_key::LineEnding::LF)
        .map_err(|e| SigningError::Signature(format!("unreadable signature: {e}")))?;
    if armored.replace("\r\n", "\n").trim_end() != canonical.trim_end() {
        return Err(SigningError::Signature(
            "signature file was altered (not the encoding of the signature it holds)".into(),
        ));
    }
    if sig.namespace() != NAMESPACE {
        return Err(SigningError::Signature(format!(
            "signature is for namespace {:?}, not {NAMESPACE:?}",
            sig.namespace()
        )));
    }
    let signer = PublicKey::from(sig.public_key().clone());
    let Some(entry) = allowed
        .iter()
        .find(|a| a.key.key_data() == signer.key_data())
    else {
        return Err(SigningError::Signature(format!(
            "signed by {}, which is not in the allowed signers",
            signer.fingerprint(HashAlg::Sha256)
        )));
    };
    entry
        .key
        .verify(NAMESPACE, msg, &sig)
        .map_err(|_| SigningError::Signature("signature does not match the content".into()))?;
    Ok(entry.principal.clone())
}

/// One line of an OpenSSH `allowed_signers` file.
#[derive(Clone, Debug)]
pub struct AllowedSigner {
    pub principal: String,
    pub key: PublicKey,
}

/// Reads an `allowed_signers` file (`principal [namespaces="..."] keytype base64 [comment]`),
/// keeping the entries valid for [`NAMESPACE`]. Options other than `namespaces` are ignored.
pub fn read_allowed_signers(path: &Path) -> Result<Vec<AllowedSigner>, SigningError> {
    let text = std::fs::read_to_string(path).map_err(|source| SigningError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: &str| SigningError::Key {
            path: path.to_owned(),
            reason: format!("line {}: {reason}", n + 1),
        };
        let (principal, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("expected `principal [options] key-type base64`"))?;
        let mut rest = rest.trim_start();
        let mut namespaces: Option<String> = None;
        if !rest.starts_with("ssh-") && !rest.starts_with("ecdsa-") && !rest.starts_with("sk-") {
            let (opts, key) = rest
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad("options but no key"))?;
            for opt in opts.split(',') {
                if let Some(v) = opt.strip_prefix("namespaces=") {
                    namespaces = Some(v.trim_matches('"').to_owned());
                }
            }
            rest = key.trim_start();
        }
        if let Some(ns) = &namespaces
            && !ns.split(',').any(|n| n == NAMESPACE || n == "*")
        {
            continue;
        }
        let key = PublicKey::from_openssh(rest).map_err(|e| bad(&format!("bad key: {e}")))?;
        out.push(AllowedSigner {
            principal: principal.to_owned(),
            key,
        });
    }
    Ok(out)
}

/// The `allowed_signers` line an auditor adds for this public key.
pub fn allowed_signers_line(principal: &str, key: &PublicKey) -> String {
    let mut key = key.clone();
    key.set_comment("");
    format!(
        "{principal} namespaces=\"{NAMESPACE}\" {}",
        key.to_openssh().unwrap_or_default()
    )
}

fn key_error(path: &Path, e: ssh_key::Error) -> SigningError {
    SigningError::Key {
        path: path.to_owned(),
        reason: e.to_string().to_lowercase(),
    }
}
