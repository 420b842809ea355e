//! `cargo bench --bench verify`: `firedrill verify` over an evidence directory of 1,000 signed
//! reports, as the library call and as the command an auditor runs (a process, output and all),
//! against the baseline an auditor would otherwise run: `ssh-keygen -Y verify` once per report,
//! measured in the same run. Targets: the whole directory in under 1 s, and at least
//! 10x faster per report than ssh-keygen. Verification here is complete: every signature, the
//! chain, the signed index, every verdict recomputed, and (the reports are format 3, from a
//! real drill) every target re-derived from the embedded scenario and every figure from the
//! probe record. Then the same 1,000 reports in an S3 evidence store on moto server: `verify
//! s3://...` against `verify DIR` of the same reports, and where the bucket's time goes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use firedrill::evidence;
use firedrill::report::Report;
use firedrill::signing::{self, Signer};

const REPORTS: usize = 1000;
/// Reports in the bucket: moto takes about as long for an append as S3 would, and appends do
/// not get cheaper with the chain's length (the index is rewritten each time), so the bucket
/// holds fewer; figures are per report.
const BUCKET_REPORTS: usize = 100;
/// ssh-keygen runs per round (a process each; extrapolated per report).
const SSH_KEYGEN_SAMPLE: usize = 100;

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key");
    let public = signing::keygen(&key, "bench").unwrap();
    let allowed_path = tmp.path().join("allowed_signers");
    std::fs::write(
        &allowed_path,
        signing::allowed_signers_line("drills", &public),
    )
    .unwrap();
    let allowed = signing::read_allowed_signers(&allowed_path).unwrap();
    let signer = Signer::load(&key).unwrap();
    let base: Report = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report-v3.json"))
            .unwrap(),
    )
    .unwrap();

    let dir = tmp.path().join("evidence");
    let t = Instant::now();
    for i in 0..REPORTS {
        let mut r = base.clone();
        r.run_id = format!("bench-{i}");
        evidence::append(&dir, &mut r, Some(&signer)).unwrap();
    }
    eprintln!(
        "wrote {REPORTS} signed reports ({} KiB each) in {:.1} s",
        std::fs::metadata(dir.join("000001-sandbox-failover-sync/report.json"))
            .unwrap()
            .len()
            / 1024,
        t.elapsed().as_secs_f64()
    );

    let mut firedrill_runs = Vec::new();
    let mut command_runs = Vec::new();
    let mut ssh_runs = Vec::new();
    for round in 0..3 {
        let t = Instant::now();
        let v = evidence::verify(&dir, &allowed).unwrap();
        let took = t.elapsed();
        assert!(
            v.problems.is_empty(),
            "{:?}",
            &v.problems[..3.min(v.problems.len())]
        );
        assert_eq!(v.rows.len(), REPORTS);
        firedrill_runs.push(took);

        // The command itself, as an auditor runs it (release binary, built by `cargo bench`).
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .arg("verify")
            .arg(&dir)
            .arg("--allowed-signers")
            .arg(&allowed_path)
            .output()
            .unwrap();
        let command = t.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("{REPORTS} reports verified")),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        command_runs.push(command);

        let t = Instant::now();
        for i in 0..SSH_KEYGEN_SAMPLE {
            let entry = dir.join(format!("{:06}-sandbox-failover-sync", i * 10 + 1));
            assert!(
                ssh_keygen(&allowed_path, &entry),
                "ssh-keygen refused {}",
                entry.display()
            );
        }
        let per = t.elapsed() / SSH_KEYGEN_SAMPLE as u32;
        ssh_runs.push(per);
        eprintln!(
            "round {round}: verify {REPORTS} reports: library {:.0} ms, command {:.0} ms ({:.0} us/report); ssh-keygen {:.0} us/report",
            took.as_secs_f64() * 1e3,
            command.as_secs_f64() * 1e3,
            command.as_secs_f64() * 1e6 / REPORTS as f64,
            per.as_secs_f64() * 1e6
        );
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let fd = median(&mut firedrill_runs);
    let cmd = median(&mut command_runs);
    let ssh = median(&mut ssh_runs);
    let cmd_per = cmd.as_secs_f64() / REPORTS as f64;
    println!(
        "`firedrill verify` on {REPORTS} reports: {:.0} ms = {:.2}x of the 1 s budget (the library call alone: {:.0} ms)",
        cmd.as_secs_f64() * 1e3,
        cmd.as_secs_f64(),
        fd.as_secs_f64() * 1e3
    );
    println!(
        "per report: `firedrill verify` {:.0} us, ssh-keygen -Y verify {:.0} us: firedrill is {:.1}x faster (target >= 10x)",
        cmd_per * 1e6,
        ssh.as_secs_f64() * 1e6,
        ssh.as_secs_f64() / cmd_per
    );
    from_the_bucket(&base, &signer, &allowed_path, cmd);
}

/// The same reports in a bucket with Object Lock on moto server: the command from the bucket
/// against the command on a directory, and the bucket's share (listing, a lock read and a
/// download per object) measured apart.
fn from_the_bucket(base: &Report, signer: &Signer, allowed_path: &Path, local: Duration) {
    use firedrill::store::{self, Location};
    let moto = firedrill_aws::moto::Server::start();
    let aws = firedrill_aws::Aws::from_conf(&moto.conf("us-east-1"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(aws.create_bucket("bench", true)).unwrap();
    let at = Location::parse("s3://bench/evidence").unwrap().unwrap();
    let t = Instant::now();
    for i in 0..BUCKET_REPORTS {
        let mut r = base.clone();
        r.run_id = format!("bench-{i}");
        rt.block_on(store::append(
            &aws,
            &at,
            &mut r,
            Some(signer),
            Duration::from_secs(86400),
        ))
        .unwrap();
    }
    eprintln!(
        "appended {BUCKET_REPORTS} reports to the bucket in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mirror = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let problems = rt
        .block_on(store::mirror(&aws, &at, mirror.path()))
        .unwrap();
    let fetched = t.elapsed();
    assert!(
        problems.is_empty(),
        "{:?}",
        &problems[..3.min(problems.len())]
    );
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .args(["verify", "s3://bench/evidence", "--allowed-signers"])
            .arg(allowed_path)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", moto.url())
            .output()
            .unwrap();
        runs.push(t.elapsed());
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .contains(&format!("{BUCKET_REPORTS} reports verified")),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    runs.sort();
    let s3 = runs[1];
    let per = |d: Duration, n: usize| d.as_secs_f64() * 1e3 / n as f64;
    println!(
        "`firedrill verify s3://...`: {:.2} ms per report ({BUCKET_REPORTS} reports, {:.1} s) = \
         {:.1}x `verify DIR` ({:.3} ms per report); reading the bucket alone (list versions, a \
         lock read and a download of each of its {} objects) {:.2} ms per report",
        per(s3, BUCKET_REPORTS),
        s3.as_secs_f64(),
        per(s3, BUCKET_REPORTS) / per(local, REPORTS),
        per(local, REPORTS),
        walk(mirror.path()),
        per(fetched, BUCKET_REPORTS)
    );
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

fn ssh_keygen(allowed: &Path, entry: &Path) -> bool {
    let msg = std::fs::read(entry.join("report.json")).unwrap();
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", "drills", "-n", signing::NAMESPACE, "-s"])
        .arg(entry.join("report.json.sig"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(&msg);
    child.wait().unwrap().success()
}
