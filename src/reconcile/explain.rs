//! Why a name answers what it answers, from the reconciler's objects: the rule behind each
//! record, the owning objects, each endpoint's state, the StatefulSet that expects the name, or
//! the nearest reason it does not answer. Asked through [`ExplainRequest`]s that the reconciler
//! task serves between two batches of events, so the DNS path never waits for it.
//!
//! It never describes objects that DNS itself would not serve: a namespace left out by the
//! `namespaces` or `namespace-labels` options gets its reason only.
//!
//! Entry point: [`State::explain`].

use std::net::IpAddr;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::oneshot;

use super::records::endpoint_label;
use super::{State, StatefulSetInfo};
use crate::dns::names::valid_label;
use crate::model::{Endpoint, ImportKind, ObjectKey, PodFacts, ServiceInfo, ServiceKind};

/// What is asked: a name relative to a forward or multicluster zone, or the address of a
/// reverse name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// A zone-relative key (`web-0.nginx.default.svc`).
    Forward(String),
    /// A key relative to a multicluster zone (`db-0.c1.db.ns.svc`).
    Multicluster(String),
    /// The address a PTR name stands for.
    Reverse(IpAddr),
}

/// A question and where to send the answer.
#[derive(Debug)]
pub struct ExplainRequest {
    /// The question.
    pub question: Question,
    /// Where the explanation goes.
    pub reply: oneshot::Sender<Why>,
}

/// An object behind a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    /// `Service`, `Pod`, `EndpointSlice`, `StatefulSet`.
    pub kind: &'static str,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectRef {
    fn new(kind: &'static str, key: &ObjectKey) -> Self {
        Self { kind, namespace: key.namespace.to_string(), name: key.name.to_string() }
    }
}

/// One endpoint of a Service, as DNS sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointWhy {
    /// Its address.
    pub ip: String,
    /// The label it is published under, and by which rule.
    pub label: String,
    /// `hostname` (spec.hostname, spec.subdomain naming the Service), `pod name`
    /// (endpoint-pod-names) or `dashed IP`.
    pub rule: &'static str,
    /// Whether it is published: its address under the Service's name (and its port in SRV).
    pub published: bool,
    /// Whether its own name (`<label>.<svc>.<ns>.svc`) is served: published, and the name fits.
    pub named: bool,
    /// Why (not): `Ready`, `not Ready`, `terminating`, `Ready (publishNotReadyAddresses)`, ...
    pub state: String,
    /// The pod behind it, when known.
    pub pod: Option<String>,
}

/// The StatefulSet that expects a name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectedWhy {
    /// The StatefulSet.
    pub statefulset: String,
    /// Its `spec.replicas`.
    pub replicas: u32,
    /// Its ordinals, `[start, end)`.
    pub ordinals: [u32; 2],
    /// The pod it expects for this name.
    pub pod: String,
    /// That pod's state now: `missing`, `Pending (no IP)`, `not Ready`, `terminating`, `Ready`.
    pub pod_state: String,
    /// Seconds this name has had no address (None: it has one now).
    pub gap_s: Option<f64>,
    /// How many of the StatefulSet's expected names have no address now.
    pub missing: usize,
    /// The longest current gap among them, in seconds.
    pub longest_gap_s: Option<f64>,
}

/// Why a name answers what it answers, or the nearest reason it does not.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Why {
    /// The rule, or the reason, in one sentence.
    pub reason: String,
    /// The objects behind the name (none for a namespace that is not served).
    pub objects: Vec<ObjectRef>,
    /// The endpoints involved, published or not.
    pub endpoints: Vec<EndpointWhy>,
    /// The StatefulSet that expects the name, if one does.
    pub expected_by: Option<ExpectedWhy>,
    /// Seconds since the owning Service's names last changed, when known.
    pub names_changed_s_ago: Option<f64>,
}

impl Why {
    fn reason(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), ..Self::default() }
    }
}

/// A pod's state as DNS cares about it.
pub fn pod_state(pod: &PodFacts) -> &'static str {
    if pod.terminal() {
        "Succeeded or Failed"
    } else if pod.ips.is_empty() {
        "Pending (no IP yet)"
    } else if pod.terminating() {
        "terminating"
    } else if pod.ready_condition() {
        "Ready"
    } else {
        "not Ready"
    }
}

impl State {
    /// Explains `question` from the objects held now.
    pub fn explain(&self, question: &Question) -> Why {
        match question {
            Question::Forward(key) => self.explain_forward(key),
            Question::Multicluster(key) => self.explain_multicluster(key),
            Question::Reverse(ip) => self.explain_reverse(*ip),
        }
    }

    fn explain_forward(&self, key: &str) -> Why {
        if key.is_empty() {
            return Why::reason("the zone apex: SOA and NS");
        }
        if key == "dns-version" {
            return Why::reason("the Kubernetes DNS specification's schema version (section 2.1)");
        }
        let labels: Vec<&str> = key.split('.').collect();
        match labels.as_slice() {
            ["svc"] => Why::reason("an empty non-terminal above every Service (NODATA)"),
            [ns, "svc"] => self.explain_namespace(ns),
            [svc, ns, "svc"] => self.in_namespace(ns, |st| st.explain_service(ns, svc)),
            ["_zone", svc, ns, "svc"] => self.in_namespace(ns, |st| st.explain_zonal(ns, svc, "", &[])),
            [label, svc, ns, "svc"] => self.in_namespace(ns, |st| st.explain_endpoint(ns, svc, label)),
            // Before the SRV form: `pin._zone.<svc>` has five labels too.
            [.., directive, "_zone", svc, ns, "svc"] => {
                self.in_namespace(ns, |st| st.explain_zonal(ns, svc, directive, &labels[..labels.len() - 5]))
            }
            [port, proto, svc, ns, "svc"] => self.in_namespace(ns, |st| st.explain_srv(ns, svc, port, proto)),
            ["pod"] | [_, "pod"] | [_, _, "pod"] => Why::reason(
                "pod records (`<dashed-ip>.<ns>.pod`) follow the `pods` option: disabled answers NXDOMAIN, insecure any \
                 well-formed dashed IP, verified only an IP a pod in that namespace has",
            ),
            [.., "svc"] => Why::reason("no such name: names under svc have at most five labels"),
            _ => Why::reason("no such name: only the svc and pod subtrees and dns-version exist in the zone"),
        }
    }

    /// A name in a multicluster zone: the ServiceImports and the slices clusters export.
    fn explain_multicluster(&self, key: &str) -> Why {
        if key.is_empty() {
            return Why::reason("the multicluster zone apex: SOA and NS");
        }
        if key == "dns-version" {
            return Why::reason("the multicluster DNS specification's version (1.0.0)");
        }
        let labels: Vec<&str> = key.split('.').collect();
        match labels.as_slice() {
            ["svc"] => Why::reason("an empty non-terminal above every ServiceImport (NODATA)"),
            [ns, "svc"] => self.in_namespace(ns, |st| {
                if st.imports.keys().any(|k| &*k.namespace == *ns) {
                    Why::reason(format!("an empty non-terminal: namespace {ns} has ServiceImports (NODATA)"))
                } else {
                    Why::reason(format!("no ServiceImport in namespace {ns} (NXDOMAIN)"))
                }
            }),
            [svc, ns, "svc"] => self.in_namespace(ns, |st| st.explain_import(ns, svc, None, None)),
            [port, proto, svc, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
                self.in_namespace(ns, |st| {
                    let why = st.explain_import(ns, svc, None, None);
                    Why { reason: format!("SRV {port}.{proto}: the named port of the import; {}", why.reason), ..why }
                })
            }
            [cluster, svc, ns, "svc"] => self.in_namespace(ns, |st| st.explain_import(ns, svc, Some(cluster), None)),
            [label, cluster, svc, ns, "svc"] => {
                self.in_namespace(ns, |st| st.explain_import(ns, svc, Some(cluster), Some(label)))
            }
            _ => Why::reason("no such name: a multicluster zone holds <svc>.<ns>.svc names and dns-version"),
        }
    }

    /// ServiceImport `svc`, narrowed to one cluster and one endpoint name when asked.
    fn explain_import(&self, ns: &str, svc: &str, cluster: Option<&str>, label: Option<&str>) -> Why {
        let key = ObjectKey::new(ns, svc);
        let Some(imp) = self.imports.get(&key) else {
            return Why::reason(format!("no ServiceImport {svc} in namespace {ns}: NXDOMAIN"));
        };
        let mut objects = vec![ObjectRef::new("ServiceImport", &key)];
        let mut endpoints = Vec::new();
        for name in self.slices_by_import.get(&key).into_iter().flatten() {
            let slice_key = ObjectKey::new(key.namespace.clone(), name.clone());
            let Some(slice) = self.slices.get(&slice_key) else { continue };
            let from = slice.imported().and_then(|(_, c)| c).map(str::to_owned);
            if cluster.is_some_and(|c| from.as_deref().is_none_or(|f| !f.eq_ignore_ascii_case(c))) {
                continue;
            }
            objects.push(ObjectRef::new("EndpointSlice", &slice_key));
            for ep in &slice.endpoints {
                let (name, rank) = endpoint_label(ep, &self.opts.records);
                if label.is_some_and(|l| !l.eq_ignore_ascii_case(&name)) {
                    continue;
                }
                endpoints.push(EndpointWhy {
                    ip: ep.ip.to_string(),
                    rule: if rank == 0 { "hostname" } else { "dashed IP" },
                    label: match &from {
                        Some(c) => format!("{name}.{c}"),
                        None => format!("{name} (no multicluster.kubernetes.io/source-cluster label: no own name)"),
                    },
                    published: ep.ready,
                    named: ep.ready && from.is_some(),
                    state: if ep.ready { "ready" } else { "not ready (conditions.ready false)" }.to_owned(),
                    pod: ep.pod_name.clone(),
                });
            }
        }
        let ready = endpoints.iter().filter(|e| e.published).count();
        let reason = match (&imp.kind, cluster, label) {
            (ImportKind::ClusterSetIp(_), Some(_), _) => {
                format!("ServiceImport {svc} is ClusterSetIP: no per-cluster names (NXDOMAIN)")
            }
            (ImportKind::ClusterSetIp(ips), None, _) if ips.is_empty() => {
                format!("ClusterSetIP ServiceImport {svc} without spec.ips: NXDOMAIN")
            }
            (ImportKind::ClusterSetIp(ips), None, _) => {
                let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
                format!("ClusterSetIP ServiceImport {svc}: its spec.ips {}; SRV: its ports", ips.join(", "))
            }
            (ImportKind::Headless, None, _) if ready == 0 => {
                format!("Headless ServiceImport {svc} has no ready endpoint in any cluster: NXDOMAIN")
            }
            (ImportKind::Headless, None, _) => {
                format!("Headless ServiceImport {svc}: the {ready} ready endpoints of every cluster; SRV: their ports")
            }
            (ImportKind::Headless, Some(c), None) if ready == 0 => {
                format!("no ready endpoint of ServiceImport {svc} from cluster {c}: NXDOMAIN")
            }
            (ImportKind::Headless, Some(c), None) => format!(
                "cluster {c} of Headless ServiceImport {svc}: an empty non-terminal above its endpoint names (NODATA; \
                 the specification gives it no records)"
            ),
            (ImportKind::Headless, Some(c), Some(l)) if ready == 0 => {
                format!("no ready endpoint {l} of ServiceImport {svc} from cluster {c}: NXDOMAIN")
            }
            (ImportKind::Headless, Some(c), Some(l)) => {
                format!("endpoint {l} of Headless ServiceImport {svc} from cluster {c}: its address")
            }
        };
        Why { reason, objects, endpoints, expected_by: None, names_changed_s_ago: None }
    }

    /// Runs `explain` when `ns` is served; otherwise only says so.
    fn in_namespace(&self, ns: &str, explain: impl FnOnce(&Self) -> Why) -> Why {
        if !self.visible(ns) {
            return Why::reason(format!(
                "namespace {ns} is not served (the `namespaces` or `namespace-labels` option leaves it out): NXDOMAIN"
            ));
        }
        explain(self)
    }

    fn explain_namespace(&self, ns: &str) -> Why {
        if !self.visible(ns) {
            return Why::reason(format!("namespace {ns} is not served (`namespaces` / `namespace-labels`)"));
        }
        let any = self.services.keys().any(|k| &*k.namespace == ns);
        if any {
            Why::reason(format!("an empty non-terminal: namespace {ns} has Services (NODATA)"))
        } else if self.namespaces.contains_key(ns) {
            Why::reason(format!("an empty non-terminal: namespace {ns} exists, without a Service yet (NODATA)"))
        } else {
            Why::reason(format!("no namespace {ns} (NXDOMAIN)"))
        }
    }

    fn service(&self, ns: &str, svc: &str) -> Option<&ServiceInfo> {
        self.services.get(&ObjectKey::new(ns, svc)).map(|b| &**b)
    }

    fn no_service(ns: &str, svc: &str) -> Why {
        Why::reason(format!("no Service {svc} in namespace {ns} (or one the `labels` option leaves out): NXDOMAIN"))
    }

    /// The objects behind a Service's names: the Service, and its pods or slices.
    fn owners(&self, svc: &ServiceInfo, endpoints: &[EndpointWhy]) -> Vec<ObjectRef> {
        let mut out = vec![ObjectRef::new("Service", &svc.key)];
        if self.uses_pods(svc) {
            for p in endpoints.iter().filter_map(|e| e.pod.as_ref()) {
                let r = ObjectRef { kind: "Pod", namespace: svc.key.namespace.to_string(), name: p.clone() };
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        } else {
            for name in self.slices_by_service.get(&svc.key).into_iter().flatten() {
                out.push(ObjectRef {
                    kind: "EndpointSlice",
                    namespace: svc.key.namespace.to_string(),
                    name: name.to_string(),
                });
            }
        }
        out
    }

    /// Every endpoint of `svc`, published or not, with its label and state.
    fn endpoint_whys(&self, svc: &ServiceInfo) -> Vec<EndpointWhy> {
        let mut all: Vec<Endpoint> = Vec::new();
        if self.uses_pods(svc) {
            for name in self.members.get(&svc.key).into_iter().flatten() {
                if let Some(pod) = self.pod(&svc.key.namespace, name) {
                    all.extend(pod.endpoints_for(&svc.key.namespace, name, svc));
                }
            }
        } else {
            for name in self.slices_by_service.get(&svc.key).into_iter().flatten() {
                if let Some(slice) = self.slices.get(&ObjectKey::new(svc.key.namespace.clone(), name.clone())) {
                    all.extend(slice.endpoints.iter().cloned());
                }
            }
        }
        all.iter()
            .map(|ep| {
                let (label, rank) = endpoint_label(ep, &self.opts.records);
                let rule = match (rank, &ep.hostname) {
                    (0, _) => "hostname (spec.hostname, with spec.subdomain naming the Service)",
                    (_, _) if ep.pod_name.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(&label)) => {
                        "pod name (endpoint-pod-names)"
                    }
                    _ => "dashed IP",
                };
                let pod = ep.pod_name.as_deref().and_then(|p| self.pod(&svc.key.namespace, p));
                let state = match (pod, ep.ready) {
                    (Some(p), true) if svc.publish_not_ready && !p.ready_condition() => {
                        format!("{} (published: publishNotReadyAddresses)", pod_state(p))
                    }
                    (Some(p), _) => pod_state(p).to_owned(),
                    (None, true) => "ready (EndpointSlice)".to_owned(),
                    (None, false) => "not ready (EndpointSlice conditions.ready false)".to_owned(),
                };
                let fits = valid_label(&label)
                    && label.len() + svc.key.name.len() + svc.key.namespace.len() + 6
                        <= self.opts.records.max_relative_len;
                let state = if fits {
                    state
                } else {
                    format!("{state}; its name is too long (a label over 63 or a name over 253 octets): never served")
                };
                EndpointWhy {
                    ip: ep.ip.to_string(),
                    label,
                    rule,
                    published: ep.ready,
                    named: ep.ready && fits,
                    state,
                    pod: ep.pod_name.clone(),
                }
            })
            .collect()
    }

    fn changed_s_ago(&self, key: &ObjectKey) -> Option<f64> {
        self.names_changed.get(key).map(|t: &Instant| t.elapsed().as_secs_f64())
    }

    /// The reason a name of Service `svc` is never served, when it is too long for the zones.
    fn too_long(&self, name: &str) -> Option<Why> {
        (name.len() > self.opts.records.max_relative_len).then(|| {
            Why::reason(format!(
                "name too long: {name} and the longest zone served exceed 253 octets, so it is never served (NXDOMAIN)"
            ))
        })
    }

    fn explain_service(&self, ns: &str, svc: &str) -> Why {
        let Some(s) = self.service(ns, svc) else { return Self::no_service(ns, svc) };
        if let Some(why) = self.too_long(&format!("{svc}.{ns}.svc")) {
            return Why { objects: vec![ObjectRef::new("Service", &s.key)], ..why };
        }
        let endpoints = self.endpoint_whys(s);
        let reason = match &s.kind {
            ServiceKind::ExternalName(target) => format!("ExternalName Service {svc}: a CNAME to {target}"),
            ServiceKind::ClusterIp(ips) if ips.is_empty() => {
                format!("ClusterIP Service {svc} without a usable cluster IP: NXDOMAIN")
            }
            ServiceKind::ClusterIp(_)
                if self.opts.records.ignore_empty_service && !endpoints.iter().any(|e| e.published) =>
            {
                format!("ClusterIP Service {svc} has no ready endpoint and `ignore-empty-service` is on: NXDOMAIN")
            }
            ServiceKind::ClusterIp(ips) => {
                let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
                format!("ClusterIP Service {svc}: its cluster IPs {}; SRV: its ports", ips.join(", "))
            }
            ServiceKind::Headless if self.opts.records.noendpoints => {
                format!("headless Service {svc}: `noendpoints` is on, so no endpoint records: NXDOMAIN")
            }
            ServiceKind::Headless => {
                let ready = endpoints.iter().filter(|e| e.published).count();
                if ready == 0 {
                    format!(
                        "headless Service {svc} has no ready endpoint ({} not ready): NXDOMAIN until one is Ready",
                        endpoints.len()
                    )
                } else {
                    format!("headless Service {svc}: the addresses of its {ready} ready endpoints; SRV: their ports")
                }
            }
        };
        Why {
            reason,
            objects: self.owners(s, &endpoints),
            endpoints,
            expected_by: None,
            names_changed_s_ago: self.changed_s_ago(&s.key),
        }
    }

    /// The StatefulSet expecting `<label>` under Service `svc`, and its pod's state.
    fn expected(&self, ns: &str, svc: &str, label: &str) -> Option<ExpectedWhy> {
        let (set_name, ordinal) = label.rsplit_once('-')?;
        let ordinal: u32 = ordinal.parse().ok()?;
        let set: &StatefulSetInfo = self.statefulsets.get(&ObjectKey::new(ns, set_name))?;
        (set.service_name == svc && set.ordinals().contains(&ordinal)).then(|| {
            let pod_state = self.pod(ns, label).map_or("missing", pod_state).to_owned();
            let range = set.ordinals();
            let gaps = self.gaps.get(&set.key);
            let secs = |t: &Instant| (t.elapsed().as_secs_f64() * 10.0).round() / 10.0;
            ExpectedWhy {
                statefulset: set_name.to_owned(),
                replicas: set.replicas,
                ordinals: [range.start, range.end],
                pod: label.to_owned(),
                pod_state,
                gap_s: gaps.and_then(|g| g.get(&ordinal)).map(secs),
                missing: gaps.map_or(0, |g| g.len()),
                longest_gap_s: gaps.and_then(|g| g.values().min()).map(secs),
            }
        })
    }

    fn explain_endpoint(&self, ns: &str, svc: &str, label: &str) -> Why {
        let Some(s) = self.service(ns, svc) else { return Self::no_service(ns, svc) };
        if label.starts_with('_') {
            return Why {
                reason: format!(
                    "an empty non-terminal above the SRV names of Service {svc} (NODATA when it has named ports of that protocol)"
                ),
                objects: vec![ObjectRef::new("Service", &s.key)],
                ..Why::default()
            };
        }
        if let Some(why) = self.too_long(&format!("{label}.{svc}.{ns}.svc")) {
            return Why { objects: vec![ObjectRef::new("Service", &s.key)], ..why };
        }
        let all = self.endpoint_whys(s);
        let expected_by = self.expected(ns, svc, label);
        let mine: Vec<EndpointWhy> = all.into_iter().filter(|e| e.label == label).collect();
        let reason = if !matches!(s.kind, ServiceKind::Headless) {
            format!("Service {svc} is not headless: endpoint names are served for headless Services only: NXDOMAIN")
        } else if self.opts.records.noendpoints {
            "`noendpoints` is on: no endpoint names: NXDOMAIN".to_owned()
        } else if let Some(e) = mine.iter().find(|e| e.named) {
            format!("endpoint {label} of headless Service {svc}, named by its {}", e.rule)
        } else if let Some(e) = mine.first() {
            format!("endpoint {label} of Service {svc} is not published: {}", e.state)
        } else if let Some(x) = &expected_by {
            format!(
                "expected by StatefulSet {} (replicas {}, ordinals {}..{}): pod {} is {}: NXDOMAIN with expected-negative-ttl",
                x.statefulset, x.replicas, x.ordinals[0], x.ordinals[1], x.pod, x.pod_state
            )
        } else {
            format!("no endpoint of Service {svc} is named {label} (by hostname, pod name or dashed IP): NXDOMAIN")
        };
        let mut objects = self.owners(s, &mine);
        if let Some(x) = &expected_by {
            objects.push(ObjectRef { kind: "StatefulSet", namespace: ns.to_owned(), name: x.statefulset.clone() });
            if x.pod_state != "missing" {
                let pod = ObjectRef { kind: "Pod", namespace: ns.to_owned(), name: x.pod.clone() };
                if !objects.contains(&pod) {
                    objects.push(pod);
                }
            }
        }
        Why { reason, objects, endpoints: mine, expected_by, names_changed_s_ago: self.changed_s_ago(&s.key) }
    }

    fn explain_zonal(&self, ns: &str, svc: &str, directive: &str, zone: &[&str]) -> Why {
        let zone = zone.join(".");
        if !self.opts.records.zonal {
            return Why::reason("topology-pinned names need the `zonal` option: NXDOMAIN");
        }
        let Some(s) = self.service(ns, svc) else { return Self::no_service(ns, svc) };
        if !matches!(s.kind, ServiceKind::Headless) {
            return Why::reason(format!(
                "Service {svc} is not headless: topology-pinned names are for headless Services only: NXDOMAIN"
            ));
        }
        let endpoints: Vec<EndpointWhy> = self.endpoint_whys(s);
        let all = self.endpoints(s);
        let in_zone = all.iter().filter(|e| e.ready && e.zone.as_deref() == Some(zone.as_str())).count();
        let reason = match (directive, in_zone) {
            ("" | "pin" | "prefer", _) if zone.is_empty() && !all.iter().any(|e| e.ready) => {
                format!("headless Service {svc} has no ready endpoint, so no topology-pinned names: NXDOMAIN")
            }
            ("" | "pin" | "prefer", _) if zone.is_empty() => {
                "an empty non-terminal above the topology-pinned names `<zone>.pin` and `<zone>.prefer`: NODATA"
                    .to_owned()
            }
            ("pin" | "prefer", n) if n > 0 => {
                format!("the {n} ready endpoints of headless Service {svc} in zone {zone}")
            }
            ("pin", _) => {
                format!("no ready endpoint of Service {svc} in zone {zone}: NODATA (drained zones and typos alike)")
            }
            ("prefer", _) => {
                format!("no ready endpoint of Service {svc} in zone {zone}: every endpoint of the Service")
            }
            (other, _) => format!("`{other}` is not a directive (pin, prefer): NXDOMAIN"),
        };
        Why { reason, objects: self.owners(s, &endpoints), endpoints, ..Why::default() }
    }

    fn explain_srv(&self, ns: &str, svc: &str, port: &str, proto: &str) -> Why {
        let Some(s) = self.service(ns, svc) else { return Self::no_service(ns, svc) };
        let (Some(port), Some(proto)) = (port.strip_prefix('_'), proto.strip_prefix('_')) else {
            return Why::reason("not an SRV name: `_<port>._<proto>.<svc>.<ns>.svc`");
        };
        let named = s.ports.iter().find(|p| p.name.as_deref() == Some(port) && p.protocol == proto);
        let reason = match named {
            Some(p) => format!(
                "SRV for the named port {port}/{proto} ({}) of Service {svc}: {}",
                p.port,
                if matches!(s.kind, ServiceKind::Headless) {
                    "one record per ready endpoint"
                } else {
                    "one record naming the Service"
                }
            ),
            None => format!("Service {svc} has no port named {port} with protocol {proto}: NXDOMAIN"),
        };
        let endpoints = self.endpoint_whys(s);
        Why {
            reason,
            objects: self.owners(s, &endpoints),
            endpoints,
            expected_by: None,
            names_changed_s_ago: self.changed_s_ago(&s.key),
        }
    }

    fn explain_reverse(&self, ip: IpAddr) -> Why {
        // A cluster's own names first; a multicluster zone's names when it has none (as answered).
        let (targets, kind, zone) = match self.index.ptr(&ip) {
            Some(t) => (t, "Service", ""),
            None => match self.multicluster.as_ref().and_then(|mc| mc.ptr(&ip)) {
                Some(t) => (t, "ServiceImport", " in the multicluster zone"),
                None => {
                    return Why::reason(format!(
                        "no served name has the address {ip}: NXDOMAIN (NODATA above known addresses)"
                    ));
                }
            },
        };
        let mut objects = Vec::new();
        let mut names = Vec::new();
        for (rank, name) in targets.iter() {
            let rule = match rank {
                0 => "a headless endpoint's hostname",
                1 => "an endpoint name",
                _ if kind == "ServiceImport" => "a ServiceImport's ClusterSetIP",
                _ => "a Service's cluster IP",
            };
            names.push(format!("{name}{zone} ({rule})"));
            // `<...>.<svc>.<ns>.svc`: the claiming Service.
            let parts: Vec<&str> = name.split('.').collect();
            if let [.., svc, ns, "svc"] = parts.as_slice() {
                let r = ObjectRef { kind, namespace: (*ns).to_owned(), name: (*svc).to_owned() };
                if !objects.contains(&r) {
                    objects.push(r);
                }
            }
        }
        names.dedup();
        Why { reason: format!("PTR claims on {ip}, best first: {}", names.join("; ")), objects, ..Why::default() }
    }
}
