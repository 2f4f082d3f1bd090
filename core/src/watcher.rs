//! Notices models added to, replaced in or removed from the models folder, and has the
//! registry load them once their files are complete; and plugins added to the plugins
//! folder, after which models that no plugin could serve are tried again.
//!
//! What the events mean on Linux (inotify), measured: `cp` gives Create, Modify(Data)...,
//! then Close(Write); a slow writer keeps writing long after Create; `mv` within one file
//! system gives one Modify(Name(To)); write-to-temp-then-rename ends with the final name.
//! So a file counts as written on Close(Write) or a rename into place, and only after a
//! long quiet time otherwise. Either way it must then keep its size and time over a short
//! interval, and the registry builds it from the bytes it hashed, so a half-written file
//! can fail to load but can never serve.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use log::{debug, info, warn};
use notify::{
    EventKind, RecursiveMode, Watcher,
    event::{AccessKind, AccessMode, ModifyKind, RenameMode},
};
use tokio::sync::mpsc;

use crate::{
    models::{Fingerprint, Registry, model_of},
    plugins::is_library_name,
};

/// How the models folder is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchMode {
    Notify,
    Poll,
    Off,
}

/// Quiet time after an event that says the file is complete (closed after writing, renamed
/// into place, deleted).
const AFTER_DONE: Duration = Duration::from_millis(100);
/// Quiet time after an event that says someone is still writing.
const AFTER_WRITE: Duration = Duration::from_millis(1500);
/// A file must keep its size and time this long before it is loaded.
const STABLE_FOR: Duration = Duration::from_millis(100);

/// Starts watching the models folder (the registry's) in the background.
pub fn spawn(registry: Arc<Registry>, mode: WatchMode, interval: Duration) -> Result<(), notify::Error> {
    match mode {
        WatchMode::Off => info!("not watching the models folder (ML_WATCH=off): POST /models/reload rescans it"),
        WatchMode::Poll => {
            info!(
                "watching {} and {} by polling every {} ms",
                registry.dir().display(),
                registry.plugins_dir().display(),
                interval.as_millis()
            );
            tokio::spawn(poll(registry, interval.max(Duration::from_millis(50))));
        }
        WatchMode::Notify => {
            let (tx, rx) = mpsc::unbounded_channel();
            let mut watcher = notify::recommended_watcher(move |event| {
                // The receiver only goes away when the server stops.
                let _ = tx.send(event);
            })?;
            watcher.watch(registry.dir(), RecursiveMode::NonRecursive)?;
            if registry.plugins_dir() != registry.dir() {
                watcher.watch(registry.plugins_dir(), RecursiveMode::NonRecursive)?;
            }
            info!(
                "watching {} for models and {} for plugins",
                registry.dir().display(),
                registry.plugins_dir().display()
            );
            tokio::spawn(follow_events(registry, watcher, rx));
        }
    }
    Ok(())
}

/// Whether an event says the writer is done with the file.
fn says_done(kind: &EventKind) -> Option<bool> {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(true),
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both | RenameMode::From)) => Some(true),
        EventKind::Remove(_) => Some(true),
        EventKind::Create(_) | EventKind::Modify(_) => Some(false),
        // Opens and reads, ours included, change nothing.
        EventKind::Access(_) | EventKind::Any | EventKind::Other => None,
    }
}

async fn follow_events(
    registry: Arc<Registry>,
    _watcher: notify::RecommendedWatcher,
    mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
) {
    let mut due: HashMap<String, Instant> = HashMap::new();
    let mut plugins_due: Option<Instant> = None;
    loop {
        let next = due.values().copied().chain(plugins_due).min();
        tokio::select! {
            event = events.recv() => match event {
                None => return,
                Some(Err(e)) => warn!("watching the models folder: {e}"),
                Some(Ok(event)) => {
                    let Some(done) = says_done(&event.kind) else { continue };
                    let delay = if done { AFTER_DONE } else { AFTER_WRITE };
                    for name in event.paths.iter().filter_map(|p| model_of(p)) {
                        debug!("models folder: {:?} on {name}", event.kind);
                        due.insert(name, Instant::now() + delay);
                    }
                    if event.paths.iter().any(|p| is_library_name(p)) {
                        plugins_due = Some(Instant::now() + delay);
                    }
                }
            },
            _ = sleep_until(next) => {
                let now = Instant::now();
                if plugins_due.is_some_and(|t| t <= now) {
                    plugins_due = None;
                    registry.refresh_plugins().await;
                }
                let ready: Vec<String> = due.iter().filter(|(_, t)| **t <= now).map(|(n, _)| n.clone()).collect();
                for name in ready {
                    due.remove(&name);
                    if !is_stable(&registry.file_of(&name)).await {
                        due.insert(name, Instant::now() + AFTER_DONE);
                        continue;
                    }
                    // One at a time, in the order they came: events that arrive meanwhile wait.
                    registry.reload(&name).await;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Whether the file (and its sidecar) keep their size and time for a moment; a file that
/// is gone is "stable" too: its removal is what there is to apply.
async fn is_stable(file: &Path) -> bool {
    let before = fingerprint(file.to_path_buf()).await;
    tokio::time::sleep(STABLE_FOR).await;
    before == fingerprint(file.to_path_buf()).await
}

/// The file's fingerprint, read on a blocking thread.
async fn fingerprint(file: PathBuf) -> Option<Fingerprint> {
    crate::worker::off_executor(move || Fingerprint::of(&file))
        .await
        .ok()
        .flatten()
}

/// Compares the folder with what is loaded at every interval; a changed file is loaded once
/// it looked the same at two looks in a row.
async fn poll(registry: Arc<Registry>, interval: Duration) {
    let mut last: HashMap<String, Option<Fingerprint>> = HashMap::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        registry.refresh_plugins().await;
        let (changed, gone) = registry.changes().await;
        let mut now_seen = HashMap::new();
        let mut apply = gone;
        for name in changed {
            let fingerprint = fingerprint(registry.file_of(&name)).await;
            if last.get(&name) == Some(&fingerprint) {
                apply.push(name);
            } else {
                now_seen.insert(name, fingerprint);
            }
        }
        last = now_seen;
        if !apply.is_empty() {
            registry.reload_all(apply).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind};

    #[test]
    fn only_a_closed_write_or_a_rename_says_done() {
        assert_eq!(
            says_done(&EventKind::Access(AccessKind::Close(AccessMode::Write))),
            Some(true)
        );
        assert_eq!(
            says_done(&EventKind::Modify(ModifyKind::Name(RenameMode::To))),
            Some(true)
        );
        assert_eq!(says_done(&EventKind::Remove(RemoveKind::File)), Some(true));
        assert_eq!(says_done(&EventKind::Create(CreateKind::File)), Some(false));
        assert_eq!(
            says_done(&EventKind::Modify(ModifyKind::Data(DataChange::Any))),
            Some(false)
        );
        assert_eq!(says_done(&EventKind::Access(AccessKind::Close(AccessMode::Read))), None);
        assert_eq!(says_done(&EventKind::Access(AccessKind::Open(AccessMode::Any))), None);
    }
}
