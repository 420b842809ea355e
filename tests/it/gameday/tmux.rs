//! The manual failover at a real terminal: tmux runs the game day, the test reads the screen
//! with `capture-pane` and types what an operator would, and promotes in a second pane.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::{Acted, SCENARIO, check_times, port_in};

/// tmux, driven as a person at a terminal would: what the screen shows, and keys.
struct Tmux {
    session: String,
}

impl Tmux {
    fn run(args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux is installed");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self, pane: &str) -> String {
        Tmux::run(&["capture-pane", "-p", "-J", "-t", pane])
    }

    /// Polls the screen until it shows `text`.
    fn wait_for(&self, pane: &str, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let s = self.screen(pane);
            if s.contains(text) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {text:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `line` and Enter; returns when it was sent.
    fn type_line(&self, pane: &str, line: &str) -> SystemTime {
        let at = SystemTime::now();
        Tmux::run(&["send-keys", "-t", pane, "-l", line]);
        Tmux::run(&["send-keys", "-t", pane, "Enter"]);
        at
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

#[test]
fn manual_failover_at_a_terminal_under_tmux() {
    let _x = crate::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("out");
    let exit = dir.path().join("exit");
    let file = crate::repo(SCENARIO);
    let command = format!(
        "env FIREDRILL_STATE_DIR={} FIREDRILL_TEMPLATE_DIR={} {} run {} --out {} --operator erin; \
         echo $? > {}; sleep 60",
        state.display(),
        crate::test_templates().display(),
        crate::firedrill_bin().display(),
        file.display(),
        out.display(),
        exit.display()
    );
    let tmux = Tmux {
        session: format!("firedrill-gameday-{}", std::process::id()),
    };
    Tmux::run(&[
        "new-session",
        "-d",
        "-s",
        &tmux.session,
        "-x",
        "220",
        "-y",
        "60",
        &command,
    ]);
    let pane = Tmux::run(&["display-message", "-p", "-t", &tmux.session, "#{pane_id}"])
        .trim()
        .to_owned();

    let screen = tmux.wait_for(&pane, "pg_promote()");
    assert!(
        screen.contains("step 3/4: promote the standby by hand (within 5m)"),
        "{screen}"
    );
    let port = port_in(screen.lines().find(|l| l.contains("pg_promote()")).unwrap());
    // The step's clock runs against its target on the screen.
    tmux.wait_for(&pane, "of 5:00");

    std::thread::sleep(Duration::from_millis(300));
    let ack = tmux.type_line(&pane, "a");
    tmux.wait_for(&pane, "erin: ack step 3");
    // The promotion, in a second pane, as the operator would run it.
    let promoted_file = dir.path().join("promoted");
    let promote_at = SystemTime::now();
    let psql = format!(
        "psql -h 127.0.0.1 -p {port} -U firedrill -d postgres -Atc 'select pg_promote()' > {}",
        promoted_file.display()
    );
    Tmux::run(&["split-window", "-t", &tmux.session, &psql]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&promoted_file).map_or(true, |s| s.trim() != "t") {
        assert!(Instant::now() < deadline, "the promotion never finished");
        std::thread::sleep(Duration::from_millis(10));
    }
    let promoted = (promote_at, SystemTime::now());
    let text = "writes are back on standby1";
    let note_at = tmux.type_line(&pane, &format!("n {text}"));
    let done = tmux.type_line(&pane, "d");

    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Ok(c) = std::fs::read_to_string(&exit)
            && !c.trim().is_empty()
        {
            break c.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "{}", tmux.screen(&pane));
        std::thread::sleep(Duration::from_millis(100));
    };
    let screen = tmux.screen(&pane);
    assert_eq!(code, "0", "{screen}");
    assert!(screen.contains("PASS  gameday-manual-failover"), "{screen}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    check_times(
        &report,
        &Acted {
            operator: "erin",
            ack,
            promoted,
            note: (note_at, text),
            done,
        },
    );
}
