//! HTTP endpoints for operators and probes: `/healthz` (the process is alive), `/readyz` (every
//! watch has completed its first full list; otherwise 503 with the reason) and `/metrics`
//! (Prometheus text).
//!
//! Entry point: [`serve`]. What it reports is kept in [`crate::health`] and [`crate::metrics`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tracing::info;

use crate::health::{Health, readiness};
use crate::index::Index;

#[derive(Clone)]
struct AppState {
    index: Arc<Index>,
    health: Arc<Health>,
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
