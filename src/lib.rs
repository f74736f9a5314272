//! headless-dns: an authoritative DNS server for Kubernetes headless Services and StatefulSet
//! pods.
//!
//! Data flows one way: a source ([`source::kube`] or [`source::manifests`]) converts objects to
//! the slim [`model`] types and sends them to the [`reconcile`]r, the only writer of the
//! [`index`]; the [`dns`] side answers from the index alone. [`run`] wires it together.

pub mod admin;
pub mod config;
pub mod dns;
pub mod index;
pub mod metrics;
pub mod model;
pub mod reconcile;
pub mod source;

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::admin::Health;
use crate::config::{Config, SourceConfig};
use crate::dns::answer::{ZoneSettings, Zones};
use crate::dns::general::Responder;
use crate::dns::server::{Limits, ServerError, Shutdown};
use crate::index::Index;
use crate::reconcile::{ReconcileOptions, State, Watches};
use crate::source::SourceError;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A DNS socket could not be bound.
    #[error(transparent)]
    Dns(#[from] ServerError),
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr} (http): {source}")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The record source could not start.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Runs the server with `config` until the process is stopped: binds the sockets, starts the
/// source and the reconciler, and serves DNS and HTTP.
pub async fn run(config: Config) -> Result<(), RunError> {
    let watches = Watches::for_config(&config);
    let reconcile_options = ReconcileOptions::from_config(&config);
    let Config {
        listen,
        zones,
        source,
        http_listen,
        ttls,
        log_format: _,
        endpoints_from: _,
        options,
        tcp_idle_timeout,
        tcp_read_timeout,
        tcp_max_connections,
        udp_workers,
        shutdown_delay,
    } = config;
    let index = Arc::new(Index::new(options.namespace_labels.is_some()));
    let health = Arc::new(Health::default());
    for kind in watches.kinds() {
        health.register(kind);
    }

    let limits = Limits { udp_workers, tcp_max_connections, tcp_idle_timeout, tcp_read_timeout };
    let listeners = dns::server::bind(&listen, &limits)?;
    let http = match http_listen {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.map_err(|source| RunError::Http { addr, source })?)
        }
        None => None,
    };

    let (tx, rx) = mpsc::channel(4096);
    let state = State::new(index.clone(), health.clone(), reconcile_options);
    tokio::spawn(reconcile::run(rx, state));

    match source {
        SourceConfig::Manifests(path) => {
            if !path.exists() {
                return Err(SourceError::Manifests { path, reason: "no such file or folder".into() }.into());
            }
            let labels = options.labels.clone();
            tokio::spawn(async move {
                if let Err(error) = source::manifests::run(path, labels, tx).await {
                    error!(%error, "manifests source stopped; serving the last good answers");
                }
            });
        }
        SourceConfig::Kubernetes { kubeconfig } => {
            let client = source::kube::client(kubeconfig.as_deref()).await?;
            source::kube::spawn(client, watches, options.labels.as_ref(), tx, health.clone());
        }
    }

    if let Some(listener) = http {
        let (index, health) = (index.clone(), health.clone());
        tokio::spawn(async move {
            if let Err(error) = admin::serve(listener, index, health).await {
                error!(%error, "http server stopped");
            }
        });
    }

    let settings = ZoneSettings { zones, ttls, pods: options.pods, ptr: options.ptr, namespaces: options.namespaces };
    let responder = Arc::new(Responder::new(Zones::new(index, settings)));
    let shutdown = Shutdown::default();
    let (threads, tasks) = dns::server::serve(listeners, responder, limits, &shutdown);

    wait_for_signal().await;
    // Fail readiness first, keep answering through the lame-duck delay, then stop accepting; the
    // request in hand on each worker is still answered.
    health.set_shutting_down();
    info!(delay_s = shutdown_delay.as_secs(), "shutting down: readiness now failing");
    tokio::time::sleep(shutdown_delay).await;
    shutdown.stop();
    for task in tasks {
        let _ = task.await;
    }
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
    info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
