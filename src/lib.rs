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
    let running = config.clone();
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
        stale_after,
    } = config;
    let index = Arc::new(Index::new(options.namespace_labels.is_some()));
    // Staleness only means something for an API server; a manifests folder is never stale.
    let stale_after = match source {
        SourceConfig::Kubernetes { .. } => stale_after,
        SourceConfig::Manifests(_) => None,
    };
    let health = Arc::new(Health::with_stale_after(stale_after));
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
            source::kube::spawn(client, watches, options.labels.as_ref(), stale_after, tx, health.clone());
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
    let responder = Arc::new(Responder::new(Zones::new(index.clone(), settings)));
    let shutdown = Shutdown::default();
    let (threads, tasks) = dns::server::serve(listeners, responder.clone(), limits, &shutdown);

    wait_for_signal(|| reload(&running, &index, &responder)).await;
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

/// Re-reads the configuration (SIGHUP) and applies what can change safely while running: the
/// TTLs, the PTR mode, and pod records between `disabled` and `insecure`. A bad new configuration
/// is rejected with a log line and the running one keeps serving; other changed keys are logged as
/// needing a restart.
fn reload(running: &Config, index: &Arc<Index>, responder: &Responder) {
    use clap::Parser;
    let new = match config::Cli::try_parse()
        .map_err(|e| e.to_string())
        .and_then(|cli| Config::from_cli(cli).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(error) => {
            error!(%error, "configuration reload rejected; the running configuration keeps serving");
            return;
        }
    };
    let pods_safe = |p: config::PodsMode| p != config::PodsMode::Verified;
    let mut needs_restart = Vec::new();
    let (o, n) = (&running.options, &new.options);
    let checks: [(&str, bool); 15] = [
        ("listen", running.listen != new.listen),
        ("zone", running.zones != new.zones),
        ("manifests/kubeconfig", running.source != new.source),
        ("http-listen", running.http_listen != new.http_listen),
        ("log-format", running.log_format != new.log_format),
        ("endpoints-from", running.endpoints_from != new.endpoints_from),
        ("pods", o.pods != n.pods && !(pods_safe(o.pods) && pods_safe(n.pods))),
        ("namespaces", o.namespaces != n.namespaces),
        ("labels", o.labels != n.labels || o.namespace_labels != n.namespace_labels),
        ("endpoint-pod-names", o.endpoint_pod_names != n.endpoint_pod_names),
        ("ignore-empty-service", o.ignore_empty_service != n.ignore_empty_service),
        ("noendpoints", o.noendpoints != n.noendpoints),
        (
            "tcp-*",
            running.tcp_idle_timeout != new.tcp_idle_timeout
                || running.tcp_read_timeout != new.tcp_read_timeout
                || running.tcp_max_connections != new.tcp_max_connections,
        ),
        ("udp-workers", running.udp_workers != new.udp_workers),
        (
            "shutdown-delay/stale-after",
            running.shutdown_delay != new.shutdown_delay || running.stale_after != new.stale_after,
        ),
    ];
    for (key, changed) in checks {
        if changed {
            needs_restart.push(key);
        }
    }
    if !needs_restart.is_empty() {
        warn!(keys = ?needs_restart, "changed keys need a restart; not applied");
    }
    let pods = if pods_safe(o.pods) && pods_safe(n.pods) { n.pods } else { o.pods };
    let settings = ZoneSettings {
        zones: running.zones.clone(),
        ttls: new.ttls,
        pods,
        ptr: n.ptr,
        namespaces: o.namespaces.clone(),
    };
    responder.replace_zones(Zones::new(index.clone(), settings));
    info!(ttl = new.ttls.record, soa_ttl = new.ttls.soa, soa_minimum = new.ttls.soa_minimum, ptr = ?n.ptr, pods = ?pods, "configuration reloaded");
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C); runs `on_hup` on each SIGHUP.
async fn wait_for_signal(on_hup: impl Fn()) {
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
