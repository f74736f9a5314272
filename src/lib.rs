//! headless-dns: an authoritative DNS server for Kubernetes headless Services and StatefulSet
//! pods.
//!
//! Data flows one way: a source ([`source::kube`] or [`source::manifests`]) converts objects to
//! the slim [`model`] types and sends them to the [`reconcile`]r, the only writer of the
//! [`index`]; the [`dns`] side answers from the index alone. [`run`] wires it together.

pub mod admin;
pub mod config;
pub mod debug;
pub mod dns;
pub mod health;
pub mod index;
pub mod journal;
pub mod metrics;
pub mod model;
pub mod reconcile;
pub mod source;

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::config::{Config, SourceConfig};
use crate::dns::answer::Zones;
use crate::dns::general::Responder;
use crate::dns::server::{ServerError, Shutdown};
use crate::health::Health;
use crate::index::Index;
use crate::reconcile::State;
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
/// source and the reconciler, and serves DNS and HTTP. SIGHUP reloads the configuration
/// ([`config::reload`]); SIGTERM stops it.
pub async fn run(config: Config) -> Result<(), RunError> {
    let watches = config.watches();
    let index = Arc::new(Index::new());
    // Staleness only means something for an API server; a manifests folder is never stale.
    let source = config.source();
    let stale_after = match source {
        SourceConfig::Kubernetes { .. } => config.stale_after(),
        SourceConfig::Manifests(_) => None,
    };
    let health = Arc::new(Health::with_stale_after(stale_after));
    for kind in watches.kinds() {
        health.register(kind);
    }
    for kind in watches.optional_kinds() {
        health.register_optional(kind);
    }

    let limits = config.limits();
    let listeners = dns::server::bind(&config.listen(), &limits)?;
    let http = match config.http_listen {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.map_err(|source| RunError::Http { addr, source })?)
        }
        None => None,
    };

    let debug = match config.debug_listen {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.map_err(|source| RunError::Http { addr, source })?)
        }
        None => None,
    };
    let (tx, rx) = mpsc::channel(4096);
    let (explain_tx, explain_rx) = mpsc::channel(16);
    // The multicluster zones' names live apart: they are not the cluster zones' names.
    let multicluster = Arc::new(Index::new());
    let mut state = State::new(index.clone(), health.clone(), config.reconcile_options());
    if !config.multicluster_zones().is_empty() {
        state = state.with_multicluster(multicluster.clone());
    }
    tokio::spawn(reconcile::run(rx, debug.is_some().then_some(explain_rx), state));

    let labels = config.labels().cloned();
    let lookup: Arc<dyn source::Lookup> = match source {
        SourceConfig::Manifests(path) => {
            if !path.exists() {
                return Err(SourceError::Manifests { path, reason: "no such file or folder".into() }.into());
            }
            let lookup = Arc::new(source::manifests::FileLookup::new(path.clone()));
            tokio::spawn(async move {
                if let Err(error) = source::manifests::run(path, labels, tx).await {
                    error!(%error, "manifests source stopped; serving the last good answers");
                }
            });
            lookup
        }
        SourceConfig::Kubernetes { kubeconfig } => {
            let client = source::kube::client(kubeconfig.as_deref()).await?;
            source::kube::spawn(client.clone(), watches, labels.as_ref(), stale_after, tx, health.clone());
            Arc::new(source::kube::ApiLookup::new(client))
        }
    };

    if let Some(listener) = http {
        let (index, health) = (index.clone(), health.clone());
        tokio::spawn(async move {
            if let Err(error) = admin::serve(listener, index, health).await {
                error!(%error, "http server stopped");
            }
        });
    }

    // The publisher gives changes their serial; with transfers on, it also keeps the journal.
    let journal = config.transfers().then(|| Arc::new(journal::Journal::new(&index, config.journal_limits())));
    tokio::spawn(journal::run(
        index.clone(),
        journal.clone(),
        config.serial_window(),
        tokio_util::sync::CancellationToken::new(),
    ));
    let responder = Arc::new(Responder::new(
        Zones::new(index.clone(), config.zone_settings())
            .with_multicluster(multicluster.clone())
            .with_journal(journal.clone()),
    ));
    if let Some(journal) = &journal {
        for target in config.notify.iter().cloned() {
            tokio::spawn(dns::notify::run(responder.clone(), target, journal.subscribe()));
        }
    }
    if let Some(listener) = debug {
        let explainer =
            debug::Explainer { responder: responder.clone(), requests: explain_tx, health: health.clone(), lookup };
        tokio::spawn(async move {
            if let Err(error) = debug::serve(listener, explainer).await {
                error!(%error, "debug server stopped");
            }
        });
    }
    let shutdown = Shutdown::default();
    let (threads, tasks) = dns::server::serve(listeners, responder.clone(), limits, &shutdown);

    // The running configuration: one value, updated after every applied reload.
    let mut running = config;
    wait_for_signal(|| reload_config(&mut running, &index, &multicluster, journal.as_ref(), &responder)).await;
    // Fail readiness first, keep answering through the lame-duck delay, then stop accepting; the
    // request in hand on each worker is still answered.
    health.set_shutting_down();
    let delay = running.shutdown_delay();
    info!(delay_s = delay.as_secs(), "shutting down: readiness now failing");
    tokio::time::sleep(delay).await;
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

/// Re-reads the configuration (SIGHUP) from the process's flags, environment and file, and
/// applies what [`config::reload`] allows while running. A bad new configuration is rejected with
/// a log line and the running one keeps serving; changed keys that need a restart are logged.
fn reload_config(
    running: &mut Config,
    index: &Arc<Index>,
    multicluster: &Arc<Index>,
    journal: Option<&Arc<journal::Journal>>,
    responder: &Responder,
) {
    let new = match Config::load_from(std::env::args_os()) {
        Ok(c) => c,
        Err(error) => {
            error!(%error, "configuration reload rejected; the running configuration keeps serving");
            return;
        }
    };
    let config::Reloaded { config, needs_restart } = config::reload(running, new);
    if !needs_restart.is_empty() {
        warn!(keys = ?needs_restart, "changed keys need a restart; not applied");
    }
    *running = config;
    let settings = running.zone_settings();
    let (ttls, ptr, pods) = (settings.ttls, settings.ptr, settings.pods);
    responder.replace_zones(
        Zones::new(index.clone(), settings).with_multicluster(multicluster.clone()).with_journal(journal.cloned()),
    );
    info!(ttl = ttls.record, soa_ttl = ttls.soa, soa_minimum = ttls.soa_minimum, ptr = ?ptr, pods = ?pods, "configuration reloaded");
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C); runs `on_hup` on each SIGHUP.
async fn wait_for_signal(mut on_hup: impl FnMut()) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::hangup())) {
            (Ok(mut term), Ok(mut hup)) => loop {
                tokio::select! {
                    _ = term.recv() => return,
                    _ = tokio::signal::ctrl_c() => return,
                    _ = hup.recv() => on_hup(),
                }
            },
            _ => {
                warn!("cannot listen for SIGTERM/SIGHUP; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = &on_hup;
        let _ = tokio::signal::ctrl_c().await;
    }
}
