//! The reconciler: the one writer of the [`Index`]. It keeps the slim objects both sources send
//! (Services, Pods, EndpointSlices, Namespaces), works out each Service's endpoints and publishes
//! its names; with verified pod records it also publishes each Pod's name.
//!
//! Entry points: [`State::handle`] for one [`SourceEvent`] (then [`State::flush`]), and [`run`],
//! the task that feeds a channel of events into a `State`. A [`Change::Reset`] is a full relist: any
//! object it does not contain is deleted (kube-runtime's `Init .. InitDone`), and names that did
//! not change keep answering throughout.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use smallvec::SmallVec;
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::dns::names::valid_label;
use crate::health::Health;
use crate::index::{Index, Owner};
use crate::model::selector::LabelFilter;
use crate::model::{
    Endpoint, NamespaceInfo, NodeInfo, ObjectKey, PodFacts, PodInfo, PodShape, ServiceImportInfo, ServiceInfo,
    ServiceKind, SliceInfo, StatefulSetInfo,
};
use records::{RecordOptions, pod_records, service_records};

pub mod explain;
pub mod records;

/// Where the endpoints of a Service with a selector come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EndpointsFrom {
    /// Watch Pods and apply the EndpointSlice controller's rules ourselves (fastest propagation).
    #[default]
    Pods,
    /// Use the EndpointSlices of every Service (cheaper on huge clusters: no Pod watch).
    Endpointslices,
}

/// A change to one kind of object.
#[derive(Debug, Clone)]
pub enum Change<T> {
    /// Added or modified.
    Apply(T),
    /// Deleted.
    Delete(ObjectKey),
    /// The complete current set (a list or relist): everything else is gone.
    Reset(Vec<T>),
    /// A list (or relist) starts: objects follow as [`Change::Listed`].
    ListBegin,
    /// One object of the list in progress.
    Listed(T),
    /// An object the list in progress could not read but that still exists (a manifest file
    /// with a bad document): it stays as it is, not deleted at [`Change::ListEnd`].
    Kept(ObjectKey),
    /// The list is complete: every object it did not contain is gone.
    ListEnd,
}

/// What a source tells the reconciler.
#[derive(Debug, Clone)]
pub enum SourceEvent {
    /// A Service changed.
    Service(Change<ServiceInfo>),
    /// A Pod changed.
    Pod(Change<PodInfo>),
    /// An EndpointSlice changed.
    Slice(Change<SliceInfo>),
    /// A Namespace changed (only watched for the `namespace-labels` option).
    Namespace(Change<NamespaceInfo>),
    /// A StatefulSet changed (for the pod names it expects).
    StatefulSet(Change<StatefulSetInfo>),
    /// A Node changed (for its topology zone, with the `zonal` option in `pods` mode).
    Node(Change<NodeInfo>),
    /// A ServiceImport changed (multicluster zones).
    ServiceImport(Change<ServiceImportInfo>),
}

/// The object kinds, as named in logs and health reports.
pub const KIND_SERVICES: &str = "services";
/// See [`KIND_SERVICES`].
pub const KIND_PODS: &str = "pods";
/// See [`KIND_SERVICES`].
pub const KIND_SLICES: &str = "endpointslices";
/// See [`KIND_SERVICES`].
pub const KIND_NAMESPACES: &str = "namespaces";
/// See [`KIND_SERVICES`].
pub const KIND_STATEFULSETS: &str = "statefulsets";
/// See [`KIND_SERVICES`].
pub const KIND_NODES: &str = "nodes";
/// See [`KIND_SERVICES`].
pub const KIND_SERVICE_IMPORTS: &str = "serviceimports";

/// Which kinds are watched, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watches {
    /// Pods: for endpoints in `pods` mode, and for verified pod records.
    pub pods: bool,
    /// EndpointSlices: for Services without a selector, or every Service in `endpointslices` mode.
    pub slices: bool,
    /// The EndpointSlices the EndpointSlice controller writes for Services with a selector: only
    /// `endpointslices` mode reads them. Without them, lists and watches leave them out at the API
    /// (a label selector on `endpointslice.kubernetes.io/managed-by`), so they cost nothing here.
    pub controller_slices: bool,
    /// Namespaces: which exist (their `<ns>.svc` is NODATA, as CoreDNS answers) and their labels
    /// for the `namespace-labels` option.
    pub namespaces: bool,
    /// StatefulSets: for the pod names they expect. Optional: answers and readiness never wait
    /// for this watch, and without it (no permission, an error) expected names are unknown.
    pub statefulsets: bool,
    /// Nodes (metadata only): their topology zones, for the `zonal` option in `pods` mode.
    /// Optional as StatefulSets are: without them zone-pinned names see no zone.
    pub nodes: bool,
    /// ServiceImports (`multicluster.x-k8s.io`), for multicluster zones. Optional: a cluster
    /// without the CRD (404) has no imports.
    pub imports: bool,
    /// How the watched kinds are listed: as streams (`sendInitialEvents`) where the API server
    /// offers them, else paged (the `streaming-lists` option).
    pub streaming_lists: bool,
}

impl Watches {
    /// The optional kinds watched, by their health name: they never hold up the first answer or
    /// readiness.
    pub fn optional_kinds(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.statefulsets {
            v.push(KIND_STATEFULSETS);
        }
        if self.nodes {
            v.push(KIND_NODES);
        }
        if self.imports {
            v.push(KIND_SERVICE_IMPORTS);
        }
        v
    }

    /// Every kind whose first full list answers wait for, by its health name.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut v = vec![KIND_SERVICES];
        if self.pods {
            v.push(KIND_PODS);
        }
        if self.slices {
            v.push(KIND_SLICES);
        }
        if self.namespaces {
            v.push(KIND_NAMESPACES);
        }
        v
    }
}

/// How the reconciler publishes, from the configuration.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Where Services with a selector take endpoints from.
    pub mode: EndpointsFrom,
    /// What is watched.
    pub watches: Watches,
    /// Shape of the published names.
    pub records: RecordOptions,
    /// Namespace allow-list (empty: all).
    pub namespaces: Vec<String>,
    /// Namespace label selector.
    pub namespace_labels: Option<LabelFilter>,
    /// Publish verified pod records.
    pub pods_verified: bool,
}

impl ReconcileOptions {
    /// Defaults for `mode` (every kind but namespaces watched): for tests.
    pub fn with_mode(mode: EndpointsFrom) -> Self {
        Self {
            mode,
            watches: Watches {
                pods: mode == EndpointsFrom::Pods,
                slices: true,
                controller_slices: mode == EndpointsFrom::Endpointslices,
                namespaces: false,
                statefulsets: true,
                nodes: false,
                imports: false,
                streaming_lists: true,
            },
            records: RecordOptions::default(),
            namespaces: Vec::new(),
            namespace_labels: None,
            pods_verified: false,
        }
    }
}

/// The reconciler's state: every object the records depend on, and the derived indexes that make
/// an update cost proportional to what it touches.
#[derive(Debug)]
pub struct State {
    index: Arc<Index>,
    health: Arc<Health>,
    opts: ReconcileOptions,
    mode: EndpointsFrom,
    /// The namespaces that exist, with their labels.
    namespaces: HashMap<Arc<str>, BTreeMap<String, String>>,
    /// Boxed: a map's free slots then cost a pointer, not a whole Service.
    services: HashMap<ObjectKey, Box<ServiceInfo>>,
    /// Pods by namespace, then name (a new Service finds its pods in its namespace's map). The
    /// names are shared with the Services' member lists.
    pods: HashMap<Arc<str>, HashMap<Arc<str>, PodFacts>>,
    /// Pod shapes (labels, hostname, subdomain, ports), each held once: a StatefulSet's pods
    /// share one.
    shapes: Interner<PodShape>,
    slices: HashMap<ObjectKey, SliceInfo>,
    /// Slice names per owning Service.
    slices_by_service: HashMap<ObjectKey, BTreeSet<Arc<str>>>,
    /// Pods selected by each Service (pods mode only), sorted by name; no entry when none.
    members: HashMap<ObjectKey, Vec<Arc<str>>>,
    /// Services by [`selector_slot`] of (namespace, first selector key, value), sorted: the
    /// candidates for a pod with that label.
    by_selector: HashMap<Box<str>, SmallVec<[Box<str>; 1]>>,
    /// Services whose names must be recomputed at the next flush.
    dirty: BTreeSet<ObjectKey>,
    /// Pods whose verified record must be recomputed at the next flush.
    dirty_pods: BTreeSet<ObjectKey>,
    /// StatefulSets, for the pod names they expect.
    statefulsets: HashMap<ObjectKey, StatefulSetInfo>,
    /// StatefulSet names by their governing Service (namespace, `spec.serviceName`).
    sets_by_service: HashMap<ObjectKey, BTreeSet<Arc<str>>>,
    /// StatefulSets whose expected names must be recomputed at the next flush.
    dirty_sets: BTreeSet<ObjectKey>,
    /// When each Service's names last changed (for explanations).
    names_changed: HashMap<ObjectKey, std::time::Instant>,
    /// Since when each expected ordinal of each StatefulSet has had no address (for
    /// explanations): only the missing ones are held.
    gaps: HashMap<ObjectKey, BTreeMap<u32, std::time::Instant>>,
    /// Each node's topology zone (`zonal` option, `pods` mode).
    nodes: HashMap<Arc<str>, Option<Arc<str>>>,
    /// The numbers of the nodes pods name, held in each pod's facts (`zonal` option only).
    node_numbers: NodeNumbers,
    /// ServiceImports, for the multicluster zones.
    imports: HashMap<ObjectKey, ServiceImportInfo>,
    /// Multicluster EndpointSlice names per ServiceImport.
    slices_by_import: HashMap<ObjectKey, BTreeSet<Arc<str>>>,
    /// ServiceImports whose names must be recomputed at the next flush.
    dirty_imports: BTreeSet<ObjectKey>,
    /// The names of the multicluster zones (None: none is served).
    multicluster: Option<Arc<Index>>,
    /// Change times (Unix ms) of the events that dirtied each Service, with the endpoint source,
    /// for the programming-latency metric. Only live events count, not (re)lists.
    triggers: HashMap<ObjectKey, (i64, &'static str)>,
    /// Whether the event being handled is a live change (not part of a list).
    live: bool,
    /// Keys seen so far by each list in progress.
    listing: HashMap<&'static str, HashSet<ObjectKey>>,
    /// Kinds that have completed a full list at least once.
    synced: BTreeSet<&'static str>,
}

impl State {
    /// A new state writing to `index`.
    pub fn new(index: Arc<Index>, health: Arc<Health>, opts: ReconcileOptions) -> Self {
        Self {
            index,
            health,
            mode: opts.mode,
            opts,
            namespaces: HashMap::new(),
            services: HashMap::new(),
            pods: HashMap::new(),
            shapes: Interner::default(),
            slices: HashMap::new(),
            slices_by_service: HashMap::new(),
            members: HashMap::new(),
            by_selector: HashMap::new(),
            dirty: BTreeSet::new(),
            dirty_pods: BTreeSet::new(),
            statefulsets: HashMap::new(),
            sets_by_service: HashMap::new(),
            dirty_sets: BTreeSet::new(),
            names_changed: HashMap::new(),
            gaps: HashMap::new(),
            nodes: HashMap::new(),
            node_numbers: NodeNumbers::default(),
            imports: HashMap::new(),
            slices_by_import: HashMap::new(),
            dirty_imports: BTreeSet::new(),
            multicluster: None,
            triggers: HashMap::new(),
            live: false,
            listing: HashMap::new(),
            synced: BTreeSet::new(),
        }
    }

    /// Whether names in `namespace` are served (allow-list and namespace labels).
    fn visible(&self, namespace: &str) -> bool {
        (self.opts.namespaces.is_empty() || self.opts.namespaces.iter().any(|n| n == namespace))
            && self
                .opts
                .namespace_labels
                .as_ref()
                .is_none_or(|f| self.namespaces.get(namespace).is_some_and(|labels| f.matches(labels)))
    }

    fn apply_namespace(&mut self, ns: NamespaceInfo) {
        let name = ns.key.name.clone();
        if self.namespaces.get(&*name) == Some(&ns.labels) {
            return;
        }
        self.namespaces.insert(name.clone(), ns.labels);
        self.namespace_changed(&name);
    }

    fn delete_namespace(&mut self, name: &str) {
        // (Namespaces are keyed by name alone.)
        if self.namespaces.remove(name).is_some() {
            self.namespace_changed(name);
        }
    }

    /// Everything in `namespace` may have become visible or invisible.
    fn namespace_changed(&mut self, namespace: &str) {
        // Exposed: it exists and is served; then `<ns>.svc` is NODATA even without a Service.
        let exists = self.namespaces.contains_key(namespace);
        self.index.set_namespace_exposed(namespace, exists && self.visible(namespace));
        if self.opts.namespace_labels.is_none() {
            return; // what is served in it does not depend on the Namespace object
        }
        let imports: Vec<ObjectKey> = self.imports.keys().filter(|k| *k.namespace == *namespace).cloned().collect();
        self.dirty_imports.extend(imports);
        let svcs: Vec<ObjectKey> = self.services.keys().filter(|k| *k.namespace == *namespace).cloned().collect();
        self.dirty.extend(svcs);
        let sets: Vec<ObjectKey> = self.statefulsets.keys().filter(|k| *k.namespace == *namespace).cloned().collect();
        self.dirty_sets.extend(sets);
        if self.opts.pods_verified {
            for name in self.pods.get(namespace).into_iter().flat_map(HashMap::keys) {
                self.dirty_pods.insert(ObjectKey::new(namespace, &**name));
            }
        }
    }

    /// Applies one event. Call [`State::flush`] afterwards (events may be batched before it).
    pub fn handle(&mut self, event: SourceEvent) {
        match event {
            SourceEvent::Service(c) => self.change(
                KIND_SERVICES,
                c,
                Self::apply_service,
                Self::delete_service,
                |s| s.key.clone(),
                |st, seen| st.services.keys().filter(|k| !seen.contains(*k)).cloned().collect(),
            ),
            SourceEvent::Pod(_) if !self.opts.watches.pods => {}
            SourceEvent::Pod(c) => self.change(
                KIND_PODS,
                c,
                Self::apply_pod,
                Self::delete_pod,
                |p| p.key.clone(),
                |st, seen| {
                    let all = st.pods.iter().flat_map(|(ns, m)| m.keys().map(|n| ObjectKey::new(&**ns, &**n)));
                    all.filter(|k| !seen.contains(k)).collect()
                },
            ),
            SourceEvent::Slice(c) => self.change(
                KIND_SLICES,
                c,
                Self::apply_slice,
                Self::delete_slice,
                |s| s.key.clone(),
                |st, seen| st.slices.keys().filter(|k| !seen.contains(*k)).cloned().collect(),
            ),
            SourceEvent::Namespace(_) if !self.opts.watches.namespaces => {}
            SourceEvent::Namespace(c) => self.change(
                KIND_NAMESPACES,
                c,
                Self::apply_namespace,
                |st, k| st.delete_namespace(&k.name),
                |n| n.key.clone(),
                |st, seen| {
                    let all = st.namespaces.keys().map(|n| ObjectKey::new(n.clone(), n.clone()));
                    all.filter(|k| !seen.contains(k)).collect()
                },
            ),
            SourceEvent::Node(_) if !self.opts.watches.nodes => {}
            SourceEvent::Node(c) => self.change(
                KIND_NODES,
                c,
                Self::apply_node,
                |st, k| st.delete_node(&k.name),
                |n| n.key.clone(),
                |st, seen| {
                    st.nodes.keys().map(|n| ObjectKey::new("", n.clone())).filter(|k| !seen.contains(k)).collect()
                },
            ),
            SourceEvent::ServiceImport(_) if !self.opts.watches.imports => {}
            SourceEvent::ServiceImport(c) => self.change(
                KIND_SERVICE_IMPORTS,
                c,
                Self::apply_import,
                Self::delete_import,
                |i| i.key.clone(),
                |st, seen| st.imports.keys().filter(|k| !seen.contains(*k)).cloned().collect(),
            ),
            SourceEvent::StatefulSet(_) if !self.opts.watches.statefulsets => {}
            SourceEvent::StatefulSet(c) => self.change(
                KIND_STATEFULSETS,
                c,
                Self::apply_statefulset,
                Self::delete_statefulset,
                |s| s.key.clone(),
                |st, seen| st.statefulsets.keys().filter(|k| !seen.contains(*k)).cloned().collect(),
            ),
        }
    }

    /// Publishes the multicluster names into `index` (the names of the multicluster zones).
    pub fn with_multicluster(mut self, index: Arc<Index>) -> Self {
        self.multicluster = Some(index);
        self
    }

    fn apply_import(&mut self, imp: ServiceImportInfo) {
        if self.imports.get(&imp.key) == Some(&imp) {
            return;
        }
        self.dirty_imports.insert(imp.key.clone());
        self.imports.insert(imp.key.clone(), imp);
    }

    fn delete_import(&mut self, key: &ObjectKey) {
        if self.imports.remove(key).is_some() {
            self.dirty_imports.insert(key.clone());
        }
    }

    /// The ServiceImport a multicluster slice carries endpoints of.
    fn slice_import(slice: &SliceInfo) -> Option<ObjectKey> {
        slice.imported().map(|(svc, _)| ObjectKey::new(slice.key.namespace.clone(), svc))
    }

    /// Publishes (or withdraws) the multicluster names of ServiceImport `key`.
    fn recompute_import(&mut self, key: &ObjectKey) -> bool {
        let Some(mc) = self.multicluster.clone() else { return false };
        let owner = Owner::Service(key.clone());
        match self.imports.get(key) {
            Some(imp) if self.visible(&key.namespace) => {
                let mut endpoints = Vec::new();
                for name in self.slices_by_import.get(key).into_iter().flatten() {
                    if let Some(slice) = self.slices.get(&ObjectKey::new(key.namespace.clone(), name.clone())) {
                        let cluster: Option<Arc<str>> = slice.imported().and_then(|(_, c)| c).map(Arc::from);
                        endpoints.extend(slice.endpoints.iter().map(|e| (cluster.clone(), e.clone())));
                    }
                }
                let (published, skipped) = records::import_records(imp, &endpoints, &self.opts.records);
                for _ in 0..skipped.0 {
                    mc.count_skipped();
                }
                mc.publish(&owner, published)
            }
            _ => mc.withdraw(&owner),
        }
    }

    fn apply_node(&mut self, node: NodeInfo) {
        let name = node.key.name.clone();
        if self.nodes.get(&name) == Some(&node.zone) {
            return;
        }
        self.nodes.insert(name, node.zone);
        self.zones_changed();
    }

    fn delete_node(&mut self, name: &str) {
        // A node without a zone (or one only pods named) changes no answer when it goes.
        if self.nodes.remove(name).flatten().is_some() {
            self.zones_changed();
        }
    }

    /// A node's zone changed (rare): every headless Service recomputes its zone-pinned names.
    fn zones_changed(&mut self) {
        let headless: Vec<ObjectKey> = self
            .services
            .iter()
            .filter(|(_, s)| matches!(s.kind, ServiceKind::Headless))
            .map(|(k, _)| k.clone())
            .collect();
        self.dirty.extend(headless);
    }

    /// The governing Service a StatefulSet names (its namespace, `spec.serviceName`).
    fn governing(set: &StatefulSetInfo) -> ObjectKey {
        ObjectKey::new(set.key.namespace.clone(), set.service_name.as_str())
    }

    fn apply_statefulset(&mut self, set: StatefulSetInfo) {
        let key = set.key.clone();
        if self.statefulsets.get(&key) == Some(&set) {
            return;
        }
        if let Some(old) = self.statefulsets.get(&key) {
            let svc = Self::governing(old);
            if let Some(names) = self.sets_by_service.get_mut(&svc) {
                names.remove(&key.name);
                if names.is_empty() {
                    self.sets_by_service.remove(&svc);
                }
            }
        }
        self.sets_by_service.entry(Self::governing(&set)).or_default().insert(key.name.clone());
        self.statefulsets.insert(key.clone(), set);
        self.dirty_sets.insert(key);
    }

    fn delete_statefulset(&mut self, key: &ObjectKey) {
        if let Some(old) = self.statefulsets.remove(key) {
            let svc = Self::governing(&old);
            if let Some(names) = self.sets_by_service.get_mut(&svc) {
                names.remove(&key.name);
                if names.is_empty() {
                    self.sets_by_service.remove(&svc);
                }
            }
            self.dirty_sets.insert(key.clone());
        }
    }

    /// The StatefulSets governed by Service `svc` must recompute what they expect.
    fn service_governs_changed(&mut self, svc: &ObjectKey) {
        for name in self.sets_by_service.get(svc).into_iter().flatten() {
            self.dirty_sets.insert(ObjectKey::new(svc.namespace.clone(), name.clone()));
        }
    }

    /// Notes which of StatefulSet `key`'s expected names have no address now, and since when.
    fn refresh_gaps(&mut self, key: &ObjectKey) {
        let now = std::time::Instant::now();
        let Some(set) = self.statefulsets.get(key) else {
            self.gaps.remove(key);
            return;
        };
        let expects = self.services.get(&Self::governing(set)).is_some_and(|s| matches!(s.kind, ServiceKind::Headless));
        if !expects {
            self.gaps.remove(key);
            return;
        }
        let base = format!("{}.{}.svc", set.service_name, key.namespace);
        let range = set.ordinals();
        let mut gaps = self.gaps.remove(key).unwrap_or_default();
        gaps.retain(|i, _| range.contains(i));
        for i in range {
            if self.index.lookup(&format!("{}-{i}.{base}", key.name)).is_some() {
                gaps.remove(&i);
            } else {
                gaps.entry(i).or_insert(now);
            }
        }
        if !gaps.is_empty() {
            self.gaps.insert(key.clone(), gaps);
        }
    }

    /// Publishes what StatefulSet `key` expects: `<set>-<i>.<serviceName>.<ns>.svc` for its
    /// ordinals, when the governing Service exists, is headless and its namespace is served.
    fn recompute_set(&mut self, key: &ObjectKey) -> bool {
        let expect = self.statefulsets.get(key).and_then(|set| {
            let svc = self.services.get(&Self::governing(set))?;
            let served = matches!(svc.kind, ServiceKind::Headless)
                && !self.opts.records.noendpoints
                && self.visible(&key.namespace)
                && valid_label(&key.name)
                && !set.ordinals().is_empty();
            served.then(|| (Arc::from(format!("{}.{}.svc", set.service_name, key.namespace)), set.ordinals()))
        });
        self.index.set_expected(&key.namespace, &key.name, expect)
    }

    /// One change to one kind. A list (`ListBegin`, `Listed`..., `ListEnd`, or a whole `Reset`)
    /// applies each object as it comes (an unchanged one is a no-op, so nothing blinks) and at its
    /// end deletes every object it did not contain.
    fn change<T>(
        &mut self,
        kind: &'static str,
        change: Change<T>,
        apply: fn(&mut Self, T),
        delete: fn(&mut Self, &ObjectKey),
        key: fn(&T) -> ObjectKey,
        unlisted: fn(&Self, &HashSet<ObjectKey>) -> Vec<ObjectKey>,
    ) {
        match change {
            Change::Apply(t) => {
                self.live = true;
                apply(self, t);
            }
            Change::Delete(k) => {
                self.live = true;
                delete(self, &k);
            }
            Change::ListBegin => {
                self.listing.insert(kind, HashSet::new());
            }
            Change::Listed(t) => {
                self.live = false;
                if let Some(seen) = self.listing.get_mut(kind) {
                    seen.insert(key(&t));
                }
                apply(self, t);
            }
            Change::Kept(k) => {
                if let Some(seen) = self.listing.get_mut(kind) {
                    seen.insert(k);
                }
            }
            Change::ListEnd => {
                // Only the keys to delete are collected: a copy of every key, next to the keys
                // seen, would be the relist's memory peak at 150,000 pods.
                let seen = self.listing.remove(kind).unwrap_or_default();
                let gone = unlisted(self, &seen);
                drop(seen);
                for k in gone {
                    delete(self, &k);
                }
                self.mark_synced(kind);
            }
            Change::Reset(all) => {
                self.change(kind, Change::ListBegin, apply, delete, key, unlisted);
                for t in all {
                    self.change(kind, Change::Listed(t), apply, delete, key, unlisted);
                }
                self.change(kind, Change::ListEnd, apply, delete, key, unlisted);
            }
        }
    }

    /// Recomputes and publishes every Service touched since the last flush.
    pub fn flush(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        let mut triggers = std::mem::take(&mut self.triggers);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut changed = 0usize;
        for key in &dirty {
            if self.recompute(key) {
                changed += 1;
                for name in self.sets_by_service.get(key).into_iter().flatten() {
                    self.dirty_sets.insert(ObjectKey::new(key.namespace.clone(), name.clone()));
                }
                if let Some((at, source)) = triggers.remove(key) {
                    let seconds = (now_ms - at).max(0) as f64 / 1000.0;
                    crate::metrics::metrics()
                        .programming_latency
                        .get_or_create(&crate::metrics::ProgrammingLabels { source })
                        .observe(seconds);
                }
            }
        }
        for key in std::mem::take(&mut self.dirty_pods) {
            if self.recompute_pod(&key) {
                changed += 1;
            }
        }
        for key in std::mem::take(&mut self.dirty_sets) {
            self.recompute_set(&key);
            self.refresh_gaps(&key);
        }
        for key in std::mem::take(&mut self.dirty_imports) {
            if self.recompute_import(&key) {
                changed += 1;
            }
        }
        if changed > 0 {
            debug!(services = changed, serial = self.index.serial(), "published changes");
        }
        if !self.index.is_synced() && self.opts.watches.kinds().iter().all(|k| self.synced.contains(k)) {
            self.index.set_synced(true);
            if let Some(mc) = &self.multicluster {
                mc.set_synced(true);
            }
            info!(names = self.index.len(), services = self.services.len(), "first full sync complete; answering");
        }
    }

    fn mark_synced(&mut self, kind: &'static str) {
        self.synced.insert(kind);
        self.health.set_synced(kind);
    }

    /// Whether `svc` takes its endpoints from the pods it selects (else from its slices).
    fn uses_pods(&self, svc: &ServiceInfo) -> bool {
        self.mode == EndpointsFrom::Pods && svc.selector.is_some()
    }

    fn recompute_pod(&mut self, key: &ObjectKey) -> bool {
        let owner = Owner::Pod(key.clone());
        match self.pod(&key.namespace, &key.name) {
            Some(pod) if self.opts.pods_verified && self.visible(&key.namespace) => {
                self.index.publish(&owner, pod_records(&key.namespace, pod, &self.opts.records))
            }
            _ => self.index.withdraw(&owner),
        }
    }

    fn apply_service(&mut self, svc: ServiceInfo) {
        let key = svc.key.clone();
        let old = self.services.get(&key).map(|b| &**b);
        if old == Some(&svc) {
            return;
        }
        let selector_changed = old.map(|o| &o.selector) != Some(&svc.selector);
        if selector_changed {
            if let Some(old) = old.cloned() {
                self.unindex_selector(&old);
            }
            self.members.remove(&key);
            if self.mode == EndpointsFrom::Pods
                && let Some(sel) = &svc.selector
            {
                let (k, v) = sel.iter().next().expect("selectors are non-empty");
                let names = self.by_selector.entry(selector_slot(&key.namespace, k, v)).or_default();
                if let Err(i) = names.binary_search_by(|n| (**n).cmp(&key.name)) {
                    names.insert(i, Box::from(&*key.name));
                }
                let mut members: Vec<Arc<str>> = self
                    .pods
                    .get(&*key.namespace)
                    .into_iter()
                    .flatten()
                    .filter(|(name, pod)| pod.matches(name, sel))
                    .map(|(name, _)| name.clone())
                    .collect();
                members.sort_unstable();
                if !members.is_empty() {
                    self.members.insert(key.clone(), members);
                }
            }
        }
        self.services.insert(key.clone(), Box::new(svc));
        self.service_governs_changed(&key);
        self.dirty.insert(key);
    }

    fn unindex_selector(&mut self, svc: &ServiceInfo) {
        if let Some((k, v)) = svc.selector.as_ref().and_then(|s| s.iter().next()) {
            let slot = selector_slot(&svc.key.namespace, k, v);
            if let Some(names) = self.by_selector.get_mut(&slot) {
                names.retain(|n| **n != *svc.key.name);
                if names.is_empty() {
                    self.by_selector.remove(&slot);
                }
            }
        }
    }

    fn delete_service(&mut self, key: &ObjectKey) {
        if let Some(old) = self.services.remove(key) {
            self.unindex_selector(&old);
            self.members.remove(key);
            self.dirty.insert(key.clone());
            self.service_governs_changed(key);
        }
    }

    /// Services in `ns` whose first selector pair is among `labels`.
    fn candidates<'a>(&self, ns: &str, labels: impl Iterator<Item = (&'a str, &'a str)>, out: &mut BTreeSet<String>) {
        for (k, v) in labels {
            if let Some(names) = self.by_selector.get(&selector_slot(ns, k, v)) {
                out.extend(names.iter().map(|n| n.to_string()));
            }
        }
    }

    /// The topology zone of pod `namespace/name`: its node's.
    fn zone_of_pod(&self, namespace: &str, name: &str) -> Option<Arc<str>> {
        let node = self.node_numbers.name(self.pod(namespace, name)?.node)?;
        self.nodes.get(node).cloned().flatten()
    }

    /// The number of node `name` for a pod's facts: a new one when the node is new, after
    /// renumbering the nodes pods name when every number is taken (0, no zone, if they still are).
    fn node_number(&mut self, name: Arc<str>) -> u16 {
        if let Some(n) = self.node_numbers.get(&name) {
            return n;
        }
        if self.node_numbers.full() {
            let held = self.pods.values_mut().flat_map(HashMap::values_mut).map(|f| &mut f.node);
            self.node_numbers.renumber(held);
        }
        self.node_numbers.add(name.clone()).unwrap_or_else(|| {
            tracing::warn!(node = %name, "too many nodes to track their zones: this node's pods get no zone");
            0
        })
    }

    /// The pod `namespace/name`.
    fn pod(&self, namespace: &str, name: &str) -> Option<&PodFacts> {
        self.pods.get(namespace).and_then(|m| m.get(name))
    }

    fn apply_pod(&mut self, pod: PodInfo) {
        let PodInfo { key, mut facts, changed_at, node } = pod;
        if self.opts.records.zonal {
            facts.node = node.map_or(0, |n| self.node_number(n));
        }
        let held = self.pods.get(&*key.namespace).and_then(|m| m.get_key_value(&*key.name));
        if held.is_some_and(|(_, old)| *old == facts) {
            return;
        }
        let name: Arc<str> = held.map_or_else(|| key.name.clone(), |(name, _)| name.clone());
        let old_shape = held.map(|(_, old)| old.shape.clone());
        facts.shape = self.shapes.intern(facts.shape);
        let mut cands = BTreeSet::new();
        if let Some(old) = &old_shape {
            self.candidates(&key.namespace, old.labels(&name), &mut cands);
        }
        self.candidates(&key.namespace, facts.shape.labels(&name), &mut cands);
        for svc_name in cands {
            let svc_key = ObjectKey::new(key.namespace.clone(), svc_name);
            let Some(sel) = self.services.get(&svc_key).and_then(|s| s.selector.as_ref()) else {
                continue;
            };
            let selected = facts.matches(&name, sel);
            let was = match self.members.get_mut(&svc_key).map(|m| (m.binary_search(&name), m)) {
                Some((Ok(i), members)) => {
                    if !selected {
                        members.remove(i);
                        if members.is_empty() {
                            self.members.remove(&svc_key);
                        }
                    }
                    true
                }
                Some((Err(i), members)) => {
                    if selected {
                        members.insert(i, name.clone());
                    }
                    false
                }
                None => {
                    if selected {
                        self.members.insert(svc_key.clone(), vec![name.clone()]);
                    }
                    false
                }
            };
            if selected || was {
                if self.live
                    && let Some(at) = changed_at
                {
                    let slot = self.triggers.entry(svc_key.clone()).or_insert((at, "pods"));
                    slot.0 = slot.0.min(at);
                }
                self.dirty.insert(svc_key);
            }
        }
        if self.opts.pods_verified {
            self.dirty_pods.insert(key.clone());
        }
        match self.pods.get_mut(&*key.namespace) {
            Some(m) => {
                m.insert(name, facts);
            }
            None => {
                self.pods.insert(key.namespace.clone(), HashMap::from([(name, facts)]));
            }
        }
    }

    fn delete_pod(&mut self, key: &ObjectKey) {
        let Some(ns_pods) = self.pods.get_mut(&*key.namespace) else {
            return;
        };
        let Some((name, old)) = ns_pods.remove_entry(&*key.name) else {
            return;
        };
        if ns_pods.is_empty() {
            self.pods.remove(&*key.namespace);
        }
        if self.opts.pods_verified {
            self.dirty_pods.insert(key.clone());
        }
        let mut cands = BTreeSet::new();
        self.candidates(&key.namespace, old.shape.labels(&name), &mut cands);
        for svc_name in cands {
            let svc_key = ObjectKey::new(key.namespace.clone(), svc_name);
            if let Some(members) = self.members.get_mut(&svc_key)
                && let Ok(i) = members.binary_search(&name)
            {
                members.remove(i);
                if members.is_empty() {
                    self.members.remove(&svc_key);
                }
                self.dirty.insert(svc_key);
            }
        }
    }

    fn slice_owner(slice: &SliceInfo) -> Option<ObjectKey> {
        slice.service.as_ref().map(|s| ObjectKey::new(slice.key.namespace.clone(), s.clone()))
    }

    fn apply_slice(&mut self, slice: SliceInfo) {
        let key = slice.key.clone();
        if self.slices.get(&key) == Some(&slice) {
            return;
        }
        if let Some(old) = self.slices.get(&key).and_then(Self::slice_import) {
            if let Some(set) = self.slices_by_import.get_mut(&old) {
                set.remove(&key.name);
            }
            self.dirty_imports.insert(old);
        }
        if let Some(imp) = Self::slice_import(&slice) {
            self.slices_by_import.entry(imp.clone()).or_default().insert(key.name.clone());
            self.dirty_imports.insert(imp);
        }
        if let Some(old) = self.slices.get(&key).and_then(Self::slice_owner) {
            if let Some(set) = self.slices_by_service.get_mut(&old) {
                set.remove(&key.name);
            }
            self.dirty.insert(old);
        }
        if let Some(owner) = Self::slice_owner(&slice) {
            if self.live
                && let Some(at) = slice.changed_at
            {
                let slot = self.triggers.entry(owner.clone()).or_insert((at, "endpointslices"));
                slot.0 = slot.0.min(at);
            }
            self.slices_by_service.entry(owner.clone()).or_default().insert(key.name.clone());
            self.dirty.insert(owner);
        }
        self.slices.insert(key, slice);
    }

    fn delete_slice(&mut self, key: &ObjectKey) {
        let old = self.slices.remove(key);
        if let Some(imp) = old.as_ref().and_then(Self::slice_import) {
            if let Some(set) = self.slices_by_import.get_mut(&imp) {
                set.remove(&key.name);
                if set.is_empty() {
                    self.slices_by_import.remove(&imp);
                }
            }
            self.dirty_imports.insert(imp);
        }
        if let Some(old) = old
            && let Some(owner) = Self::slice_owner(&old)
        {
            if let Some(set) = self.slices_by_service.get_mut(&owner) {
                set.remove(&key.name);
                if set.is_empty() {
                    self.slices_by_service.remove(&owner);
                }
            }
            self.dirty.insert(owner);
        }
    }

    /// The endpoints of `svc`, from its pods or its slices.
    fn endpoints(&self, svc: &ServiceInfo) -> Vec<Endpoint> {
        let needed = match svc.kind {
            ServiceKind::Headless => true,
            ServiceKind::ClusterIp(_) => {
                self.opts.records.ignore_empty_service
                    || self.opts.records.endpoint_names == records::EndpointNames::All
            }
            ServiceKind::ExternalName(_) => false,
        };
        if !needed || self.opts.records.noendpoints {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.uses_pods(svc) {
            for name in self.members.get(&svc.key).into_iter().flatten() {
                if let Some(pod) = self.pod(&svc.key.namespace, name) {
                    let zone = self.opts.records.zonal.then(|| self.zone_of_pod(&svc.key.namespace, name)).flatten();
                    out.extend(pod.endpoints_for(&svc.key.namespace, name, svc).into_iter().map(|mut e| {
                        e.zone.clone_from(&zone);
                        e
                    }));
                }
            }
        } else {
            for name in self.slices_by_service.get(&svc.key).into_iter().flatten() {
                if let Some(slice) = self.slices.get(&ObjectKey::new(svc.key.namespace.clone(), name.clone())) {
                    out.extend(slice.endpoints.iter().cloned());
                }
            }
        }
        out
    }

    fn recompute(&mut self, key: &ObjectKey) -> bool {
        let owner = Owner::Service(key.clone());
        match self.services.get(key) {
            // A filtered-out namespace is invisible: its names are NXDOMAIN, never NODATA.
            Some(svc) if self.visible(&key.namespace) => {
                let (published, skipped) = service_records(svc, &self.endpoints(svc), &self.opts.records);
                for _ in 0..skipped.0 {
                    self.index.count_skipped();
                }
                let changed = self.index.publish(&owner, published);
                if changed {
                    self.names_changed.insert(key.clone(), std::time::Instant::now());
                }
                changed
            }
            _ => {
                self.names_changed.remove(key);
                self.index.withdraw(&owner)
            }
        }
    }
}

/// The `State::by_selector` key of a namespace and a selector's first pair. NUL appears in
/// none of the three (DNS-1123 names, label keys and values).
fn selector_slot(namespace: &str, key: &str, value: &str) -> Box<str> {
    [namespace, key, value].join("\0").into_boxed_str()
}

/// Values many objects hold alike, each held once. A value nobody else holds any more is dropped at the next
/// sweep, which runs once as many values have been interned since the last one as the set holds
/// (amortised O(1) per value).
#[derive(Debug)]
struct Interner<T: ?Sized> {
    set: HashSet<Arc<T>>,
    since_sweep: usize,
}

impl<T: ?Sized> Default for Interner<T> {
    fn default() -> Self {
        Self { set: HashSet::new(), since_sweep: 0 }
    }
}

impl<T: ?Sized + Eq + Hash> Interner<T> {
    /// The held value equal to `value`, or `value` itself, now held.
    fn intern(&mut self, value: Arc<T>) -> Arc<T> {
        self.since_sweep += 1;
        if self.since_sweep > self.set.len().max(1024) {
            self.set.retain(|v| Arc::strong_count(v) > 1);
            self.since_sweep = 0;
        }
        match self.set.get(&value) {
            Some(held) => held.clone(),
            None => {
                self.set.insert(value.clone());
                value
            }
        }
    }
}

/// Feeds events from `rx` into `state` until every sender is gone. Events already queued are
/// applied together before one flush, so a burst costs one publish per Service. Explanations
/// asked on `explain` are answered between two batches, from the state flushed last.
pub async fn run(
    mut rx: mpsc::Receiver<SourceEvent>,
    mut explain: Option<mpsc::Receiver<explain::ExplainRequest>>,
    mut state: State,
) {
    loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            Some(request) = async { match explain.as_mut() { Some(e) => e.recv().await, None => std::future::pending().await } } => {
                let _ = request.reply.send(state.explain(&request.question));
                continue;
            }
        };
        let Some(event) = event else { break };
        state.handle(event);
        let mut batched = 1;
        while batched < 1024 {
            match rx.try_recv() {
                Ok(event) => {
                    state.handle(event);
                    batched += 1;
                }
                Err(_) => break,
            }
        }
        state.flush();
    }
    debug!("reconciler stopped: all sources ended");
}

/// Node names as small numbers, so that each pod holds its node in two bytes of its facts
/// ([`PodFacts::node`]) rather than in a map entry of its own (which cost 14 MiB at 150,000 pods).
/// Numbers are never reused one by one; when all are taken, the nodes pods still name are
/// numbered afresh.
#[derive(Debug, Default)]
struct NodeNumbers {
    numbers: HashMap<Arc<str>, u16>,
    /// Number `n` names `names[n - 1]`.
    names: Vec<Arc<str>>,
}

impl NodeNumbers {
    fn get(&self, name: &str) -> Option<u16> {
        self.numbers.get(name).copied()
    }

    fn name(&self, number: u16) -> Option<&Arc<str>> {
        self.names.get(usize::from(number).checked_sub(1)?)
    }

    fn full(&self) -> bool {
        self.names.len() >= usize::from(u16::MAX)
    }

    /// Numbers a new name; `None` when every number is taken.
    fn add(&mut self, name: Arc<str>) -> Option<u16> {
        let n = u16::try_from(self.names.len() + 1).ok()?;
        self.numbers.insert(name.clone(), n);
        self.names.push(name);
        Some(n)
    }

    /// Keeps only the nodes `held` numbers name, numbered afresh, and rewrites those numbers.
    fn renumber<'a>(&mut self, held: impl Iterator<Item = &'a mut u16>) {
        let old = std::mem::take(self);
        for n in held {
            if let Some(name) = old.name(*n) {
                *n = self.get(name).or_else(|| self.add(name.clone())).unwrap_or(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Pod, Service};

    #[test]
    fn node_numbers_when_all_are_taken_keep_only_the_nodes_pods_name() {
        let mut numbers = NodeNumbers::default();
        let mut held: Vec<u16> = (0..u16::MAX).map(|i| numbers.add(format!("node-{i}").into()).unwrap()).collect();
        assert!(numbers.full() && numbers.add("one-more".into()).is_none());
        assert_eq!(numbers.name(held[7]).map(|n| &**n), Some("node-7"));
        // Pods now name only three of those nodes (two pods share one), and one names none.
        let mut pods = [held[7], held[40_000], held[7], 0, held[65_534]];
        held.clear();
        numbers.renumber(pods.iter_mut());
        let names: Vec<Option<&str>> = pods.iter().map(|n| numbers.name(*n).map(|s| &**s)).collect();
        assert_eq!(names, [Some("node-7"), Some("node-40000"), Some("node-7"), None, Some("node-65534")]);
        assert!(!numbers.full() && numbers.get("node-8").is_none());
        assert_eq!(numbers.add("node-x".into()), Some(4));
    }

    fn state(mode: EndpointsFrom) -> (State, Arc<Index>) {
        let index = Arc::new(Index::new());
        (State::new(index.clone(), Arc::new(Health::default()), ReconcileOptions::with_mode(mode)), index)
    }

    fn svc(yaml: &str) -> ServiceInfo {
        ServiceInfo::from_k8s(&serde_saphyr::from_str::<Service>(yaml).unwrap()).unwrap()
    }

    fn pod(name: &str, ip: &str, ready: bool) -> PodInfo {
        let yaml = format!(
            "metadata: {{name: {name}, namespace: default, labels: {{app: nginx}}}}
spec: {{hostname: {name}, subdomain: nginx, containers: []}}
status: {{phase: Running, podIP: {ip}, conditions: [{{type: Ready, status: '{}'}}]}}",
            if ready { "True" } else { "False" }
        );
        PodInfo::from_k8s(&serde_saphyr::from_str::<Pod>(&yaml).unwrap()).unwrap()
    }

    const NGINX: &str = "metadata: {name: nginx, namespace: default}\nspec: {clusterIP: None, selector: {app: nginx}}";

    fn a(index: &Index, name: &str) -> Option<Vec<String>> {
        index.lookup(name).map(|d| d.v4.iter().map(|ip| ip.to_string()).collect())
    }

    fn sync_all(st: &mut State, services: Vec<ServiceInfo>, pods: Vec<PodInfo>) {
        st.handle(SourceEvent::Service(Change::Reset(services)));
        st.handle(SourceEvent::Pod(Change::Reset(pods)));
        st.handle(SourceEvent::Slice(Change::Reset(vec![])));
        st.flush();
    }

    #[test]
    fn index_is_synced_only_after_every_kind_listed() {
        let (mut st, idx) = state(EndpointsFrom::Pods);
        st.handle(SourceEvent::Service(Change::Reset(vec![])));
        st.handle(SourceEvent::Pod(Change::Reset(vec![])));
        st.flush();
        assert!(!idx.is_synced());
        st.handle(SourceEvent::Slice(Change::Reset(vec![])));
        st.flush();
        assert!(idx.is_synced());
    }

    #[test]
    fn pod_recreated_with_new_ip_replaces_the_old_ip() {
        let (mut st, idx) = state(EndpointsFrom::Pods);
        sync_all(&mut st, vec![svc(NGINX)], vec![pod("web-0", "10.0.0.1", true), pod("web-1", "10.0.0.2", true)]);
        assert_eq!(a(&idx, "web-0.nginx.default.svc").unwrap(), ["10.0.0.1"]);
        st.handle(SourceEvent::Pod(Change::Delete(ObjectKey::new("default", "web-0"))));
        st.flush();
        assert_eq!(a(&idx, "web-0.nginx.default.svc"), None);
        assert_eq!(a(&idx, "nginx.default.svc").unwrap(), ["10.0.0.2"]);
        st.handle(SourceEvent::Pod(Change::Apply(pod("web-0", "10.0.0.9", false))));
        st.flush();
        assert_eq!(a(&idx, "web-0.nginx.default.svc"), None, "not ready yet");
        st.handle(SourceEvent::Pod(Change::Apply(pod("web-0", "10.0.0.9", true))));
        st.flush();
        assert_eq!(a(&idx, "web-0.nginx.default.svc").unwrap(), ["10.0.0.9"]);
        assert_eq!(a(&idx, "nginx.default.svc").unwrap(), ["10.0.0.2", "10.0.0.9"]);
    }

    #[test]
    fn pods_share_one_interned_shape_and_unused_shapes_are_swept() {
        let (mut st, _idx) = state(EndpointsFrom::Pods);
        sync_all(&mut st, vec![svc(NGINX)], vec![pod("web-0", "10.0.0.1", true), pod("web-1", "10.0.0.2", true)]);
        let ns = &st.pods["default"];
        assert!(Arc::ptr_eq(&ns["web-0"].shape, &ns["web-1"].shape));
        let relabelled = |name: &str, app: &str| {
            let mut p = pod(name, "10.0.0.1", true);
            let labels = BTreeMap::from([("app".to_owned(), app.to_owned())]);
            p.facts.shape = Arc::new(PodShape::new(name, labels, Some(name.into()), Some("nginx".into()), vec![]));
            p
        };
        for p in ["web-0", "web-1"] {
            st.handle(SourceEvent::Pod(Change::Apply(relabelled(p, "other"))));
        }
        let interned = |st: &State, app: &str| st.shapes.set.iter().any(|s| s.label("app", "x") == Some(app));
        assert!(interned(&st, "nginx"), "not swept yet");
        for i in 0..1100 {
            st.shapes.intern(relabelled("x", &i.to_string()).facts.shape);
        }
        assert!(!interned(&st, "nginx"), "no pod holds it any more");
        assert!(interned(&st, "other"));
    }

    #[test]
    fn relist_removes_objects_that_were_not_relisted() {
        let (mut st, idx) = state(EndpointsFrom::Pods);
        sync_all(&mut st, vec![svc(NGINX)], vec![pod("web-0", "10.0.0.1", true), pod("web-1", "10.0.0.2", true)]);
        st.handle(SourceEvent::Pod(Change::Reset(vec![pod("web-1", "10.0.0.2", true)])));
        st.flush();
        assert_eq!(a(&idx, "web-0.nginx.default.svc"), None);
        assert_eq!(a(&idx, "nginx.default.svc").unwrap(), ["10.0.0.2"]);
        st.handle(SourceEvent::Service(Change::Reset(vec![])));
        st.flush();
        assert_eq!(a(&idx, "nginx.default.svc"), None);
        assert!(idx.lookup("default.svc").is_none());
    }

    #[test]
    fn relabelled_pod_leaves_the_service() {
        let (mut st, idx) = state(EndpointsFrom::Pods);
        sync_all(&mut st, vec![svc(NGINX)], vec![pod("web-0", "10.0.0.1", true)]);
        let mut moved = pod("web-0", "10.0.0.1", true);
        let other = BTreeMap::from([("app".to_owned(), "other".to_owned())]);
        moved.facts.shape = Arc::new(PodShape::new("web-0", other, None, None, vec![]));
        st.handle(SourceEvent::Pod(Change::Apply(moved)));
        st.flush();
        assert_eq!(a(&idx, "nginx.default.svc"), None);
    }

    #[test]
    fn selectorless_service_uses_its_slices_and_endpointslices_mode_ignores_pods() {
        for mode in [EndpointsFrom::Pods, EndpointsFrom::Endpointslices] {
            let (mut st, idx) = state(mode);
            let db = svc("metadata: {name: db, namespace: default}\nspec: {clusterIP: None}");
            let slice = |name: &str, ips: &[&str]| SliceInfo {
                key: ObjectKey::new("default", name),
                service: Some("db".into()),
                endpoints: ips
                    .iter()
                    .map(|ip| Endpoint {
                        ip: ip.parse().unwrap(),
                        hostname: None,
                        ready: true,
                        pod_name: None,
                        ports: vec![],
                        zone: None,
                    })
                    .collect(),
                labels: Default::default(),
                changed_at: None,
            };
            sync_all(&mut st, vec![db, svc(NGINX)], vec![pod("web-0", "10.0.0.1", true)]);
            st.handle(SourceEvent::Slice(Change::Apply(slice("db-a", &["10.1.0.1", "10.1.0.2"]))));
            st.handle(SourceEvent::Slice(Change::Apply(slice("db-b", &["10.1.0.2"]))));
            st.flush();
            assert_eq!(a(&idx, "db.default.svc").unwrap(), ["10.1.0.1", "10.1.0.2"]);
            assert_eq!(a(&idx, "10-1-0-2.db.default.svc").unwrap(), ["10.1.0.2"]);
            let nginx = a(&idx, "nginx.default.svc");
            match mode {
                EndpointsFrom::Pods => assert_eq!(nginx.unwrap(), ["10.0.0.1"]),
                EndpointsFrom::Endpointslices => assert_eq!(nginx, None, "no slices for nginx"),
            }
            st.handle(SourceEvent::Slice(Change::Delete(ObjectKey::new("default", "db-a"))));
            st.flush();
            assert_eq!(a(&idx, "db.default.svc").unwrap(), ["10.1.0.2"]);
        }
    }

    #[test]
    fn two_services_selecting_one_pod_keep_their_names_and_ptr_claims_apart() {
        let (mut st, idx) = state(EndpointsFrom::Pods);
        let peers = "metadata: {name: peers, namespace: default}\nspec: {clusterIP: None, selector: {app: nginx}}";
        sync_all(&mut st, vec![svc(NGINX), svc(peers)], vec![pod("web-0", "10.0.0.1", true)]);
        let ip: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(idx.ptr(&ip).unwrap().len(), 2, "one claim per Service");
        st.handle(SourceEvent::Service(Change::Delete(ObjectKey::new("default", "nginx"))));
        st.flush();
        assert_eq!(a(&idx, "web-0.nginx.default.svc"), None);
        assert_eq!(a(&idx, "10-0-0-1.peers.default.svc").unwrap(), ["10.0.0.1"], "the other Service's name stays");
        let left: Vec<String> = idx.ptr(&ip).unwrap().iter().map(|(_, n)| n.to_string()).collect();
        assert_eq!(left, ["10-0-0-1.peers.default.svc"]);
        assert!(idx.lookup("default.svc").is_some());
    }

    #[test]
    fn objects_kept_by_a_list_stay_and_the_others_go() {
        let (mut st, idx) = state(EndpointsFrom::Pods);
        sync_all(&mut st, vec![svc(NGINX)], vec![pod("web-0", "10.0.0.1", true), pod("web-1", "10.0.0.2", true)]);
        st.handle(SourceEvent::Pod(Change::ListBegin));
        st.handle(SourceEvent::Pod(Change::Kept(ObjectKey::new("default", "web-0"))));
        st.handle(SourceEvent::Pod(Change::ListEnd));
        st.flush();
        assert_eq!(a(&idx, "web-0.nginx.default.svc").unwrap(), ["10.0.0.1"], "kept as it was");
        assert_eq!(a(&idx, "web-1.nginx.default.svc"), None, "neither listed nor kept: gone");
    }

    fn sts(name: &str, service: &str, replicas: u32, start: u32) -> StatefulSetInfo {
        StatefulSetInfo {
            key: ObjectKey::new("default", name),
            service_name: service.into(),
            replicas,
            ordinals_start: start,
            selector: None,
        }
    }

    #[test]
    fn statefulsets_expect_their_ordinals_under_a_headless_governing_service() {
        let (mut st, idx) = state(EndpointsFrom::Pods);
        sync_all(&mut st, vec![svc(NGINX)], vec![pod("web-0", "10.0.0.1", true)]);
        let expected = |idx: &Index| -> Vec<String> {
            idx.expectations().iter().map(|(svc, e)| format!("{}{:?}@{svc}", e.set, e.ordinals)).collect()
        };
        st.handle(SourceEvent::StatefulSet(Change::Reset(vec![sts("web", "nginx", 3, 0)])));
        st.flush();
        assert_eq!(expected(&idx), ["web0..3@nginx.default.svc"]);
        assert!(idx.is_expected("web-2.nginx.default.svc"));
        let mut missing = Vec::new();
        idx.missing_expected(|n| missing.push(n.to_owned()));
        assert_eq!(missing, ["web-1.nginx.default.svc", "web-2.nginx.default.svc"], "web-0 answers");
        // Scale down and a moved start: the range follows.
        st.handle(SourceEvent::StatefulSet(Change::Apply(sts("web", "nginx", 2, 5))));
        st.flush();
        assert_eq!(expected(&idx), ["web5..7@nginx.default.svc"]);
        // The governing Service goes, comes back as ClusterIP, then headless again.
        st.handle(SourceEvent::Service(Change::Delete(ObjectKey::new("default", "nginx"))));
        st.flush();
        assert!(expected(&idx).is_empty(), "no Service: nothing expected");
        st.handle(SourceEvent::Service(Change::Apply(svc(
            "metadata: {name: nginx, namespace: default}\nspec: {clusterIP: 10.96.0.9, selector: {app: nginx}}",
        ))));
        st.flush();
        assert!(expected(&idx).is_empty(), "not headless: nothing expected");
        st.handle(SourceEvent::Service(Change::Apply(svc(NGINX))));
        st.flush();
        assert_eq!(expected(&idx), ["web5..7@nginx.default.svc"]);
        // A StatefulSet naming another Service, scaled to zero, or deleted expects nothing.
        st.handle(SourceEvent::StatefulSet(Change::Apply(sts("db", "missing", 3, 0))));
        st.handle(SourceEvent::StatefulSet(Change::Apply(sts("web", "nginx", 0, 0))));
        st.flush();
        assert!(expected(&idx).is_empty());
        st.handle(SourceEvent::StatefulSet(Change::Apply(sts("web", "nginx", 1, 0))));
        st.flush();
        assert_eq!(expected(&idx), ["web0..1@nginx.default.svc"]);
        st.handle(SourceEvent::StatefulSet(Change::Reset(vec![])));
        st.flush();
        assert!(expected(&idx).is_empty(), "a relist without it deletes it");
        assert!(idx.is_synced(), "never waited for");
    }

    #[test]
    fn statefulsets_in_a_namespace_not_served_expect_nothing() {
        let index = Arc::new(Index::new());
        let mut opts = ReconcileOptions::with_mode(EndpointsFrom::Pods);
        opts.namespaces = vec!["other".into()];
        let mut st = State::new(index.clone(), Arc::new(Health::default()), opts);
        sync_all(&mut st, vec![svc(NGINX)], vec![]);
        st.handle(SourceEvent::StatefulSet(Change::Reset(vec![sts("web", "nginx", 3, 0)])));
        st.flush();
        assert!(index.expectations().is_empty());
    }
}
