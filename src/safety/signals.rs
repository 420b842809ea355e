//! Ctrl-C and SIGTERM. The first asks the drill to abort (roll back, tear down, report); the
//! second asks it to hurry: teardown stops waiting for graceful shutdowns, but every rollback
//! is still attempted and recorded in the journal and the report.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

static HURRY: AtomicBool = AtomicBool::new(false);

/// Whether a second interrupt asked to skip waiting.
pub fn hurry() -> bool {
    HURRY.load(Ordering::Relaxed)
}

/// Turns Ctrl-C and SIGTERM into `cancel`; runs until the process ends.
pub async fn watch(cancel: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let mut count = 0;
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        count += 1;
        if count == 1 {
            eprintln!(
                "\ninterrupted: rolling back the fault and tearing down (this takes a few \
                 seconds; interrupt again to skip waiting)"
            );
            let _ = cancel.send(true);
        } else {
            HURRY.store(true, Ordering::Relaxed);
            eprintln!(
                "\ninterrupted again: no more waiting; every rollback is still tried and \
                 recorded, and `firedrill recover` takes back whatever is left"
            );
        }
    }
}
