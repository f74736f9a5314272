//! The Kubernetes API source: one kube-runtime `watcher` per object kind (list, then watch from
//! the list's resourceVersion, relist on `410 Gone`), with the default backoff. Errors are logged,
//! recorded in [`Health`] and retried; they never end the watch.
//!
//! A relist arrives as `Init`, `InitApply`..., `InitDone` and is passed on as `ListBegin`,
//! `Listed`..., `ListEnd`: the reconciler applies each object as it comes and at the end deletes
//! whatever the list did not contain, so objects deleted while we were not watching disappear
//! (the API only shows them by their absence) and unchanged ones never blink.
//!
//! Entry points: [`client`] then [`spawn`].

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use super::SourceError;
use crate::health::Health;
use crate::metrics::{KindLabels, WatchEventLabels, metrics};
use crate::model::selector::LabelFilter;
use crate::model::{
    ModelError, NamespaceInfo, NodeInfo, ObjectKey, PodInfo, SERVICE_IMPORT_GROUP, SERVICE_IMPORT_VERSION,
    ServiceImportInfo, ServiceInfo, SliceInfo, StatefulSetInfo,
};
use crate::reconcile::{
    Change, KIND_NAMESPACES, KIND_NODES, KIND_PODS, KIND_SERVICE_IMPORTS, KIND_SERVICES, KIND_SLICES,
    KIND_STATEFULSETS, SourceEvent, Watches,
};

/// Builds a client from `kubeconfig`, or else from `KUBECONFIG`, `~/.kube/config` or the
/// in-cluster service account, in that order.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, SourceError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|source| SourceError::Kubeconfig { path: path.to_owned(), source })?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|source| SourceError::Kubeconfig { path: path.to_owned(), source })?
        }
        None => kube::Config::infer().await.map_err(SourceError::Infer)?,
    };
    info!(server = %config.cluster_url, "using the Kubernetes API");
    Client::try_from(config).map_err(SourceError::Client)
}

/// The label the EndpointSlice controller puts on every slice it writes, and its value
/// (kube-controller-manager; Kubernetes "Well-Known Labels": `endpointslice.kubernetes.io/managed-by`).
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";

/// The label selector of the EndpointSlice list and watch: the `labels` filter, and, unless the
/// controller's slices are needed (`endpointslices` mode), every slice but the controller's (the
/// slices of Services without a selector, the mirroring controller's and other controllers').
fn slice_selector(labels: Option<&LabelFilter>, watches: &Watches) -> Option<String> {
    let mut parts: Vec<String> = labels.map(|l| l.as_str().to_owned()).into_iter().collect();
    if !watches.controller_slices {
        parts.push(format!("{MANAGED_BY}!={SLICE_CONTROLLER}"));
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

/// Starts the watches the configuration needs: Services always; Pods, EndpointSlices and
/// Namespaces as `watches` says. The `labels` selector is applied server-side to Services,
/// EndpointSlices (which inherit their Service's labels) and ServiceImports, as CoreDNS's `labels`
/// option does; in `pods` mode the EndpointSlice controller's slices are left out at the API
/// (`slice_selector`).
/// Each watched kind is also probed (a one-item list, and a short watch while the watch is
/// failing): with `stale_after` at a third of that period, so that `/readyz` can tell a quiet
/// cluster from an unreachable API; without it every 10 s and only while the watch is failing.
pub fn spawn(
    client: Client,
    watches: Watches,
    labels: Option<&LabelFilter>,
    stale_after: Option<Duration>,
    tx: mpsc::Sender<SourceEvent>,
    health: Arc<Health>,
) -> Vec<JoinHandle<()>> {
    // Probes: with `stale_after`, every third of it; without, every 10 s but only while a watch
    // is failing, so that a watch that recovered quietly stops being reported as failing.
    {
        let every = stale_after.map_or(Duration::from_secs(10), |limit| (limit / 3).max(Duration::from_secs(1)));
        let only_when_failing = stale_after.is_none();
        let params = |filtered: bool| {
            let p = ListParams::default().limit(1);
            match labels {
                Some(l) if filtered => p.labels(l.as_str()),
                _ => p,
            }
        };
        let mode = ProbeMode { every, only_when_failing };
        tokio::spawn(probe(Api::<Service>::all(client.clone()), params(true), KIND_SERVICES, health.clone(), mode));
        if watches.slices {
            let p = ListParams::default().limit(1);
            tokio::spawn(probe(
                Api::<EndpointSlice>::all(client.clone()),
                match slice_selector(labels, &watches) {
                    Some(s) => p.labels(&s),
                    None => p,
                },
                KIND_SLICES,
                health.clone(),
                mode,
            ));
        }
        if watches.pods {
            tokio::spawn(probe(Api::<Pod>::all(client.clone()), params(false), KIND_PODS, health.clone(), mode));
        }
        if watches.namespaces {
            tokio::spawn(probe(
                Api::<Namespace>::all(client.clone()),
                params(false),
                KIND_NAMESPACES,
                health.clone(),
                mode,
            ));
        }
        if watches.statefulsets {
            tokio::spawn(probe(
                Api::<StatefulSet>::all(client.clone()),
                params(false),
                KIND_STATEFULSETS,
                health.clone(),
                mode,
            ));
        }
    }
    let filtered = || match labels {
        Some(l) => watcher::Config::default().labels(l.as_str()),
        None => watcher::Config::default(),
    };
    let mut tasks = vec![tokio::spawn(
        watch(
            Api::<Service>::all(client.clone()),
            filtered(),
            watches.streaming_lists,
            KIND_SERVICES,
            ServiceInfo::from_k8s,
            SourceEvent::Service,
            tx.clone(),
            health.clone(),
        )
        .instrument(info_span!("watch", kind = KIND_SERVICES)),
    )];
    if watches.slices {
        tasks.push(tokio::spawn(
            watch(
                Api::<EndpointSlice>::all(client.clone()),
                match slice_selector(labels, &watches) {
                    Some(s) => watcher::Config::default().labels(&s),
                    None => watcher::Config::default(),
                },
                watches.streaming_lists,
                KIND_SLICES,
                SliceInfo::from_k8s,
                SourceEvent::Slice,
                tx.clone(),
                health.clone(),
            )
            .instrument(info_span!("watch", kind = KIND_SLICES)),
        ));
    }
    if watches.pods {
        tasks.push(tokio::spawn(
            watch(
                Api::<Pod>::all(client.clone()),
                watcher::Config::default(),
                watches.streaming_lists,
                KIND_PODS,
                PodInfo::from_k8s,
                SourceEvent::Pod,
                tx.clone(),
                health.clone(),
            )
            .instrument(info_span!("watch", kind = KIND_PODS)),
        ));
    }
    if watches.statefulsets {
        tasks.push(tokio::spawn(
            watch(
                Api::<StatefulSet>::all(client.clone()),
                watcher::Config::default(),
                watches.streaming_lists,
                KIND_STATEFULSETS,
                StatefulSetInfo::from_k8s,
                SourceEvent::StatefulSet,
                tx.clone(),
                health.clone(),
            )
            .instrument(info_span!("watch", kind = KIND_STATEFULSETS)),
        ));
    }
    if watches.imports {
        // ServiceImport is a CRD (mcs-api): no typed struct, read as a dynamic object.
        let api = Api::<kube::api::DynamicObject>::all_with(client.clone(), &service_imports());
        tasks.push(tokio::spawn(
            watch(
                api,
                filtered(),
                watches.streaming_lists,
                KIND_SERVICE_IMPORTS,
                |o: &kube::api::DynamicObject| {
                    ServiceImportInfo::from_json(&serde_json::to_value(o).unwrap_or_default())
                },
                SourceEvent::ServiceImport,
                tx.clone(),
                health.clone(),
            )
            .instrument(info_span!("watch", kind = KIND_SERVICE_IMPORTS)),
        ));
    }
    if watches.nodes {
        // A node's zone label is all it is read for: metadata only.
        tasks.push(tokio::spawn(
            watch(
                Api::<kube::core::PartialObjectMeta<Node>>::all(client.clone()),
                watcher::Config::default(),
                watches.streaming_lists,
                KIND_NODES,
                |n: &kube::core::PartialObjectMeta<Node>| NodeInfo::from_meta(&n.metadata),
                SourceEvent::Node,
                tx.clone(),
                health.clone(),
            )
            .instrument(info_span!("watch", kind = KIND_NODES)),
        ));
    }
    if watches.namespaces {
        // Names and labels are all a Namespace is read for: metadata only (the API server sends
        // `PartialObjectMetadata`), which keeps the watch cheap whether or not labels filter.
        tasks.push(tokio::spawn(
            watch(
                Api::<kube::core::PartialObjectMeta<Namespace>>::all(client),
                watcher::Config::default(),
                watches.streaming_lists,
                KIND_NAMESPACES,
                namespace_of_meta,
                SourceEvent::Namespace,
                tx,
                health,
            )
            .instrument(info_span!("watch", kind = KIND_NAMESPACES)),
        ));
    }
    tasks
}

/// Every `every`, proves the API still serves this kind: a one-item list records API contact;
/// while the watch is failing, a one-second watch from the list's resourceVersion must succeed
/// too before the error is cleared (kube's watcher says nothing when a re-watch succeeds in a
/// quiet cluster), so a list-only permission or a proxy that kills watches still shows as a
/// failing watch.
/// How often a probe runs, and whether it runs only while the watch is failing.
#[derive(Debug, Clone, Copy)]
struct ProbeMode {
    every: Duration,
    only_when_failing: bool,
}

async fn probe<K>(api: Api<K>, params: ListParams, kind: &'static str, health: Arc<Health>, mode: ProbeMode)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
{
    let check = async |api: &Api<K>| -> Result<(), String> {
        let list = api.list(&params).await.map_err(|e| format!("probe list: {e}"))?;
        health.touch(kind);
        if !health.is_failing(kind) {
            return Ok(());
        }
        // The watch has failed since its last event: prove the watch verb works again before
        // clearing the error.
        let rv = list.metadata.resource_version.unwrap_or_default();
        let stream = api
            .watch(&kube::api::WatchParams::default().timeout(1), &rv)
            .await
            .map_err(|e| format!("probe watch: {e}"))?;
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(kube::api::WatchEvent::Error(e)) if e.code != 410 => return Err(format!("probe watch: {e}")),
                Ok(_) => {}
                Err(e) => return Err(format!("probe watch: {e}")),
            }
        }
        Ok(())
    };
    let ProbeMode { every, only_when_failing } = mode;
    loop {
        tokio::time::sleep(every).await;
        if only_when_failing && !health.is_failing(kind) {
            continue;
        }
        match tokio::time::timeout(every + Duration::from_secs(5), check(&api)).await {
            Ok(Ok(())) => health.set_contact(kind),
            Ok(Err(error)) => health.set_error(kind, error),
            Err(_) => health.set_error(kind, "probe: the API did not answer in time".into()),
        }
    }
}

/// Looks objects up on the API server with `list` and a `metadata.name` field selector.
#[derive(Clone)]
pub struct ApiLookup {
    client: Client,
}

impl ApiLookup {
    /// A lookup through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn one<K>(&self, namespace: &str, name: &str) -> Option<serde_json::Value>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug + serde::Serialize,
        K::DynamicType: Default,
    {
        let api = Api::<K>::namespaced(self.client.clone(), namespace);
        let params = ListParams::default().fields(&format!("metadata.name={name}")).limit(1);
        let list = tokio::time::timeout(Duration::from_secs(5), api.list(&params)).await.ok()?.ok()?;
        list.items.into_iter().next().and_then(|o| serde_json::to_value(o).ok())
    }
}

impl ApiLookup {
    /// A ServiceImport (a CRD: read as a dynamic object).
    async fn import(&self, namespace: &str, name: &str) -> Option<serde_json::Value> {
        let api = Api::<kube::api::DynamicObject>::namespaced_with(self.client.clone(), namespace, &service_imports());
        let params = ListParams::default().fields(&format!("metadata.name={name}")).limit(1);
        let list = tokio::time::timeout(Duration::from_secs(5), api.list(&params)).await.ok()?.ok()?;
        list.items.into_iter().next().and_then(|o| serde_json::to_value(o).ok())
    }
}

/// The ServiceImport resource (mcs-api's CRD has no typed struct).
fn service_imports() -> kube::api::ApiResource {
    let gvk = kube::api::GroupVersionKind::gvk(SERVICE_IMPORT_GROUP, SERVICE_IMPORT_VERSION, "ServiceImport");
    kube::api::ApiResource::from_gvk_with_plural(&gvk, "serviceimports")
}

impl super::Lookup for ApiLookup {
    fn object<'a>(
        &'a self,
        kind: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<serde_json::Value>> + Send + 'a>> {
        Box::pin(async move {
            match kind {
                "Pod" => self.one::<Pod>(namespace, name).await,
                "Service" => self.one::<Service>(namespace, name).await,
                "EndpointSlice" => self.one::<EndpointSlice>(namespace, name).await,
                "StatefulSet" => self.one::<StatefulSet>(namespace, name).await,
                "ServiceImport" => self.import(namespace, name).await,
                _ => None,
            }
        })
    }
}

/// A Namespace from its metadata.
fn namespace_of_meta(ns: &kube::core::PartialObjectMeta<Namespace>) -> Result<NamespaceInfo, ModelError> {
    NamespaceInfo::from_meta(&ns.metadata)
}

/// Whether a watch error is the API's `403 Forbidden` (RBAC does not allow the verb).
fn forbidden(error: &watcher::Error) -> bool {
    status_of(error) == Some(403)
}

/// The HTTP status the API answered a watcher's request with, if it answered one.
fn status_of(error: &watcher::Error) -> Option<u16> {
    match error {
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            match e {
                kube::Error::Api(s) => Some(s.code),
                _ => None,
            }
        }
        watcher::Error::WatchError(s) => Some(s.code),
        _ => None,
    }
}

/// The key of a deleted object.
fn key_of<K: Resource>(obj: &K) -> ObjectKey {
    ObjectKey::new(obj.namespace().unwrap_or_else(|| "default".into()), obj.name_any())
}

/// Watches one kind until the receiver is gone: with `streaming`, lists as a watch stream while
/// the API server offers it ([`follow`] says when it does not), then with paged lists.
#[allow(clippy::too_many_arguments)]
async fn watch<K, T>(
    api: Api<K>,
    config: watcher::Config,
    streaming: bool,
    kind: &'static str,
    convert: fn(&K) -> Result<T, ModelError>,
    wrap: fn(Change<T>) -> SourceEvent,
    tx: mpsc::Sender<SourceEvent>,
    health: Arc<Health>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    if streaming {
        let stream = watcher::watcher(api.clone(), config.clone().streaming_lists());
        match follow(stream, Lists::Streaming, kind, convert, wrap, tx.clone(), health.clone()).await {
            Followed::ReceiverGone => return,
            Followed::StreamingRefused(reason) => {
                warn!(reason, "the API server does not offer streaming lists for {kind}: paged lists from now on");
                metrics().streaming_list_fallbacks.get_or_create(&KindLabels { kind }).inc();
            }
        }
    }
    follow(watcher::watcher(api, config), Lists::Paged, kind, convert, wrap, tx, health).await;
}

/// How a watcher makes its lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lists {
    /// Streaming lists (KEP-3157 WatchList): a watch with `sendInitialEvents=true` sends the
    /// state as `ADDED` events from the API server's watch cache and a BOOKMARK annotated
    /// `k8s.io/initial-events-end`; no list request, no etcd read, one object at a time.
    Streaming,
    /// Paged lists (`limit=500` and continue tokens), then a watch from the list's version.
    Paged,
}

/// Why [`follow`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Followed {
    /// The receiver is gone: the server is stopping.
    ReceiverGone,
    /// The API server does not do streaming lists: use paged ones.
    StreamingRefused(&'static str),
}

/// Follows one kind's watcher stream (full objects, or metadata only) until the receiver is gone,
/// or, for [`Lists::Streaming`], until the API server shows it does not do streaming lists: it
/// refuses the initial watch as a bad request (400, or 422 as Kubernetes 1.27 to 1.33 do while
/// the `WatchList` feature gate is off, and older servers for `resourceVersionMatch` on a watch),
/// or the initial watch ends cleanly without the `k8s.io/initial-events-end` bookmark (a server
/// or proxy that ignores `sendInitialEvents`). kube's watcher would retry either forever.
async fn follow<K, T>(
    stream: impl futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send,
    lists: Lists,
    kind: &'static str,
    convert: fn(&K) -> Result<T, ModelError>,
    wrap: fn(Change<T>) -> SourceEvent,
    tx: mpsc::Sender<SourceEvent>,
    health: Arc<Health>,
) -> Followed
where
    K: Resource + Clone + Debug + Send + 'static,
{
    let convert_logged = |obj: &K| match convert(obj) {
        Ok(t) => Some(t),
        Err(error) => {
            warn!(%error, name = %key_of(obj), "skipping object");
            None
        }
    };
    let stream = stream.default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut listed_once = false;
    let mut told_forbidden = false;
    let mut listed = 0usize;
    // Streaming: a list is being made (the initial watch asks for initial events), and whether
    // an error came since it began.
    let mut initial = true;
    let mut listing = false;
    let mut error_since_init = false;
    let count = |event: &'static str| metrics().watch_events.get_or_create(&WatchEventLabels { kind, event }).inc();
    while let Some(item) = stream.next().await {
        let change = match item {
            Ok(Event::Init) => {
                if lists == Lists::Streaming && listing && !error_since_init {
                    return Followed::StreamingRefused(
                        "the initial watch ended without the initial-events-end bookmark",
                    );
                }
                (listing, error_since_init) = (true, false);
                debug!("list started");
                if listed_once {
                    metrics().watch_restarts.get_or_create(&KindLabels { kind }).inc();
                }
                listed = 0;
                Change::ListBegin
            }
            Ok(Event::InitApply(obj)) => match convert_logged(&obj) {
                // Streamed to the reconciler page by page: the list is never held whole here.
                Some(t) => {
                    listed += 1;
                    Change::Listed(t)
                }
                None => continue,
            },
            Ok(Event::InitDone) => {
                (initial, listing) = (false, false);
                info!(objects = listed, streamed = lists == Lists::Streaming, "list complete");
                listed_once = true;
                count("list");
                Change::ListEnd
            }
            Ok(Event::Apply(obj)) => {
                count("apply");
                match convert_logged(&obj) {
                    Some(t) => Change::Apply(t),
                    None => Change::Delete(key_of(&obj)),
                }
            }
            Ok(Event::Delete(obj)) => {
                count("delete");
                Change::Delete(key_of(&obj))
            }
            Err(error) => {
                if lists == Lists::Streaming
                    && initial
                    && matches!(error, watcher::Error::WatchStartFailed(_))
                    && matches!(status_of(&error), Some(400 | 422))
                {
                    return Followed::StreamingRefused("the initial watch with sendInitialEvents was refused");
                }
                error_since_init = true;
                // A relist follows a 410 (a streaming one starts with the initial watch again).
                if status_of(&error) == Some(410) {
                    initial = true;
                }
                // Recoverable: the backoff wrapper waits and the watcher lists or re-watches.
                let text = error.to_string();
                if forbidden(&error) {
                    // Said once with what to do, then quietly retried (and counted).
                    if !told_forbidden {
                        let effect = if kind == KIND_STATEFULSETS {
                            "expected-name negatives stay off (answers as without StatefulSets)"
                        } else {
                            "answers wait for or keep the last good state"
                        };
                        warn!(%error, effect, "the API forbids listing or watching {kind}: grant `list` and `watch` on {kind} to the service account (deploy/rbac.yaml); retrying");
                        told_forbidden = true;
                    } else {
                        debug!(%error, "watch still forbidden; retrying");
                    }
                } else if status_of(&error) == Some(404) {
                    // A CRD that is not installed (ServiceImport): said once, quietly retried.
                    if !told_forbidden {
                        warn!(%error, "the API does not serve {kind} (is its CRD installed?): none until it does; retrying");
                        told_forbidden = true;
                    } else {
                        debug!(%error, "{kind} still not served; retrying");
                    }
                } else {
                    warn!(%error, "watch error; retrying");
                }
                metrics().watch_errors.get_or_create(&KindLabels { kind }).inc();
                health.set_error(kind, text);
                continue;
            }
        };
        health.set_event(kind);
        if tx.send(wrap(change)).await.is_err() {
            return Followed::ReceiverGone;
        }
    }
    // The backoff-wrapped watcher never ends.
    Followed::ReceiverGone
}
