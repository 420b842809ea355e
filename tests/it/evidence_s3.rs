//! The evidence store on S3 with Object Lock, against moto server (which implements versioning,
//! Object Lock in COMPLIANCE mode, refusing to delete a locked version, and create-only writes
//! with `If-None-Match: *`).

use std::path::Path;

use firedrill::report::Report;
use firedrill::signing::{self, Signer};
use firedrill::store::{self, Location};
use firedrill_aws::Aws;
use firedrill_aws::moto::Server;

use crate::aws::MOTO_CREDENTIALS;

/// A year of drills, one a month but for June.
const MONTHS: [u32; 11] = [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12];

fn fixture() -> Report {
    serde_json::from_slice(&std::fs::read(crate::repo("tests/fixtures/report-pass.json")).unwrap())
        .unwrap()
}

/// `firedrill ARGS` with moto's endpoint and credentials in the environment only.
fn firedrill(moto: &Server, args: &[&str]) -> (i32, String) {
    let (code, out, err) = crate::run_to_end(
        crate::firedrill_process()
            .args(args)
            .envs(MOTO_CREDENTIALS)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", moto.url()),
    );
    (code, format!("{out}{err}"))
}

struct Setup {
    moto: Server,
    aws: Aws,
    rt: tokio::runtime::Runtime,
    tmp: tempfile::TempDir,
    allowed: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let moto = Server::start();
        let aws = Aws::from_conf(&moto.conf("us-east-1"));
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            aws.create_bucket("evidence", true).await.unwrap();
            // Versioned but without Object Lock. (A bucket never versioned cannot be asked: moto
            // answers GetBucketVersioning for it with a document S3 does not send, which the
            // SDK refuses to parse.)
            aws.create_bucket("plain", false).await.unwrap();
            aws.enable_versioning("plain").await.unwrap();
        });
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("key");
        let public = signing::keygen(&key, "test").unwrap();
        let allowed = tmp.path().join("allowed_signers");
        std::fs::write(&allowed, signing::allowed_signers_line("drills", &public)).unwrap();
        Setup {
            moto,
            aws,
            rt,
            tmp,
            allowed,
            key,
        }
    }

    fn append(&self, at: &Location, month: u32) -> String {
        let mut r = fixture();
        r.run_id = format!("month-{month}");
        r.started_at = format!("2026-{month:02}-15T02:00:00.000Z");
        let signer = Signer::load(&self.key).unwrap();
        self.rt
            .block_on(store::append(
                &self.aws,
                at,
                &mut r,
                Some(&signer),
                std::time::Duration::from_secs(400 * 86400),
            ))
            .unwrap()
    }

    fn verify(&self, url: &str) -> (i32, String) {
        firedrill(
            &self.moto,
            &[
                "verify",
                url,
                "--allowed-signers",
                self.allowed.to_str().unwrap(),
            ],
        )
    }
}

#[test]
fn a_year_of_reports_in_a_locked_bucket_verifies_and_every_rewrite_is_named() {
    let t = Setup::new();
    let at = Location::parse("s3://evidence/drills").unwrap().unwrap();
    let keys: Vec<String> = MONTHS.iter().map(|m| t.append(&at, *m)).collect();
    assert!(
        keys[0].ends_with("drills/000001-sandbox-failover-sync/report.json"),
        "{keys:?}"
    );

    let (code, text) = t.verify("s3://evidence/drills");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("11 reports verified"), "{text}");

    // Every report and the index, fetched back from the bucket, verify with OpenSSH alone.
    let fetched = t.tmp.path().join("fetched");
    let mut signed: Vec<String> = (1..=MONTHS.len())
        .map(|n| format!("drills/{n:06}-sandbox-failover-sync/report.json"))
        .collect();
    signed.push("drills/index.json".into());
    for key in &signed {
        let dir = fetched.join(key.replace('/', "_"));
        std::fs::create_dir_all(&dir).unwrap();
        let name = key.rsplit('/').next().unwrap();
        for (object, file) in [
            (key.clone(), name.to_owned()),
            (format!("{key}.sig"), format!("{name}.sig")),
        ] {
            let bytes =
                t.rt.block_on(t.aws.get_object("evidence", &object, u64::MAX))
                    .unwrap()
                    .unwrap_or_else(|| panic!("{object} is in the bucket"));
            std::fs::write(dir.join(file), bytes).unwrap();
        }
        crate::signing::ssh_keygen_verify(&t.allowed, "drills", &dir.join(name))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }

    // The period summary from the bucket names the month without a drill.
    let out = t.tmp.path().join("summary");
    let (code, text) = firedrill(
        &t.moto,
        &[
            "evidence",
            "s3://evidence/drills",
            "--from",
            "2026-01-01",
            "--to",
            "2026-12-31",
            "--expect",
            "failover=monthly",
            "--allowed-signers",
            t.allowed.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("MISSING  failover=monthly in 2026-06-01 to 2026-06-30"),
        "{text}"
    );
    assert_eq!(text.matches("MISSING").count(), 1, "{text}");

    // A locked version cannot be deleted, by anyone.
    let versions =
        t.rt.block_on(t.aws.list_versions("evidence", "drills/000002-"))
            .unwrap();
    let report = versions
        .iter()
        .find(|v| v.key.ends_with("/report.json"))
        .unwrap();
    let refused =
        t.rt.block_on(
            t.aws
                .delete_version("evidence", &report.key, &report.version_id),
        )
        .unwrap_err();
    assert!(
        matches!(refused, firedrill_aws::AwsError::AccessDenied { .. }),
        "{refused}"
    );

    // A new version over a report, and a delete marker over another: both named.
    let overwritten = "drills/000003-sandbox-failover-sync/report.json";
    t.rt.block_on(t.aws.put_plain("evidence", overwritten, b"{}".to_vec()))
        .unwrap();
    let deleted = "drills/000005-sandbox-failover-sync/report.json";
    t.rt.block_on(t.aws.delete_object("evidence", deleted))
        .unwrap();
    let (code, text) = t.verify("s3://evidence/drills");
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "s3://evidence/{overwritten}: overwritten (2 versions; evidence is written once)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "s3://evidence/{deleted}: deleted (a delete marker hides it)"
        )),
        "{text}"
    );
}

/// A writer that died between its claim and its report leaves the claim alone in the bucket:
/// `verify` names it (the command `append`'s error sends the user to), and says that an
/// append may still be writing it while the claim is younger than a writer's wait.
#[test]
fn a_claim_without_its_report_is_named_by_verify() {
    let t = Setup::new();
    let at = Location::parse("s3://evidence/drills").unwrap().unwrap();
    t.append(&at, 1);
    let (code, text) = t.verify("s3://evidence/drills");
    assert_eq!(code, 0, "{text}");
    // What a writer killed after its claim leaves.
    t.rt.block_on(t.aws.put_locked(
        "evidence",
        "drills/claims/000002",
        b"000002-sandbox-failover-sync".to_vec(),
        std::time::SystemTime::now() + std::time::Duration::from_secs(86400),
        firedrill_aws::Condition::Absent,
    ))
    .unwrap();
    let (code, text) = t.verify("s3://evidence/drills");
    assert_eq!(code, 1, "{text}");
    let named: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("claims/000002"))
        .collect();
    assert_eq!(named.len(), 1, "{text}");
    assert!(
        named[0].starts_with("problem: s3://evidence/drills/claims/000002: sequence 2 was claimed")
            && named[0].ends_with("(an append may still be writing it)"),
        "{text}"
    );
}

#[test]
fn concurrent_appenders_to_one_bucket_get_distinct_sequences() {
    let t = Setup::new();
    let at = Location::parse("s3://evidence/race").unwrap().unwrap();
    let signer = Signer::load(&t.key).unwrap();
    let sequences = t.rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (aws, at, signer) = (t.aws.clone(), at.clone(), Signer::load(&t.key).unwrap());
            tasks.push(tokio::spawn(async move {
                let mut r = fixture();
                r.run_id = format!("racer-{i}");
                store::append(
                    &aws,
                    &at,
                    &mut r,
                    Some(&signer),
                    std::time::Duration::from_secs(86400),
                )
                .await
                .unwrap();
                r.chain.unwrap().sequence
            }));
        }
        let mut s = Vec::new();
        for task in tasks {
            s.push(task.await.unwrap());
        }
        s.sort();
        s
    });
    drop(signer);
    assert_eq!(sequences, vec![1, 2, 3, 4]);
    let (code, text) = t.verify("s3://evidence/race");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("4 reports verified"), "{text}");
}

/// A versioned bucket without Object Lock is refused before the drill starts: exit 5, one line,
/// no journal; a real drill into a locked bucket verifies from it.
#[test]
fn a_bucket_without_object_lock_is_refused_and_a_real_drill_lands_in_a_locked_one() {
    let _x = crate::shared();
    let t = Setup::new();
    let state = t.tmp.path().join("state");
    let run = |url: &str| {
        crate::run_to_end(
            crate::firedrill_process()
                .args([
                    "run",
                    "scenarios/sandbox-failover-sync.yaml",
                    "--evidence",
                    url,
                ])
                .arg("--sign-key")
                .arg(&t.key)
                .current_dir(crate::repo(""))
                .env("FIREDRILL_STATE_DIR", &state)
                .envs(MOTO_CREDENTIALS)
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ENDPOINT_URL", t.moto.url()),
        )
    };
    let (code, _, stderr) = run("s3://plain/drills");
    assert_eq!(code, 5, "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("s3://plain/drills: the bucket has no Object Lock"),
        "{stderr}"
    );
    assert!(!state.join("journals").exists() || is_empty(&state.join("journals")));
    // A bucket that does not exist is named as such, not as one without Object Lock.
    let (code, _, stderr) = run("s3://no-such-bucket/drills");
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");

    let (code, _, stderr) = run("s3://evidence/real");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "report written to s3://evidence/real/000001-sandbox-failover-sync/report.json"
        ),
        "{stderr}"
    );
    let (code, text) = t.verify("s3://evidence/real");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("1 reports verified"), "{text}");
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

/// Every file and folder under `root`, relative: what a test compares before and after.
fn tree(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().to_owned());
            if path.symlink_metadata().unwrap().is_dir() {
                todo.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Anyone who can write to the evidence bucket can choose its keys: a key that would leave the
/// mirror (an absolute path once the prefix is cut, `..` anywhere), one too long, one with a
/// control character, and an object far larger than a report are each refused and named, and
/// nothing is written outside the mirror folder (the folders around it are listed before and
/// after). The genuine reports beside them still verify.
#[test]
fn hostile_keys_are_named_and_nothing_is_written_outside_the_mirror() {
    let t = Setup::new();
    let at = Location::parse("s3://evidence/drills").unwrap().unwrap();
    t.append(&at, 1);
    t.append(&at, 2);
    // verify's TMPDIR: its mirror is made at mirrors/.tmpXXXXXX, so `../..` from the mirror is
    // this test's folder, where `victim` waits.
    let mirrors = t.tmp.path().join("mirrors");
    let victim = t.tmp.path().join("victim");
    std::fs::create_dir(&mirrors).unwrap();
    std::fs::create_dir(&victim).unwrap();
    let small = b"{\"pwned\": true}\n".to_vec();
    let big_key = "drills/000009-big/report.json";
    let hostile: Vec<(String, &str)> = vec![
        (
            format!("drills/{}", victim.join("absolute").display()),
            "an empty segment",
        ),
        ("drills/../../victim/dotdot".into(), "a `.` or `..` segment"),
        (
            "drills/x/../../../victim/middle".into(),
            "a `.` or `..` segment",
        ),
        (
            "drills/000003-a/../../../victim/report.json".into(),
            "a `.` or `..` segment",
        ),
        (
            format!("drills/000004-{}/report.json", "a".repeat(300)),
            "longer than 256 characters",
        ),
        (
            // A C1 control (CSI: a terminal's escape sequence). C0 controls but tab, newline
            // and carriage return are not XML 1.0: S3 lists such keys URL-encoded when asked
            // (the store asks), moto can neither list them nor store a newline.
            "drills/000005-csi\u{9b}2J/report.json".into(),
            "a character no evidence name uses ('\\u{9b}')",
        ),
        (
            "drills/000006-tab\there/report.json".into(),
            "a character no evidence name uses ('\\t')",
        ),
        (
            "drills/000007-del\u{7f}/report.json".into(),
            "a character no evidence name uses ('\\u{7f}')",
        ),
        (
            "drills/000008-x/evil.sh".into(),
            "evil.sh is not a file a report's directory holds",
        ),
        (big_key.into(), "over the 33554432-byte limit of evidence"),
    ];
    t.rt.block_on(async {
        for (key, _) in &hostile {
            let body = if key == big_key {
                vec![b' '; 33 * 1024 * 1024]
            } else {
                small.clone()
            };
            t.aws
                .put_plain("evidence", key, body)
                .await
                .unwrap_or_else(|e| panic!("{key:?}: {e}"));
        }
    });
    // The keys reached the bucket as written (the client did not normalise them away).
    let listed: Vec<String> =
        t.rt.block_on(t.aws.list_versions("evidence", "drills/"))
            .unwrap()
            .into_iter()
            .map(|v| v.key)
            .collect();
    for (key, _) in &hostile {
        assert!(listed.contains(key), "{key:?} not in {listed:?}");
    }

    let verify = |url: &str| {
        crate::run_to_end(
            crate::firedrill_process()
                .args(["verify", url, "--allowed-signers"])
                .arg(&t.allowed)
                .env("TMPDIR", &mirrors)
                .envs(MOTO_CREDENTIALS)
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ENDPOINT_URL", t.moto.url()),
        )
    };
    let before = tree(t.tmp.path());
    let (code, out, err) = verify("s3://evidence/drills");
    let text = format!("{out}{err}");
    assert_eq!(tree(t.tmp.path()), before, "{text}");
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0, "{text}");
    assert_eq!(code, 1, "{text}");
    for (key, why) in &hostile {
        let named = format!("problem: s3://evidence/{}: refused: ", key.escape_debug());
        let line = text
            .lines()
            .find(|l| l.starts_with(&named))
            .unwrap_or_else(|| panic!("{key:?} is not named:\n{text}"));
        assert!(line.contains(why), "{line}");
    }
    // One line per hostile key and nothing else wrong: the genuine reports verify.
    assert_eq!(
        text.lines().filter(|l| l.starts_with("problem:")).count(),
        hostile.len(),
        "{text}"
    );
    // A writer reads the bucket too (the index, claims, the previous report): an index far
    // larger than any is refused at the limit, naming it, not read whole.
    t.rt.block_on(t.aws.put_plain(
        "evidence",
        "bigindex/index.json",
        vec![b' '; 33 * 1024 * 1024],
    ))
    .unwrap();
    let signer = Signer::load(&t.key).unwrap();
    let refused =
        t.rt.block_on(store::append(
            &t.aws,
            &Location::parse("s3://evidence/bigindex").unwrap().unwrap(),
            &mut fixture(),
            Some(&signer),
            std::time::Duration::from_secs(86400),
        ))
        .unwrap_err()
        .to_string();
    assert_eq!(
        refused,
        "s3://evidence/bigindex/index.json: its body is longer than 33554432 bytes; not read \
         further"
    );

    // A C0 control (ESC) in a key: moto sends it raw in the listing, which XML cannot carry,
    // so the SDK cannot parse the answer (S3 would send it URL-encoded). One short line
    // naming the IAM action, not the raw listing, and exit 4; nothing written.
    t.rt.block_on(t.aws.put_plain(
        "evidence",
        "esc/000001-a\u{1b}[2J/report.json",
        small.clone(),
    ))
    .unwrap();
    let (code, out, err) = verify("s3://evidence/esc");
    assert_eq!(code, 4, "{out}{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("s3:ListBucketVersions"), "{err}");
    assert!(err.len() < 600 && !err.contains('\u{1b}'), "{err}");
    assert_eq!(tree(t.tmp.path()), before);
    for n in 1..=2 {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("00000{n}-sandbox-failover-sync")))
            .unwrap_or_else(|| panic!("report {n} missing:\n{text}"));
        assert!(!row.contains("FAIL"), "{row}");
    }
}

/// A bucket that lies: S3's answers, from its API reference, served by a loopback stand-in
/// (moto neither sends a body longer than its listing nor URL-encodes a version listing). Its
/// listing declares 16 bytes for a report whose body is 100 MiB, and a key with ESC in it,
/// URL-encoded as S3 sends it when asked. The body is cut off at the 32 MiB limit and the file
/// removed, the key decoded and refused, and `verify`'s memory stays that of a truthful
/// bucket's (measured in the same run): the body is streamed to the file, never held.
#[test]
fn a_body_longer_than_its_listing_is_cut_off_and_an_encoded_control_key_refused() {
    use crate::standin::{Response, StandIn};
    let bucket = |body_len: usize| {
        let listing = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult \
             xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>evidence</Name>\
             <Prefix>drills/</Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>\
             <MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType>\
             <IsTruncated>false</IsTruncated>{}{}</ListVersionsResult>",
            version("drills/000001-a/report.json"),
            version("drills/000002-a%1B%5B2J/report.json"),
        );
        StandIn::start(move |r| {
            let (status, body, headers) = if r.method == "HEAD" {
                let headers = vec![
                    ("x-amz-object-lock-mode", "COMPLIANCE".to_owned()),
                    (
                        "x-amz-object-lock-retain-until-date",
                        "2099-01-01T00:00:00.000Z".to_owned(),
                    ),
                    ("x-amz-version-id", "v1".to_owned()),
                ];
                (200, Vec::new(), headers)
            } else if r.path.contains("versions") {
                let xml = ("Content-Type", "application/xml".to_owned());
                (200, listing.clone().into_bytes(), vec![xml])
            } else {
                (200, vec![b' '; body_len], vec![])
            };
            Response {
                status,
                headers,
                body,
            }
        })
    };
    let tmp = tempfile::tempdir().unwrap();
    let mirrors = tmp.path().join("mirrors");
    std::fs::create_dir(&mirrors).unwrap();
    let allowed = tmp.path().join("allowed_signers");
    let public = signing::keygen(&tmp.path().join("key"), "test").unwrap();
    std::fs::write(&allowed, signing::allowed_signers_line("drills", &public)).unwrap();
    let verify = |url: &str| {
        crate::run_measured(
            crate::firedrill_process()
                .args(["verify", "s3://evidence/drills", "--allowed-signers"])
                .arg(&allowed)
                .env("TMPDIR", &mirrors)
                .envs(MOTO_CREDENTIALS)
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ENDPOINT_URL", url),
            std::time::Duration::from_secs(120),
        )
    };
    let truthful = bucket(16);
    let baseline = verify(&truthful.url);
    let lying = bucket(100 << 20);
    let run = verify(&lying.url);
    let text = format!("{}{}", run.stdout, run.stderr);
    println!(
        "verify: truthful bucket peak RSS {} KiB (wait4: <= {}); lying bucket: exit {}, {:.0} \
         ms, peak RSS {} KiB (wait4: <= {})",
        baseline.sampled_kib,
        baseline.max_rss_kib,
        run.code,
        run.wall.as_secs_f64() * 1000.0,
        run.sampled_kib,
        run.max_rss_kib
    );
    assert_eq!(run.code, 1, "{text}");
    assert!(
        text.lines().any(|l| l
            == "problem: s3://evidence/drills/000001-a/report.json: refused: its body is longer \
                than the 33554432-byte limit of evidence (its listing said less); not read \
                further"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l
            == "problem: s3://evidence/drills/000002-a\\u{1b}[2J/report.json: refused: a \
                character no evidence name uses ('\\u{1b}')"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
    // The truthful bucket's report was mirrored and read (not a report: named as such).
    let base = format!("{}{}", baseline.stdout, baseline.stderr);
    assert!(!base.contains("longer than"), "{base}");
    assert_eq!(std::fs::read_dir(&mirrors).unwrap().count(), 0);
    run.assert_within(&baseline, 8 * 1024);
}

/// One `<Version>` of a version listing, 16 bytes, locked, the latest.
fn version(key: &str) -> String {
    format!(
        "<Version><Key>{key}</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest>\
         <LastModified>2026-12-01T00:00:00.000Z</LastModified><ETag>\"0\"</ETag>\
         <Size>16</Size><StorageClass>STANDARD</StorageClass></Version>"
    )
}
