//! HTTP endpoints for operators and probes: `/healthz` (the process is alive), `/readyz` (every
//! watch has completed its first full list; otherwise 503 with the reason) and `/metrics`
//! (Prometheus text).
//!
//! [`Health`] is the shared record sources and the reconciler write to; [`serve`] is the server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tracing::info;

use crate::index::Index;

/// Per-watch health, written by sources and the reconciler, read by `/readyz`.
#[derive(Debug, Default)]
pub struct Health {
    watches: Mutex<BTreeMap<&'static str, WatchHealth>>,
    shutting_down: std::sync::atomic::AtomicBool,
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
}

impl Health {
    fn update(&self, kind: &'static str, f: impl FnOnce(&mut WatchHealth)) {
        let mut map = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(kind).or_default());
    }

    /// Registers a watch that must sync before the server is ready.
    pub fn register(&self, kind: &'static str) {
        self.update(kind, |_| {});
    }

    /// Records a completed full list.
    pub fn set_synced(&self, kind: &'static str) {
        self.update(kind, |w| {
            w.synced = true;
            w.last_error = None;
            w.last_event = Some(Instant::now());
        });
    }

    /// Records a successfully received event.
    pub fn set_event(&self, kind: &'static str) {
        self.update(kind, |w| {
            w.last_error = None;
            w.last_event = Some(Instant::now());
        });
    }

    /// Records an error of a watch (it is retried by the source).
    pub fn set_error(&self, kind: &'static str, error: String) {
        self.update(kind, |w| w.last_error = Some(error));
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

#[derive(Clone)]
struct AppState {
    index: Arc<Index>,
    health: Arc<Health>,
}

/// Readiness and the reason, as `/readyz` reports it.
pub fn readiness(index: &Index, health: &Health) -> (bool, String) {
    let mut lines = Vec::new();
    for (kind, w) in health.snapshot() {
        let state = if w.synced { "synced" } else { "waiting for first list" };
        match &w.last_error {
            Some(e) => lines.push(format!("{kind}: {state}; last error: {e}")),
            None => lines.push(format!("{kind}: {state}")),
        }
    }
    let shutting_down = health.is_shutting_down();
    let ready = index.is_synced() && !shutting_down;
    let head = if shutting_down {
        "not ready: shutting down"
    } else if ready {
        "ready"
    } else {
        "not ready: not every watch has completed its first list"
    };
    (ready, format!("{head}\n{}\n", lines.join("\n")))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics_text(State(st): State<AppState>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let body = crate::metrics::metrics().encode(&st.index, &st.health);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

async fn readyz(State(st): State<AppState>) -> (StatusCode, String) {
    let (ready, text) = readiness(&st.index, &st.health);
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, text)
}

/// Serves the HTTP endpoints on an already bound listener until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, index: Arc<Index>, health: Arc<Health>) -> std::io::Result<()> {
    let addr = listener.local_addr().map(|a: SocketAddr| a.to_string()).unwrap_or_default();
    info!(addr, "http listening");
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { index, health });
    axum::serve(listener, app).await
}
