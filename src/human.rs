//! Human output: the live display while a drill runs (a spinner on a terminal, plain timestamped
//! lines otherwise, e.g. under cron or in CI) and the summary printed at the end.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::event::{Event, Phase, Reporter};
use crate::report::Report;

pub struct LiveReporter {
    bar: Option<ProgressBar>,
    phase: Phase,
    last_up: Option<(bool, bool)>,
    /// Put before every line: the instance, when several drills of a fleet share stderr.
    prefix: String,
}

impl LiveReporter {
    /// A spinner when stderr is a terminal, plain lines otherwise.
    pub fn stderr() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .expect("static template"),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        LiveReporter {
            bar,
            phase: Phase::Setup,
            last_up: None,
            prefix: String::new(),
        }
    }

    /// Plain lines prefixed `[name]`: one of several drills running at once (one spinner per
    /// drill would fight over the terminal).
    pub fn member(name: &str) -> Self {
        LiveReporter {
            bar: None,
            phase: Phase::Setup,
            last_up: None,
            prefix: format!("[{name}] "),
        }
    }

    fn line(&self, at: Duration, text: &str) {
        let line = format!("{}[{:>8.3}s] {text}", self.prefix, at.as_secs_f64());
        match &self.bar {
            Some(bar) => bar.println(line),
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }
}

impl Reporter for LiveReporter {
    fn event(&mut self, at: Duration, event: &Event) {
        match event {
            Event::Phase(p) => {
                self.phase = *p;
                if let Some(bar) = &self.bar {
                    bar.set_message(p.label());
                }
                self.line(at, &format!("== {}", p.label()));
            }
            Event::Status {
                write_up,
                read_up,
                acknowledged_writes,
            } => {
                let text = format!(
                    "{}: write probe {}, read probe {}, {acknowledged_writes} writes acknowledged",
                    self.phase.label(),
                    crate::event::up(*write_up),
                    crate::event::up(*read_up)
                );
                match &self.bar {
                    Some(bar) => bar.set_message(text),
                    None => {
                        // Without a terminal, only changes are worth a line.
                        if self.last_up != Some((*write_up, *read_up)) {
                            self.line(at, &text);
                        }
                    }
                }
                self.last_up = Some((*write_up, *read_up));
            }
            Event::StepStarted { instruction, .. } => {
                self.line(at, &format!(">> {}", event.detail()));
                for l in instruction.lines() {
                    self.line(at, &format!("   {l}"));
                }
                if !instruction.is_empty() {
                    self.line(
                        at,
                        "   act: a (acknowledge), d (done), n TEXT (note), abort, each + Enter \
                         here, or `firedrill step ACTION --run RUN_ID` from another shell",
                    );
                }
            }
            Event::StepClock {
                write_up, down_for, ..
            } => {
                // Live only: a terminal shows the clock; plain lines would flood a log.
                if let Some(bar) = &self.bar {
                    let writes = match down_for {
                        Some(d) if !*write_up => {
                            format!("writes DOWN for {}", crate::event::clock(*d))
                        }
                        _ => format!("writes {}", crate::event::up(*write_up)),
                    };
                    bar.set_message(format!("{}  |  {writes}", event.detail()));
                }
            }
            other => self.line(at, &other.detail().to_string()),
        }
    }
}

impl Drop for LiveReporter {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// A reporter that shows nothing: for tests and benchmarks that read the report alone.
pub struct Silent;

impl Reporter for Silent {
    fn event(&mut self, _: Duration, _: &Event) {}
}

/// The end-of-drill summary: verdict, each target, and the key measurements.
pub fn summary(r: &Report) -> String {
    let mut out = String::new();
    let verdict = r.verdict.label();
    let _ = writeln!(out, "{verdict}  {}  (run {})", r.scenario.name, r.run_id);
    let _ = writeln!(out, "target: {}", r.target.description);
    if let Some(reason) = &r.abort_reason {
        let _ = writeln!(out, "aborted: {reason}");
    }
    if !r.targets.is_empty() {
        let _ = writeln!(
            out,
            "\n  {:<22} {:>14} {:>14}  result",
            "target", "limit", "achieved"
        );
        for t in &r.targets {
            let _ = writeln!(
                out,
                "  {:<22} {:>14} {:>14}  {}",
                t.name,
                t.show_limit(),
                t.show_achieved(),
                if t.met { "met" } else { "MISSED" }
            );
        }
    }
    if !r.measurements.steps.is_empty() {
        let _ = writeln!(out);
    }
    for s in &r.measurements.steps {
        let mut line = format!("  step {} {:<10} {}: ", s.number, s.kind, s.title);
        match s.duration_ms {
            Some(d) => {
                let _ = write!(line, "{} in {:.1}s", s.outcome.label(), d / 1000.0);
            }
            None if s.detail.is_empty() => line.push_str(s.outcome.label()),
            None => {
                let _ = write!(line, "{} ({})", s.outcome.label(), s.detail);
            }
        }
        if let Some(w) = s.within_ms {
            let _ = write!(
                line,
                ", target {:.0}s {}",
                w / 1000.0,
                if crate::render::steps::missed(s) {
                    "MISSED"
                } else {
                    "met"
                }
            );
        }
        if let (Some(d), Some(who)) = (s.detection_ms(), &s.acknowledged_by) {
            let _ = write!(line, "; acknowledged after {:.1}s by {who}", d / 1000.0);
        }
        if let Some(d) = s.action_ms() {
            let _ = write!(line, ", acted in {:.1}s more", d / 1000.0);
        }
        if let Some(who) = &s.done_by {
            let _ = write!(line, "; done said by {who}");
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out);
    for (k, v) in crate::render::measurements(r) {
        let _ = writeln!(out, "  {k:<40} {v}");
    }
    let m = &r.measurements;
    if let Some(p) = &m.posture {
        for res in &p.resources {
            for f in &res.findings {
                let _ = writeln!(
                    out,
                    "  {:<5} {} {}: {} ({})",
                    if f.ok { "ok" } else { "SHORT" },
                    res.resource,
                    f.check.name(),
                    f.detail,
                    f.check.controls().join(", ")
                );
            }
        }
    }
    if let Some(p) = &m.patroni {
        for (k, v) in crate::render::patroni_facts(r, p) {
            let _ = writeln!(out, "  {k:<40} {v}");
        }
    }
    for o in &m.write_outages {
        let length = o
            .duration_ms
            .map(|d| format!("{d:.1} ms"))
            .unwrap_or_else(|| "not recovered".into());
        let _ = writeln!(
            out,
            "  {:<40} {length} from t={:.1} ms ({} failed probes)",
            "Write outage", o.start_ms, o.failed_probes
        );
    }
    out
}
