//! Running things inside a zone: a process spawned from a thread that entered the zone's
//! namespace (a forked child keeps its parent thread's namespace, and this keeps `setns` away
//! from a child that has already dropped root), and a tokio runtime whose one thread lives in
//! the zone, so that every socket a client task opens there is the zone's.

use std::os::fd::AsRawFd;

use crate::error::EnvError;
use crate::netns::netns_path;

/// Moves the calling thread into namespace `ns`.
fn enter(ns: &str) -> Result<(), EnvError> {
    let path = netns_path(ns);
    let f = std::fs::File::open(&path)
        .map_err(EnvError::io(format!("cannot open {}", path.display())))?;
    // SAFETY: setns on a valid descriptor affects only the calling thread's namespaces.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(EnvError::Io {
            what: format!("cannot enter network namespace {ns}"),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Runs `f` on a thread of its own inside namespace `ns` (e.g. to spawn a server there).
pub fn within<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T, EnvError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(ns)?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(EnvError::Database(format!("a thread in {ns} panicked"))))
    })
}

/// A current-thread tokio runtime on a thread inside a zone: tasks spawned on [`handle`] open
/// their connections from the zone. Stops when dropped.
///
/// [`handle`]: ZoneRuntime::handle
pub struct ZoneRuntime {
    pub zone: String,
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ZoneRuntime {
    pub fn start(zone: &str, ns: &str) -> Result<ZoneRuntime, EnvError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let ns_owned = ns.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("zone-{zone}"))
            .spawn(move || {
                let rt = enter(&ns_owned).and_then(|()| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(EnvError::io("cannot start a runtime in the zone"))
                });
                match rt {
                    Ok(rt) => {
                        let _ = tx.send(Ok(rt.handle().clone()));
                        rt.block_on(async {
                            let _ = stopped.await;
                        });
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
            .map_err(EnvError::io("cannot start a zone's thread"))?;
        let handle = rx
            .recv()
            .map_err(|_| EnvError::Database(format!("the thread of zone {zone} died")))??;
        Ok(ZoneRuntime {
            zone: zone.to_owned(),
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for ZoneRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
