//! Where records come from. Both sources convert Kubernetes objects to the slim [`crate::model`]
//! types at the edge and send [`crate::reconcile::SourceEvent`]s to the reconciler:
//!
//! - [`kube`]: list-then-watch of Services, Pods and EndpointSlices on a live API server;
//! - [`manifests`]: a YAML file or folder, re-read whenever it changes.

pub mod kube;
pub mod manifests;

use std::future::Future;
use std::pin::Pin;

/// Fetches one object as the source holds it now (for explanations, never for answers): the
/// API object by `list` with a name field selector (the only verbs the server is granted are
/// `list` and `watch`), or the document in the manifests. `None` when it does not exist.
pub trait Lookup: Send + Sync {
    /// The object `kind` (`Pod`, `Service`, `EndpointSlice`, `StatefulSet`) `namespace/name`.
    fn object<'a>(
        &'a self,
        kind: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<serde_json::Value>> + Send + 'a>>;
}

/// Why a source could not start. Failures after start are logged and retried, never fatal.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The kubeconfig could not be read or used.
    #[error("cannot load kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        #[source]
        source: ::kube::config::KubeconfigError,
    },
    /// No kubeconfig was given and neither `KUBECONFIG`, `~/.kube/config` nor the in-cluster
    /// service account could be used.
    #[error(
        "cannot find cluster credentials (pass --kubeconfig, set KUBECONFIG, run in a cluster, or use --manifests): {0}"
    )]
    Infer(#[source] ::kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] ::kube::Error),
    /// The manifests path does not exist or cannot be watched.
    #[error("cannot watch manifests {path}: {reason}")]
    Manifests {
        /// The file or folder.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}
