//! Shared health state: what each watch has done lately and whether the process is shutting
//! down, written by the sources and the reconciler, read by `/readyz` and `/metrics`.
//!
//! Entry points: [`Health`] (the record) and [`readiness`] (the verdict `/readyz` serves).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::index::Index;

/// Per-watch health, written by sources and the reconciler, read by `/readyz`.
#[derive(Debug, Default)]
pub struct Health {
    watches: Mutex<BTreeMap<&'static str, WatchHealth>>,
    shutting_down: std::sync::atomic::AtomicBool,
    /// A synced watch without API contact for this long fails readiness (None: never).
    stale_after: Option<Duration>,
}

/// The state of one watch (one object kind).
#[derive(Debug, Clone, Default)]
pub struct WatchHealth {
    /// Completed a full list at least once.
    pub synced: bool,
    /// The last error, cleared by the next successful event.
    pub last_error: Option<String>,
    /// When the last event (or successful list) arrived.
    pub last_event: Option<Instant>,
    /// When the API last answered this watch (an event, a list, or a probe).
    pub last_contact: Option<Instant>,
    /// Since when the watch has been failing (cleared by an event or a successful probe).
    pub failing_since: Option<Instant>,
    /// An optional watch (StatefulSets): reported, but it never makes the server unready.
    pub optional: bool,
}

impl Health {
    /// Health whose watches fail readiness after `stale_after` without API contact.
    pub fn with_stale_after(stale_after: Option<Duration>) -> Self {
        Self { stale_after, ..Self::default() }
    }

    /// Records that the API answered a list for this kind (a probe), without clearing a watch
    /// error.
    pub fn touch(&self, kind: &'static str) {
        self.update(kind, |w| w.last_contact = Some(Instant::now()));
    }

    /// Whether this kind's watch has failed since its last event or successful probe.
    pub fn is_failing(&self, kind: &'static str) -> bool {
        self.watches.lock().unwrap_or_else(|e| e.into_inner()).get(kind).is_some_and(|w| w.failing_since.is_some())
    }

    /// Records a successful exchange with the API that carried no event: a probe that listed
    /// and watched this kind.
    pub fn set_contact(&self, kind: &'static str) {
        self.update(kind, |w| {
            w.last_error = None;
            w.failing_since = None;
            w.last_contact = Some(Instant::now());
        });
    }

    fn update(&self, kind: &'static str, f: impl FnOnce(&mut WatchHealth)) {
        let mut map = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(kind).or_default());
    }

    /// Registers a watch that must sync before the server is ready.
    pub fn register(&self, kind: &'static str) {
        self.update(kind, |_| {});
    }

    /// Registers an optional watch: reported, never waited for, never a reason to be unready.
    pub fn register_optional(&self, kind: &'static str) {
        self.update(kind, |w| w.optional = true);
    }

    /// Records a completed full list.
    pub fn set_synced(&self, kind: &'static str) {
        self.update(kind, |w| {
            w.synced = true;
            w.last_error = None;
            w.failing_since = None;
            w.last_event = Some(Instant::now());
            w.last_contact = w.last_event;
        });
    }

    /// Records a successfully received event.
    pub fn set_event(&self, kind: &'static str) {
        self.update(kind, |w| {
            w.last_error = None;
            w.failing_since = None;
            w.last_event = Some(Instant::now());
            w.last_contact = w.last_event;
        });
    }

    /// Records an error of a watch (it is retried by the source).
    pub fn set_error(&self, kind: &'static str, error: String) {
        self.update(kind, |w| {
            w.last_error = Some(error);
            w.failing_since.get_or_insert_with(Instant::now);
        });
    }

    /// Marks the process as shutting down: `/readyz` fails from now on.
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A snapshot of every watch.
    pub fn snapshot(&self) -> BTreeMap<&'static str, WatchHealth> {
        self.watches.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Readiness and the reason, as `/readyz` reports it.
pub fn readiness(index: &Index, health: &Health) -> (bool, String) {
    let mut lines = Vec::new();
    let mut stale = Vec::new();
    for (kind, w) in health.snapshot() {
        let state = match (w.synced, w.optional) {
            (true, _) => "synced",
            (false, false) => "waiting for first list",
            (false, true) => "not listed yet (optional: answers and readiness do not wait for it)",
        };
        let mut line = format!("{kind}: {state}");
        if let Some(at) = w.last_contact {
            let age = at.elapsed();
            line.push_str(&format!("; last contact with the source {} s ago", age.as_secs()));
            // Stale: no contact for too long, or the watch itself failing for too long (a list
            // that still works does not make a broken watch fresh).
            let failing = w.failing_since.map_or(Duration::ZERO, |t| t.elapsed());
            if w.synced && !w.optional && health.stale_after.is_some_and(|limit| age > limit || failing > limit) {
                line.push_str("; STALE");
                stale.push(kind);
            }
        }
        if let Some(e) = &w.last_error {
            line.push_str(&format!("; last error: {e}"));
        }
        lines.push(line);
    }
    let shutting_down = health.is_shutting_down();
    let ready = index.is_synced() && !shutting_down && stale.is_empty();
    let head = if shutting_down {
        "not ready: shutting down".to_owned()
    } else if !stale.is_empty() {
        format!("not ready: stale watch: {} (no API contact within the stale-after limit)", stale.join(", "))
    } else if ready {
        "ready".to_owned()
    } else {
        "not ready: not every watch has completed its first list".to_owned()
    };
    (ready, format!("{head}\n{}\n", lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_sync_fails_on_stale_watches_and_on_shutdown() {
        let index = Index::new();
        let health = Health::with_stale_after(Some(Duration::from_millis(30)));
        health.register("pods");
        let (ready, text) = readiness(&index, &health);
        assert!(!ready && text.contains("pods: waiting for first list"), "{text}");
        health.set_synced("pods");
        index.set_synced(true);
        let (ready, text) = readiness(&index, &health);
        assert!(ready, "{text}");
        health.set_error("pods", "HTTP 500".into());
        let (ready, text) = readiness(&index, &health);
        assert!(ready && text.contains("last error: HTTP 500"), "errors alone keep the last good answers: {text}");
        std::thread::sleep(Duration::from_millis(60));
        let (ready, text) = readiness(&index, &health);
        assert!(!ready && text.contains("stale watch: pods"), "{text}");
        health.set_contact("pods");
        assert!(readiness(&index, &health).0);
        health.set_shutting_down();
        let (ready, text) = readiness(&index, &health);
        assert!(!ready && text.contains("shutting down"), "{text}");
    }
}
