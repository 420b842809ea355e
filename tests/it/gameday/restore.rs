//! The restore game day: a table dropped under live writes, restored by the test as the
//! operator, by point-in-time recovery from what the game day's instruction shows.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::{WITHIN_MS, apart_ms, step, wall};

/// The value after `before` in `text`, up to the next whitespace (or `end`).
fn after<'t>(text: &'t str, before: &str, end: char) -> &'t str {
    let rest = text
        .split(before)
        .nth(1)
        .unwrap_or_else(|| panic!("no {before:?} in:\n{text}"));
    rest.split([end, '\n']).next().unwrap()
}

fn sh(script: &str) -> String {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_dropped_table_restored_by_point_in_time_recovery_as_the_game_day_shows() {
    let _x = crate::exclusive();
    let dir = tempfile::tempdir().unwrap();
    // The scratch cluster is PostgreSQL's: its user must reach it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("out");
    let scratch = dir.path().join("pitr");
    let file = crate::repo("scenarios/gameday-restore-under-pressure.yaml");
    let (mut run, run_id) = super::start(&state, &file, &out);
    run.wait_for("recovery_target_action");
    let shown = run.wait_for_line("pg_ctl -D /tmp/pitr-orders -w stop");
    let _ = shown;
    let text = run.seen_lines().join("\n");
    // Everything the operator needs is in the instruction, filled in.
    let dropped_at = after(&text, "recovery_target_time = '", '\'').to_owned();
    let port = after(&text, "psql -h 127.0.0.1 -p ", ' ').to_owned();
    let archive = after(&text, "wait until that file is in ", ' ').to_owned();
    let base = after(&text, "cp -a ", ' ').to_owned();
    let bin = after(&text, "su postgres -c '", ' ')
        .trim_end_matches("/pg_ctl")
        .to_owned();
    assert!(
        text.contains(&format!("orders was dropped at {dropped_at}")),
        "{text}"
    );

    let ack = SystemTime::now();
    let (code, said) = step(&state, &["ack", "--run", &run_id, "--operator", "fran"]);
    assert_eq!(code, 0, "{said}");
    let psql = format!("psql -h 127.0.0.1 -p {port} -U firedrill -d postgres -Atc");
    let wal = sh(&format!("{psql} 'select pg_walfile_name(pg_switch_wal())'"));
    let wal = Path::new(&archive).join(wal.trim());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wal.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never archived",
            wal.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let s = scratch.display();
    sh(&format!(
        "cp -a {base} {s} && chown -R postgres: {s} && chmod 700 {s}"
    ));
    let conf = format!(
        "port = 54329\nlisten_addresses = ''\nunix_socket_directories = '{s}'\n\
         archive_mode = off\nrestore_command = 'cp {archive}/%f %p'\n\
         recovery_target_time = '{dropped_at}'\nrecovery_target_action = 'promote'\n"
    );
    let mut auto = std::fs::read_to_string(scratch.join("postgresql.auto.conf")).unwrap();
    auto.push_str(&conf);
    std::fs::write(scratch.join("postgresql.auto.conf"), auto).unwrap();
    sh(&format!(
        "touch {s}/recovery.signal && chown postgres: {s}/recovery.signal"
    ));
    sh(&format!(
        "su postgres -c '{bin}/pg_ctl -D {s} -l {s}/startup.log -w start'"
    ));
    sh(&format!(
        "pg_dump -h {s} -p 54329 -U firedrill -t orders postgres | psql -q -h 127.0.0.1 -p {port} -U firedrill -d postgres"
    ));
    let imported = SystemTime::now();
    // The test's own count of what came back, against the seed it knows.
    let expected_sum: i64 = (1..=5000i64).map(|g| g % 7 + 1).sum();
    let got = sh(&format!("{psql} 'select count(*), sum(qty) from orders'"));
    assert_eq!(got.trim(), format!("5000|{expected_sum}"));
    sh(&format!("su postgres -c '{bin}/pg_ctl -D {s} -w stop'"));
    let log = std::fs::read_to_string(format!("{s}/startup.log")).unwrap();
    assert!(log.contains("recovery stopping before commit"), "{log}");
    let done = SystemTime::now();
    let (code, said) = step(&state, &["done", "--run", &run_id, "--operator", "fran"]);
    assert_eq!(code, 0, "{said}");
    let (code, _, lines) = run.finish();
    assert_eq!(code, 0, "{}", lines.join("\n"));

    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["verdict"], "pass", "{report:#}");
    let manual = &report["measurements"]["steps"][2];
    assert_eq!(manual["outcome"], "done");
    assert_eq!(manual["acknowledged_by"], "fran");
    let f = |k: &str| {
        manual[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k}: {manual:#}"))
    };
    let a = apart_ms(wall(&report, f("acknowledged_ms")), ack);
    assert!(
        a <= WITHIN_MS,
        "acknowledged {a:.1} ms from when the test did"
    );
    // The rows were back when the import returned: firedrill saw them within its asking pace.
    let seen = wall(&report, f("condition_ms"));
    assert!(
        seen + Duration::from_millis(50) >= imported - Duration::from_secs(1)
            && seen <= imported + Duration::from_millis(500),
        "rows seen back {:.1} ms from the import's end",
        apart_ms(seen, imported)
    );
    // Said done after firedrill saw it: still recorded, on the step it belongs to.
    let d = apart_ms(wall(&report, f("done_ms")), done);
    assert!(d <= WITHIN_MS, "done {d:.1} ms from when the test said it");
    eprintln!(
        "restore game day: step {:.0} ms; acknowledged {a:.1} ms, done {d:.1} ms from the \
         test's times; rows seen back {:.1} ms from the import's end",
        f("duration_ms"),
        apart_ms(seen, imported)
    );
    assert_eq!(report["measurements"]["steps"][3]["outcome"], "done");
}
