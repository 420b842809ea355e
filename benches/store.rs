//! `cargo bench --bench store`: `firedrill verify s3://...` over a bucket of 10,000 small
//! objects on moto server, against the same over 1,000 in the same run, as the child's own
//! peak RSS. Target: memory bounded whatever the bucket holds, i.e. the 10x bucket costs no more
//! than the listing it must hold (about 300 bytes a version), not its objects' bodies: each
//! object is streamed to a file of the mirror and read back one report at a time.
//!
//! The objects are ten signed reports appended as a drill would, then report views
//! (`report.md`, 1 KiB each, locked in COMPLIANCE mode) in directories without a report, so
//! every object is listed, its lock read and its body mirrored, and the chain verifies.

use std::process::Command;
use std::time::{Duration, Instant};

use firedrill::report::Report;
use firedrill::signing::{self, Signer};
use firedrill::store::{self, Location};
use firedrill_aws::{Aws, Condition};

#[path = "../tests/it/measure.rs"]
mod measure;

const REPORTS: usize = 10;
/// Objects uploaded at once (moto serves several threads).
const UPLOADERS: usize = 16;

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key");
    let public = signing::keygen(&key, "bench").unwrap();
    let allowed = tmp.path().join("allowed_signers");
    std::fs::write(&allowed, signing::allowed_signers_line("drills", &public)).unwrap();
    let signer = Signer::load(&key).unwrap();
    let base: Report = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report-v3.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let moto = firedrill_aws::moto::Server::start();
    let aws = Aws::from_conf(&moto.conf("us-east-1"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(aws.create_bucket("bench", true)).unwrap();

    let mut figures = Vec::new();
    for objects in [1_000, 10_000] {
        let at = Location::parse(&format!("s3://bench/n{objects}"))
            .unwrap()
            .unwrap();
        let t = Instant::now();
        fill(&rt, &aws, &at, &base, &signer, objects);
        eprintln!(
            "{objects} objects in {at} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let run = measure::run_measured(
            Command::new(env!("CARGO_BIN_EXE_firedrill"))
                .args(["verify", &at.to_string(), "--allowed-signers"])
                .arg(&allowed)
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ENDPOINT_URL", moto.url()),
            Duration::from_secs(1800),
        );
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains(&format!("{REPORTS} reports verified")),
            "{}",
            run.stdout
        );
        println!(
            "verify {at}: {objects} objects, {:.1} s, peak RSS {:.1} MiB (wait4: <= {:.1} MiB)",
            run.wall.as_secs_f64(),
            run.sampled_kib as f64 / 1024.0,
            run.max_rss_kib as f64 / 1024.0,
        );
        figures.push(run.sampled_kib as f64);
    }
    println!(
        "peak RSS, 10,000 objects / 1,000 objects: {:.2}x (bounded: close to 1x, far from 10x)",
        figures[1] / figures[0]
    );
}

/// `objects` objects under `at`: [`REPORTS`] appended reports (six objects each, their claims,
/// the index and its signature), then 1 KiB report views up to the count.
fn fill(
    rt: &tokio::runtime::Runtime,
    aws: &Aws,
    at: &Location,
    base: &Report,
    signer: &Signer,
    objects: usize,
) {
    let until = std::time::SystemTime::now() + Duration::from_secs(86400);
    for i in 0..REPORTS {
        let mut r = base.clone();
        r.run_id = format!("bench-{i}");
        rt.block_on(store::append(
            aws,
            at,
            &mut r,
            Some(signer),
            Duration::from_secs(86400),
        ))
        .unwrap();
    }
    let listed = rt
        .block_on(aws.list_versions(&at.bucket, &format!("{}/", at.prefix)))
        .unwrap()
        .len();
    let views = objects - listed;
    rt.block_on(async {
        // A few tasks at a time, not one per object: this process's peak is the floor of the
        // child's figure (see measure.rs).
        let mut puts = tokio::task::JoinSet::new();
        for n in 0..views {
            if puts.len() >= UPLOADERS {
                puts.join_next().await.unwrap().unwrap();
            }
            let aws = aws.clone();
            let key = at.key(&format!("{:06}-view/report.md", 1000 + n));
            let bucket = at.bucket.clone();
            puts.spawn(async move {
                aws.put_locked(&bucket, &key, vec![b'#'; 1024], until, Condition::Absent)
                    .await
                    .unwrap();
            });
        }
        while let Some(done) = puts.join_next().await {
            done.unwrap();
        }
    });
}
