//! Slim, source-independent views of the Kubernetes objects we serve from, and the pure rules that
//! turn them into DNS records.
//!
//! Both sources (the API watch and the manifests folder) convert `k8s_openapi` objects here, at the
//! edge, with [`ServiceInfo::from_k8s`], [`PodInfo::from_k8s`] and [`SliceInfo::from_k8s`]; only
//! these slim structs are kept in memory. [`crate::reconcile::records`] turns them into served names.

pub mod selector;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Why an object was skipped. Bad cluster data is logged and skipped, never fatal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    /// `metadata.name` is missing.
    #[error("object has no metadata.name")]
    NoName,
}

/// Identifies an object: namespace and name. The texts are `Arc`s, so the copies of a key that
/// the reconciler's maps and the index's owners hold share them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The namespace (`default` when the object named none).
    pub namespace: Arc<str>,
    /// The object's name.
    pub name: Arc<str>,
}

impl ObjectKey {
    /// Builds a key.
    pub fn new(namespace: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Result<ObjectKey, ModelError> {
    let name = meta.name.clone().filter(|n| !n.is_empty()).ok_or(ModelError::NoName)?;
    let namespace = meta.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".to_owned());
    Ok(ObjectKey::new(namespace, name))
}

/// What kind of Service this is, for DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceKind {
    /// `clusterIP: None`: the name answers with the ready endpoints' IPs.
    Headless,
    /// A Service with cluster IPs: the name answers with them.
    ClusterIp(Vec<IpAddr>),
    /// `type: ExternalName`: the name is an alias of this external name.
    ExternalName(String),
}

/// A Service, as much as DNS needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Namespace and name.
    pub key: ObjectKey,
    /// How the name answers.
    pub kind: ServiceKind,
    /// The label selector; `None` (or empty, which the API server drops) means the endpoints come
    /// from EndpointSlices written by someone else.
    pub selector: Option<Labels>,
    /// `spec.publishNotReadyAddresses`: not-ready endpoints are published too.
    pub publish_not_ready: bool,
    /// `spec.ports`.
    pub ports: Vec<ServicePort>,
    /// `metadata.labels` (for the `labels` option when filtering client-side).
    pub labels: BTreeMap<String, String>,
}

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// The port's name; only named ports get `_name._proto` SRV names.
    pub name: Option<String>,
    /// The Service's port number.
    pub port: u16,
    /// `tcp`, `udp` or `sctp` (lower-cased, as the SRV label uses it).
    pub protocol: String,
    /// Where traffic goes on the pod: a number, a container port's name, or (None) the same port.
    pub target_port: Option<TargetPort>,
}

/// A Service port's `targetPort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    /// A port number.
    Number(u16),
    /// The name of a container port.
    Name(String),
}

/// A named container port of a Pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerPort {
    /// Its name.
    pub name: String,
    /// Its number.
    pub port: u16,
    /// Lower-cased protocol.
    pub protocol: String,
}

/// One port of an endpoint, named as the Service port it serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EndpointPort {
    /// The Service port's name (None for an unnamed single port).
    pub name: Option<String>,
    /// The number on the endpoint.
    pub port: u16,
    /// Lower-cased protocol.
    pub protocol: String,
}

/// A StatefulSet, as much as its expected names need: the controller names its pods
/// `<name>-<ordinal>` for every ordinal in `[start, start + replicas)`, and with a headless
/// governing Service each pod's name is `<name>-<ordinal>.<serviceName>.<ns>.svc.<zone>`
/// (Kubernetes docs, StatefulSet "Stable Network ID").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatefulSetInfo {
    /// Namespace and name.
    pub key: ObjectKey,
    /// `spec.serviceName`: the governing Service (empty when unset).
    pub service_name: String,
    /// `spec.replicas` (the API's default, 1, when unset; never negative).
    pub replicas: u32,
    /// `spec.ordinals.start` (default 0).
    pub ordinals_start: u32,
    /// `spec.selector.matchLabels`.
    pub selector: Option<Labels>,
}

impl StatefulSetInfo {
    /// Converts a StatefulSet.
    pub fn from_k8s(sts: &StatefulSet) -> Result<Self, ModelError> {
        let key = key_of(&sts.metadata)?;
        let spec = sts.spec.as_ref();
        let nonneg = |v: Option<i32>, default: u32| v.map_or(default, |v| u32::try_from(v).unwrap_or(0));
        Ok(Self {
            key,
            service_name: spec.and_then(|s| s.service_name.clone()).unwrap_or_default(),
            replicas: nonneg(spec.and_then(|s| s.replicas), 1),
            ordinals_start: nonneg(spec.and_then(|s| s.ordinals.as_ref()).and_then(|o| o.start), 0),
            selector: spec.and_then(|s| s.selector.match_labels.clone()).filter(|m| !m.is_empty()).map(Labels::from),
        })
    }

    /// The ordinals the StatefulSet expects pods for: `[start, start + replicas)`.
    pub fn ordinals(&self) -> std::ops::Range<u32> {
        self.ordinals_start..self.ordinals_start.saturating_add(self.replicas)
    }
}

/// A Namespace, as much as the `namespace-labels` option needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceInfo {
    /// Its name (the key's namespace and name are both this name).
    pub key: ObjectKey,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
}

impl NamespaceInfo {
    /// Converts a Namespace.
    pub fn from_k8s(ns: &Namespace) -> Result<Self, ModelError> {
        Self::from_meta(&ns.metadata)
    }

    /// Converts a Namespace's metadata (all that is read of it; a metadata-only watch sends no
    /// more).
    pub fn from_meta(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Result<Self, ModelError> {
        let name = meta.name.clone().filter(|n| !n.is_empty()).ok_or(ModelError::NoName)?;
        Ok(Self { key: ObjectKey::new(name.clone(), name), labels: meta.labels.clone().unwrap_or_default() })
    }
}

fn protocol(p: Option<&String>) -> String {
    p.map_or("tcp".to_owned(), |p| p.to_ascii_lowercase())
}

fn port_u16(p: i32) -> Option<u16> {
    u16::try_from(p).ok().filter(|p| *p > 0)
}

impl ServiceInfo {
    /// Converts a Service. A ClusterIP Service whose cluster IPs cannot be parsed keeps an empty IP
    /// list (and so serves nothing) rather than being dropped.
    pub fn from_k8s(svc: &Service) -> Result<Self, ModelError> {
        let key = key_of(&svc.metadata)?;
        let spec = svc.spec.clone().unwrap_or_default();
        let kind = if spec.type_.as_deref() == Some("ExternalName") {
            ServiceKind::ExternalName(spec.external_name.clone().unwrap_or_default())
        } else if spec.cluster_ip.as_deref() == Some("None") {
            ServiceKind::Headless
        } else {
            let mut ips: Vec<IpAddr> = spec
                .cluster_ips
                .clone()
                .unwrap_or_default()
                .iter()
                .chain(spec.cluster_ip.iter())
                .filter_map(|s| s.parse().ok())
                .collect();
            ips.sort();
            ips.dedup();
            // Held for every Service: no spare capacity.
            ips.shrink_to_fit();
            ServiceKind::ClusterIp(ips)
        };
        let mut ports: Vec<ServicePort> = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                Some(ServicePort {
                    name: p.name.clone().filter(|n| !n.is_empty()),
                    port: port_u16(p.port)?,
                    protocol: protocol(p.protocol.as_ref()),
                    target_port: match &p.target_port {
                        Some(IntOrString::Int(n)) => port_u16(*n).map(TargetPort::Number),
                        Some(IntOrString::String(s)) => match s.parse::<i32>() {
                            Ok(n) => port_u16(n).map(TargetPort::Number),
                            Err(_) => Some(TargetPort::Name(s.clone())),
                        },
                        None => None,
                    },
                })
            })
            .collect();
        ports.shrink_to_fit(); // held for every Service: no spare capacity
        let selector = spec.selector.filter(|s| !s.is_empty()).map(Labels::from);
        Ok(Self {
            key,
            kind,
            selector,
            publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
            ports,
            labels: svc.metadata.labels.clone().unwrap_or_default(),
        })
    }
}

/// Labels in a compact form: sorted `(key, value)` pairs in one allocation. A pod's labels are
/// held for every pod in the cluster, and a `BTreeMap` costs a whole node even for one label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Labels(Box<[(Box<str>, Box<str>)]>);

impl Labels {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| &*self.0[i].1)
    }

    /// Every pair, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// True when there is no label.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Self {
        // A BTreeMap iterates in key order: the slice comes out sorted.
        Self(map.into_iter().map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str())).collect())
    }
}

/// A pod's addresses (`status.podIPs`): the API server accepts at most one address per family
/// (pod status validation, `validatePodIPs`), so one slot per family holds every valid pod
/// without an allocation. A second address of a family, which the API server would have refused,
/// is ignored. Packed into 21 bytes (the presence of each family and their order are bits), so
/// that [`PodFacts`] keeps room for its node within 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PodIps {
    v4: [u8; 4],
    v6: [u8; 16],
    /// [`PodIps::HAS_V4`], [`PodIps::HAS_V6`], [`PodIps::V6_FIRST`].
    bits: u8,
}

impl PodIps {
    const HAS_V4: u8 = 1;
    const HAS_V6: u8 = 2;
    /// The IPv6 address comes first (`status.podIP` is IPv6).
    const V6_FIRST: u8 = 4;

    /// The addresses, in the pod's order.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let v4 = (self.bits & Self::HAS_V4 != 0).then(|| IpAddr::from(self.v4));
        let v6 = (self.bits & Self::HAS_V6 != 0).then(|| IpAddr::from(self.v6));
        let (first, second) = if self.bits & Self::V6_FIRST != 0 { (v6, v4) } else { (v4, v6) };
        first.into_iter().chain(second)
    }

    /// True while the pod has no address.
    pub fn is_empty(&self) -> bool {
        self.bits & (Self::HAS_V4 | Self::HAS_V6) == 0
    }
}

impl FromIterator<IpAddr> for PodIps {
    /// The first address of each family.
    fn from_iter<I: IntoIterator<Item = IpAddr>>(iter: I) -> Self {
        let mut ips = Self::default();
        for ip in iter {
            match ip {
                IpAddr::V4(v4) if ips.bits & Self::HAS_V4 == 0 => {
                    ips.v4 = v4.octets();
                    ips.bits |= Self::HAS_V4;
                }
                IpAddr::V6(v6) if ips.bits & Self::HAS_V6 == 0 => {
                    ips.v6 = v6.octets();
                    ips.bits |= Self::HAS_V6 | if ips.bits & Self::HAS_V4 == 0 { Self::V6_FIRST } else { 0 };
                }
                _ => {}
            }
        }
        ips
    }
}

/// A pod label's value as held: values that repeat the pod's own name or its ordinal (what the
/// StatefulSet controller writes in `statefulset.kubernetes.io/pod-name` and
/// `apps.kubernetes.io/pod-index`) are held as such, so that every pod of a StatefulSet has the
/// same [`PodShape`] and the reconciler holds it once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LabelValue {
    /// Literal text.
    Text(Box<str>),
    /// The pod's name.
    PodName,
    /// The pod's ordinal: the digits after the last `-` of its name.
    PodOrdinal,
}

/// The ordinal of a StatefulSet-style name (`web-12` → `12`).
fn ordinal(name: &str) -> Option<&str> {
    let (_, n) = name.rsplit_once('-')?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

/// Everything of a pod that its siblings of one StatefulSet or ReplicaSet usually share: held
/// once per distinct value by the reconciler (see [`PodFacts::shape`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PodShape {
    /// `metadata.labels`, sorted by key.
    labels: Box<[(Box<str>, LabelValue)]>,
    /// `spec.hostname`; [`LabelValue::PodName`] when it is the pod's name.
    hostname: Option<LabelValue>,
    /// `spec.subdomain`.
    subdomain: Option<Box<str>>,
    /// Named container ports, sorted, to resolve named `targetPort`s.
    container_ports: Box<[ContainerPort]>,
}

impl PodShape {
    /// The shape of pod `name`.
    pub fn new(
        name: &str,
        labels: BTreeMap<String, String>,
        hostname: Option<String>,
        subdomain: Option<String>,
        mut container_ports: Vec<ContainerPort>,
    ) -> Self {
        let value = |v: String| {
            if v == name {
                LabelValue::PodName
            } else if ordinal(name) == Some(v.as_str()) {
                LabelValue::PodOrdinal
            } else {
                LabelValue::Text(v.into_boxed_str())
            }
        };
        container_ports.sort();
        Self {
            // A BTreeMap iterates in key order: the slice comes out sorted.
            labels: labels.into_iter().map(|(k, v)| (k.into_boxed_str(), value(v))).collect(),
            hostname: hostname.filter(|h| !h.is_empty()).map(|h| match h == name {
                true => LabelValue::PodName,
                false => LabelValue::Text(h.into_boxed_str()),
            }),
            subdomain: subdomain.filter(|s| !s.is_empty()).map(String::into_boxed_str),
            container_ports: container_ports.into_boxed_slice(),
        }
    }

    /// The value of label `key` of pod `name`.
    pub fn label<'a>(&'a self, key: &str, name: &'a str) -> Option<&'a str> {
        let i = self.labels.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Self::resolve(&self.labels[i].1, name)
    }

    fn resolve<'a>(value: &'a LabelValue, name: &'a str) -> Option<&'a str> {
        match value {
            LabelValue::Text(t) => Some(t),
            LabelValue::PodName => Some(name),
            LabelValue::PodOrdinal => ordinal(name),
        }
    }

    /// Every label of pod `name`, by key.
    pub fn labels<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.labels.iter().filter_map(move |(k, v)| Some((&**k, Self::resolve(v, name)?)))
    }

    /// `spec.hostname` of pod `name`.
    pub fn hostname<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.hostname.as_ref().and_then(|h| Self::resolve(h, name))
    }

    /// `spec.subdomain`.
    pub fn subdomain(&self) -> Option<&str> {
        self.subdomain.as_deref()
    }
}

/// What decides a pod's endpoints: everything of a Pod the EndpointSlice controller's rules read,
/// except its namespace and name. The reconciler holds one per pod in the cluster, so it is kept
/// to 32 bytes: the part that sibling pods share is an `Arc` it interns, the flags are bits, the
/// node is a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    /// Labels, hostname, subdomain and named container ports.
    pub shape: Arc<PodShape>,
    /// `status.podIPs` (or `status.podIP`), parsed; empty while the pod has no IP.
    pub ips: PodIps,
    /// [`PodFacts::TERMINAL`], [`PodFacts::READY`], [`PodFacts::TERMINATING`].
    flags: u8,
    /// The pod's node (`spec.nodeName`, for its topology zone) as a number its holder assigns;
    /// 0: none or not tracked. The model leaves it 0 and carries the name in [`PodInfo::node`].
    pub node: u16,
}

/// A Pod, as much as the EndpointSlice controller's rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    /// Namespace and name.
    pub key: ObjectKey,
    /// What decides its endpoints.
    pub facts: PodFacts,
    /// When the pod last changed in a way that matters here, in Unix milliseconds: its latest
    /// condition transition, creation or deletion time (for the programming-latency metric; not
    /// held once applied).
    pub changed_at: Option<i64>,
    /// `spec.nodeName`: where its topology zone comes from (the `zonal` option).
    pub node: Option<Arc<str>>,
}

/// The label holding a node's topology zone (well-known label, kubernetes.io docs).
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// A Node, as much as the `zonal` option needs: its name and topology zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its name (the key's namespace is empty).
    pub key: ObjectKey,
    /// `topology.kubernetes.io/zone`, lower-cased.
    pub zone: Option<Arc<str>>,
}

impl NodeInfo {
    /// Converts a Node's metadata (a metadata-only watch sends no more).
    pub fn from_meta(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Result<Self, ModelError> {
        let name = meta.name.clone().filter(|n| !n.is_empty()).ok_or(ModelError::NoName)?;
        let zone = meta
            .labels
            .as_ref()
            .and_then(|l| l.get(ZONE_LABEL))
            .filter(|z| !z.is_empty())
            .map(|z| Arc::from(z.to_ascii_lowercase()));
        Ok(Self { key: ObjectKey::new("", name), zone })
    }

    /// Converts a Node.
    pub fn from_k8s(node: &k8s_openapi::api::core::v1::Node) -> Result<Self, ModelError> {
        Self::from_meta(&node.metadata)
    }
}

impl PodInfo {
    /// Converts a Pod.
    pub fn from_k8s(pod: &Pod) -> Result<Self, ModelError> {
        let key = key_of(&pod.metadata)?;
        let status = pod.status.as_ref();
        // `status.podIP` is `podIPs[0]` (Pod API docs); it leads even in the odd case of a
        // status naming it only there.
        let ips: PodIps = status
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|s| s.parse::<IpAddr>().ok())
            .into_iter()
            .chain(status.and_then(|s| s.pod_ips.as_ref()).into_iter().flatten().filter_map(|p| p.ip.parse().ok()))
            .collect();
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
        let ready_condition = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let spec = pod.spec.as_ref();
        let container_ports: Vec<ContainerPort> = spec
            .into_iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| {
                Some(ContainerPort {
                    name: p.name.clone().filter(|n| !n.is_empty())?,
                    port: port_u16(p.container_port)?,
                    protocol: protocol(p.protocol.as_ref()),
                })
            })
            .collect();
        let conditions = status.and_then(|s| s.conditions.as_ref());
        let changed_at = conditions
            .into_iter()
            .flatten()
            .filter_map(|c| c.last_transition_time.as_ref())
            .chain(pod.metadata.creation_timestamp.as_ref())
            .chain(pod.metadata.deletion_timestamp.as_ref())
            .map(|t| t.0.as_millisecond())
            .max();
        let shape = PodShape::new(
            &key.name,
            pod.metadata.labels.clone().unwrap_or_default(),
            spec.and_then(|s| s.hostname.clone()),
            spec.and_then(|s| s.subdomain.clone()),
            container_ports,
        );
        Ok(Self {
            key,
            facts: PodFacts::new(
                Arc::new(shape),
                ips,
                phase == "Succeeded" || phase == "Failed",
                ready_condition,
                pod.metadata.deletion_timestamp.is_some(),
            ),
            changed_at,
            node: spec.and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()).map(Arc::from),
        })
    }

    /// The endpoints this pod contributes to `svc` (see [`PodFacts::endpoints_for`]).
    pub fn endpoints_for(&self, svc: &ServiceInfo) -> Vec<Endpoint> {
        self.facts.endpoints_for(&self.key.namespace, &self.key.name, svc)
    }
}

impl PodFacts {
    /// Phase is Succeeded or Failed: never an endpoint.
    pub const TERMINAL: u8 = 1;
    /// The Ready condition is True.
    pub const READY: u8 = 2;
    /// `metadata.deletionTimestamp` is set.
    pub const TERMINATING: u8 = 4;

    /// Builds the facts of a pod.
    pub fn new(shape: Arc<PodShape>, ips: PodIps, terminal: bool, ready_condition: bool, terminating: bool) -> Self {
        let bit = |on: bool, bit: u8| if on { bit } else { 0 };
        let flags =
            bit(terminal, Self::TERMINAL) | bit(ready_condition, Self::READY) | bit(terminating, Self::TERMINATING);
        Self { shape, ips, flags, node: 0 }
    }

    /// Phase is Succeeded or Failed.
    pub fn terminal(&self) -> bool {
        self.flags & Self::TERMINAL != 0
    }

    /// The Ready condition is True.
    pub fn ready_condition(&self) -> bool {
        self.flags & Self::READY != 0
    }

    /// `metadata.deletionTimestamp` is set.
    pub fn terminating(&self) -> bool {
        self.flags & Self::TERMINATING != 0
    }

    /// Whether pod `name` is selected by `selector` (every pair must match, as for a Service).
    pub fn matches(&self, name: &str, selector: &Labels) -> bool {
        !selector.is_empty() && selector.iter().all(|(k, v)| self.shape.label(k, name) == Some(v))
    }

    /// The endpoints pod `namespace/name` contributes to `svc`, by the EndpointSlice
    /// controller's rules (kubernetes pkg/controller/endpointslice, `podToEndpoint` and
    /// `ShouldPodBeInEndpoints`): no IP or a terminal phase: none;
    /// `ready = publishNotReadyAddresses || (Ready && !terminating)`; the hostname is
    /// `spec.hostname` only when `spec.subdomain` equals the Service's name.
    pub fn endpoints_for(&self, namespace: &str, name: &str, svc: &ServiceInfo) -> Vec<Endpoint> {
        if self.terminal() || self.ips.is_empty() || namespace != &*svc.key.namespace {
            return Vec::new();
        }
        let ready = svc.publish_not_ready || (self.ready_condition() && !self.terminating());
        let hostname = match (self.shape.hostname(name), self.shape.subdomain()) {
            (Some(h), Some(sub)) if sub == &*svc.key.name => Some(h.to_owned()),
            _ => None,
        };
        // Ports as the EndpointSlice controller resolves them: a named targetPort must name a
        // container port of the same protocol, else that port is left out for this pod.
        let ports: Vec<EndpointPort> = svc
            .ports
            .iter()
            .filter_map(|sp| {
                let port = match &sp.target_port {
                    None => sp.port,
                    Some(TargetPort::Number(n)) => *n,
                    Some(TargetPort::Name(name)) => {
                        self.shape.container_ports.iter().find(|c| c.name == *name && c.protocol == sp.protocol)?.port
                    }
                };
                Some(EndpointPort { name: sp.name.clone(), port, protocol: sp.protocol.clone() })
            })
            .collect();
        self.ips
            .iter()
            .map(|ip| Endpoint {
                ip,
                hostname: hostname.clone(),
                ready,
                pod_name: Some(name.to_owned()),
                ports: ports.clone(),
                zone: None,
            })
            .collect()
    }
}

/// One endpoint address of a Service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// The address.
    pub ip: IpAddr,
    /// The DNS label the endpoint is published under, if any (else its dashed IP).
    pub hostname: Option<String>,
    /// Whether it is published (ready, or the Service publishes not-ready addresses).
    pub ready: bool,
    /// The pod behind it (`targetRef`), for the `endpoint-pod-names` option.
    pub pod_name: Option<String>,
    /// Its ports.
    pub ports: Vec<EndpointPort>,
    /// Its topology zone (an EndpointSlice's `zone`, or its pod's node's
    /// `topology.kubernetes.io/zone` label), lower-cased; for the `zonal` option.
    pub zone: Option<Arc<str>>,
}

/// An EndpointSlice, as much as DNS needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceInfo {
    /// Namespace and name of the slice itself.
    pub key: ObjectKey,
    /// The Service it belongs to (label `kubernetes.io/service-name`); `None` if unlabelled.
    pub service: Option<String>,
    /// Its endpoints, one per address.
    pub endpoints: Vec<Endpoint>,
    /// `metadata.labels` (for the `labels` option when filtering client-side).
    pub labels: BTreeMap<String, String>,
    /// The `endpoints.kubernetes.io/last-change-trigger-time` annotation, in Unix milliseconds.
    pub changed_at: Option<i64>,
}

/// The label tying an EndpointSlice to a multicluster ServiceImport (KEP-1645, mcs-api).
pub const MCS_SERVICE_LABEL: &str = "multicluster.kubernetes.io/service-name";
/// The label naming the cluster a multicluster EndpointSlice's endpoints run in.
pub const MCS_CLUSTER_LABEL: &str = "multicluster.kubernetes.io/source-cluster";

impl SliceInfo {
    /// The ServiceImport this slice carries endpoints of (label
    /// `multicluster.kubernetes.io/service-name`), and the cluster they run in
    /// (`multicluster.kubernetes.io/source-cluster`).
    pub fn imported(&self) -> Option<(&str, Option<&str>)> {
        let svc = self.labels.get(MCS_SERVICE_LABEL)?;
        Some((svc, self.labels.get(MCS_CLUSTER_LABEL).map(String::as_str).filter(|c| !c.is_empty())))
    }
}

/// What kind of ServiceImport (`spec.type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportKind {
    /// `ClusterSetIP`: the name answers with `spec.ips`.
    ClusterSetIp(Vec<IpAddr>),
    /// `Headless`: the name answers with every ready endpoint in every cluster.
    Headless,
}

/// A ServiceImport (`multicluster.x-k8s.io/v1alpha1`), as much as multicluster DNS needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceImportInfo {
    /// Namespace and name (the Service's).
    pub key: ObjectKey,
    /// How the name answers.
    pub kind: ImportKind,
    /// `spec.ports`.
    pub ports: Vec<ServicePort>,
    /// Its labels (the `labels` option filters imports as it filters Services).
    pub labels: BTreeMap<String, String>,
}

/// The API group, version and kind of ServiceImports.
pub const SERVICE_IMPORT_GROUP: &str = "multicluster.x-k8s.io";
/// See [`SERVICE_IMPORT_GROUP`].
pub const SERVICE_IMPORT_VERSION: &str = "v1alpha1";

impl ServiceImportInfo {
    /// Converts a ServiceImport from its JSON form (there is no typed struct for this CRD).
    pub fn from_json(v: &serde_json::Value) -> Result<Self, ModelError> {
        let meta = &v["metadata"];
        let name = meta["name"].as_str().filter(|n| !n.is_empty()).ok_or(ModelError::NoName)?;
        let namespace = meta["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or("default");
        let spec = &v["spec"];
        let kind = if spec["type"].as_str() == Some("Headless") {
            ImportKind::Headless
        } else {
            let mut ips: Vec<IpAddr> =
                spec["ips"].as_array().into_iter().flatten().filter_map(|ip| ip.as_str()?.parse().ok()).collect();
            ips.sort();
            ips.dedup();
            ImportKind::ClusterSetIp(ips)
        };
        let ports = spec["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some(ServicePort {
                    name: p["name"].as_str().filter(|n| !n.is_empty()).map(str::to_owned),
                    port: port_u16(i32::try_from(p["port"].as_i64()?).ok()?)?,
                    protocol: protocol(p["protocol"].as_str().map(str::to_owned).as_ref()),
                    target_port: None,
                })
            })
            .collect();
        let labels = meta["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        Ok(Self { key: ObjectKey::new(namespace, name), kind, ports, labels })
    }
}

/// The EndpointSlice annotation holding the time of the change that produced it.
pub const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

impl SliceInfo {
    /// Converts an EndpointSlice. FQDN slices carry no addresses we can serve and yield no
    /// endpoints. `conditions.ready` absent counts as ready (discovery.k8s.io/v1 API docs: "nil
    /// should be interpreted as true").
    pub fn from_k8s(slice: &EndpointSlice) -> Result<Self, ModelError> {
        let key = key_of(&slice.metadata)?;
        let labels = slice.metadata.labels.clone().unwrap_or_default();
        let service = labels.get(SERVICE_NAME_LABEL).cloned();
        let ports: Vec<EndpointPort> = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                Some(EndpointPort {
                    name: p.name.clone().filter(|n| !n.is_empty()),
                    port: port_u16(p.port?)?,
                    protocol: protocol(p.protocol.as_ref()),
                })
            })
            .collect();
        let mut endpoints = Vec::new();
        if slice.address_type == "IPv4" || slice.address_type == "IPv6" {
            for ep in &slice.endpoints {
                let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                let hostname = ep.hostname.clone().filter(|h| !h.is_empty());
                let pod_name =
                    ep.target_ref.as_ref().filter(|r| r.kind.as_deref() == Some("Pod")).and_then(|r| r.name.clone());
                let zone: Option<Arc<str>> =
                    ep.zone.as_deref().filter(|z| !z.is_empty()).map(|z| z.to_ascii_lowercase().into());
                for addr in &ep.addresses {
                    if let Ok(ip) = addr.parse::<IpAddr>() {
                        endpoints.push(Endpoint {
                            ip,
                            hostname: hostname.clone(),
                            ready,
                            pod_name: pod_name.clone(),
                            ports: ports.clone(),
                            zone: zone.clone(),
                        });
                    }
                }
            }
        }
        let changed_at = slice
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(TRIGGER_TIME_ANNOTATION))
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .map(|t| t.as_millisecond());
        endpoints.shrink_to_fit();
        Ok(Self { key, service, endpoints, labels, changed_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> PodInfo {
        PodInfo::from_k8s(&serde_saphyr::from_str::<Pod>(yaml).unwrap()).unwrap()
    }

    fn svc(yaml: &str) -> ServiceInfo {
        ServiceInfo::from_k8s(&serde_saphyr::from_str::<Service>(yaml).unwrap()).unwrap()
    }

    const HEADLESS: &str =
        "metadata: {name: nginx, namespace: default}\nspec: {clusterIP: None, selector: {app: nginx}}";

    const READY_POD: &str = "metadata: {name: web-0, namespace: default, labels: {app: nginx}}
spec: {hostname: web-0, subdomain: nginx, containers: []}
status: {phase: Running, podIP: 10.244.1.5, conditions: [{type: Ready, status: 'True'}]}";

    #[test]
    fn ready_pod_with_matching_subdomain_is_a_named_ready_endpoint() {
        let eps = pod(READY_POD).endpoints_for(&svc(HEADLESS));
        assert_eq!(
            eps,
            vec![Endpoint {
                ip: "10.244.1.5".parse().unwrap(),
                hostname: Some("web-0".into()),
                ready: true,
                pod_name: Some("web-0".into()),
                ports: vec![],
                zone: None,
            }]
        );
    }

    #[test]
    fn pod_ips_keep_the_first_address_of_each_family_in_order() {
        let ips = |list: &[&str]| -> Vec<String> {
            list.iter()
                .map(|s| s.parse::<IpAddr>().unwrap())
                .collect::<PodIps>()
                .iter()
                .map(|ip| ip.to_string())
                .collect()
        };
        assert_eq!(ips(&[]), Vec::<String>::new());
        assert_eq!(ips(&["10.0.0.1", "10.0.0.1", "fd00::1"]), ["10.0.0.1", "fd00::1"]);
        assert_eq!(ips(&["fd00::1", "10.0.0.1", "10.0.0.2"]), ["fd00::1", "10.0.0.1"]);
        let dual =
            READY_POD.replace("podIP: 10.244.1.5,", "podIP: 10.244.1.5, podIPs: [{ip: 10.244.1.5}, {ip: 'fd00::5'}],");
        let got: Vec<String> = pod(&dual).facts.ips.iter().map(|ip| ip.to_string()).collect();
        assert_eq!(got, ["10.244.1.5", "fd00::5"]);
        let v6_first =
            READY_POD.replace("podIP: 10.244.1.5,", "podIP: 'fd00::5', podIPs: [{ip: 'fd00::5'}, {ip: 10.244.1.5}],");
        let got: Vec<String> = pod(&v6_first).facts.ips.iter().map(|ip| ip.to_string()).collect();
        assert_eq!(got, ["fd00::5", "10.244.1.5"]);
    }

    #[test]
    fn pod_facts_stay_32_bytes() {
        // One is held per pod in the cluster (150,000 in the scale benchmark).
        assert_eq!(std::mem::size_of::<PodFacts>(), 32);
    }

    #[test]
    fn statefulset_pods_share_one_shape_and_read_their_own_name_and_ordinal() {
        let sts = |name: &str| {
            pod(&format!(
                "metadata: {{name: {name}, namespace: default, labels: {{app: web, statefulset.kubernetes.io/pod-name: {name}, apps.kubernetes.io/pod-index: '{}'}}}}
spec: {{hostname: {name}, subdomain: web, containers: []}}",
                name.rsplit_once('-').unwrap().1
            ))
        };
        let (a, b) = (sts("web-0"), sts("web-12"));
        assert_eq!(a.facts.shape, b.facts.shape);
        let shape = &b.facts.shape;
        assert_eq!(shape.label("statefulset.kubernetes.io/pod-name", "web-12"), Some("web-12"));
        assert_eq!(shape.label("apps.kubernetes.io/pod-index", "web-12"), Some("12"));
        assert_eq!(shape.label("app", "web-12"), Some("web"));
        assert_eq!(shape.hostname("web-12"), Some("web-12"));
        let only_web_12 =
            Labels::from(BTreeMap::from([("statefulset.kubernetes.io/pod-name".to_owned(), "web-12".to_owned())]));
        assert!(b.facts.matches("web-12", &only_web_12));
        assert!(!a.facts.matches("web-0", &only_web_12));
        // A value that merely looks like an ordinal elsewhere stays literal.
        let other = pod("metadata: {name: db, namespace: default, labels: {tier: '0'}}\nspec: {containers: []}");
        assert_eq!(other.facts.shape.label("tier", "db"), Some("0"));
    }

    #[test]
    fn hostname_is_dropped_when_subdomain_names_another_service() {
        let other = svc("metadata: {name: other, namespace: default}\nspec: {clusterIP: None, selector: {app: nginx}}");
        assert_eq!(pod(READY_POD).endpoints_for(&other)[0].hostname, None);
    }

    #[test]
    fn pod_rules_follow_the_endpointslice_controller() {
        let s = svc(HEADLESS);
        let unready = READY_POD.replace("'True'", "'False'");
        assert!(!pod(&unready).endpoints_for(&s)[0].ready);
        let terminating =
            READY_POD.replace("namespace: default,", "namespace: default, deletionTimestamp: '2024-01-01T00:00:00Z',");
        assert!(!pod(&terminating).endpoints_for(&s)[0].ready);
        let failed = READY_POD.replace("Running", "Failed");
        assert!(pod(&failed).endpoints_for(&s).is_empty());
        let no_ip = READY_POD.replace("podIP: 10.244.1.5, ", "");
        assert!(pod(&no_ip).endpoints_for(&s).is_empty());
        let pnr = svc(
            "metadata: {name: nginx, namespace: default}\nspec: {clusterIP: None, publishNotReadyAddresses: true, selector: {app: nginx}}",
        );
        assert!(pod(&unready).endpoints_for(&pnr)[0].ready);
        assert!(pod(&terminating).endpoints_for(&pnr)[0].ready);
    }

    #[test]
    fn service_kinds_are_recognised() {
        assert_eq!(svc(HEADLESS).kind, ServiceKind::Headless);
        let cip = svc("metadata: {name: api}\nspec: {clusterIP: 10.96.0.10, clusterIPs: [10.96.0.10, 'fd00::a']}");
        assert_eq!(cip.kind, ServiceKind::ClusterIp(vec!["10.96.0.10".parse().unwrap(), "fd00::a".parse().unwrap()]));
        assert_eq!(&*cip.key.namespace, "default");
        assert_eq!(cip.selector, None);
        let ext = svc("metadata: {name: ext}\nspec: {type: ExternalName, externalName: example.com}");
        assert_eq!(ext.kind, ServiceKind::ExternalName("example.com".into()));
    }

    #[test]
    fn slice_ready_absent_counts_as_ready() {
        let s: EndpointSlice = serde_saphyr::from_str(
            "metadata: {name: s1, namespace: default, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
- addresses: [10.0.0.2]
  conditions: {ready: false}
  hostname: db-1",
        )
        .unwrap();
        let s = SliceInfo::from_k8s(&s).unwrap();
        assert_eq!(s.service.as_deref(), Some("db"));
        assert!(s.endpoints[0].ready);
        assert!(!s.endpoints[1].ready);
        assert_eq!(s.endpoints[1].hostname.as_deref(), Some("db-1"));
    }

    #[test]
    fn statefulset_fields_and_their_defaults() {
        let sts =
            |yaml: &str| StatefulSetInfo::from_k8s(&serde_saphyr::from_str::<StatefulSet>(yaml).unwrap()).unwrap();
        let web = sts("metadata: {name: web, namespace: db}
spec: {serviceName: nginx, replicas: 3, ordinals: {start: 5}, selector: {matchLabels: {app: web}}, template: {}}");
        assert_eq!((web.service_name.as_str(), web.ordinals()), ("nginx", 5..8));
        assert_eq!(web.selector.as_ref().and_then(|s| s.get("app")), Some("web"));
        let bare = sts("metadata: {name: web}\nspec: {selector: {}, template: {}}");
        assert_eq!((bare.service_name.as_str(), bare.ordinals(), &*bare.key.namespace), ("", 0..1, "default"));
        let scaled_to_zero = sts("metadata: {name: web}\nspec: {replicas: 0, selector: {}, template: {}}");
        assert!(scaled_to_zero.ordinals().is_empty());
    }
}
