//! The Kubernetes DNS specification and CoreDNS `kubernetes` plugin behaviour, as a table of
//! cases per record form and option, written as zone-file text and run through the real binary
//! over UDP for both sources: a folder of YAML and the fake API server.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use support::dns::{query, udp_message};
use support::fake_api::FakeApi;
use support::server::{ServerProcess, eventually};

const WAIT: Duration = Duration::from_secs(20);

fn namespace(name: &str, dns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"dns": dns}}})
}

fn service(ns: &str, name: &str, spec: Value, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": spec})
}

fn pod(ns: &str, name: &str, app: &str, ips: &[&str], hostname: Option<(&str, &str)>, ready: bool) -> Value {
    let mut spec =
        json!({"containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}]});
    if let Some((h, sub)) = hostname {
        spec["hostname"] = json!(h);
        spec["subdomain"] = json!(sub);
    }
    let pod_ips: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
        "spec": spec,
        "status": {"phase": "Running", "podIP": ips.first(), "podIPs": pod_ips,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
}

/// The objects every case runs against.
fn fixture() -> Vec<Value> {
    let long = "h".repeat(64);
    vec![
        namespace("default", "on"),
        namespace("other", "off"),
        // A namespace without any Service.
        namespace("empty", "on"),
        // The classic StatefulSet: headless, a named port whose targetPort names a container port.
        service(
            "default",
            "nginx",
            json!({"clusterIP": "None", "selector": {"app": "nginx"},
                "ports": [{"name": "web", "port": 80, "protocol": "TCP", "targetPort": "http"}]}),
            json!({"tier": "web"}),
        ),
        pod("default", "web-0", "nginx", &["10.244.1.5"], Some(("web-0", "nginx")), true),
        pod("default", "web-1", "nginx", &["10.244.2.7"], Some(("web-1", "nginx")), true),
        pod("default", "loose-7f9c", "nginx", &["10.244.3.3"], None, true),
        pod("default", "longname", "nginx", &["10.244.3.4"], Some((&long, "nginx")), true),
        // A second headless service over the same pods: their IPs get a second name.
        service("default", "peers", json!({"clusterIP": "None", "selector": {"app": "nginx"}}), json!({})),
        // ClusterIP, dual stack, two named ports.
        service(
            "default",
            "api",
            json!({"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20", "fd00::20"], "selector": {"app": "api"},
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]}),
            json!({"tier": "backend"}),
        ),
        pod("default", "api-1", "api", &["10.244.5.1"], None, true),
        // ClusterIP without any endpoint.
        service("default", "empty", json!({"clusterIP": "10.96.0.30", "selector": {"app": "none"}}), json!({})),
        // ExternalName, outside and inside the zone.
        service("default", "ext", json!({"type": "ExternalName", "externalName": "example.com"}), json!({})),
        service(
            "default",
            "alias",
            json!({"type": "ExternalName", "externalName": "api.default.svc.cluster.local"}),
            json!({}),
        ),
        // Headless without selector: endpoints from its EndpointSlice.
        service("default", "db", json!({"clusterIP": "None"}), json!({})),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "db-x1", "namespace": "default", "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.1.0.1"], "hostname": "db-0"},
                {"addresses": ["10.1.0.2"], "conditions": {"ready": false}}]}),
        // IPv6-only headless.
        service("default", "v6", json!({"clusterIP": "None", "selector": {"app": "v6"}}), json!({})),
        pod("default", "v6-0", "v6", &["fd00::5"], None, true),
        // Another namespace.
        service("other", "nginx", json!({"clusterIP": "None", "selector": {"app": "nginx"}}), json!({})),
        pod("other", "o-0", "nginx", &["10.244.9.9"], Some(("o-0", "nginx")), true),
    ]
}

/// A case: question, then the expected reply as zone-file text: `;; RCODE`, answer lines,
/// `;; AUTHORITY <owner> <type>` and `;; ADDITIONAL <record>` lines.
type Case = (&'static str, RecordType, &'static [&'static str]);

fn render(m: &Message) -> Vec<String> {
    let line = |r: &hickory_proto::rr::Record| format!("{} {} IN {} {}", r.name, r.ttl, r.record_type(), r.data);
    let mut out = vec![format!(";; {}", m.metadata.response_code)];
    out.extend(m.answers.iter().map(line));
    out.extend(m.authorities.iter().map(|r| format!(";; AUTHORITY {} {} {}", r.name, r.ttl, r.record_type())));
    out.extend(m.additionals.iter().map(|r| format!(";; ADDITIONAL {}", line(r))));
    out
}

async fn check(dns: SocketAddr, source: &str, args: &[&str], cases: &[Case]) {
    for (name, qtype, want) in cases {
        let (m, _) = udp_message(dns, &query(name, *qtype, Some(1232))).await;
        let got = render(&m);
        assert_eq!(got, *want, "\n{source} {args:?}: {name} {qtype}");
        if m.metadata.response_code != hickory_proto::op::ResponseCode::Refused {
            assert!(m.metadata.authoritative, "{name}: AA");
        }
    }
}

fn write_manifests(dir: &Path, objects: &[Value]) {
    let text: Vec<String> = objects.iter().map(|o| serde_json::to_string_pretty(o).unwrap()).collect();
    std::fs::write(dir.join("fixture.yaml"), text.join("\n---\n")).unwrap();
}

/// Runs `cases` against the binary started with `args`, serving the fixture first from
/// manifests, then from the fake API server.
async fn run(args: &[&str], cases: &[Case]) {
    let dir = tempfile::tempdir().unwrap();
    write_manifests(dir.path(), &fixture());
    let mut full = vec!["--manifests", dir.path().to_str().unwrap()];
    full.extend_from_slice(args);
    let s = tokio::task::block_in_place(|| ServerProcess::start(&full));
    s.wait_for_log("first full sync complete", WAIT);
    check(s.dns, "manifests", args, cases).await;
    drop(s);

    let api = FakeApi::start().await;
    for o in fixture() {
        api.apply(o);
    }
    let s = tokio::task::block_in_place(|| ServerProcess::watching(&api, args, &[]));
    s.wait_for_log("first full sync complete", WAIT);
    check(s.dns, "kubernetes", args, cases).await;
}

const SOA: &str = ";; AUTHORITY cluster.local. 5 SOA";
const NX: &[&str] = &[";; Non-Existent Domain", SOA];
const NODATA: &[&str] = &[";; No Error", SOA];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn record_forms_by_default() {
    let cases: &[Case] = &[
        // 2.4.1 headless A and endpoint names; named targetPort resolved on the pod.
        (
            "nginx.default.svc.cluster.local.",
            RecordType::A,
            &[
                ";; No Error",
                "nginx.default.svc.cluster.local. 5 IN A 10.244.1.5",
                "nginx.default.svc.cluster.local. 5 IN A 10.244.2.7",
                "nginx.default.svc.cluster.local. 5 IN A 10.244.3.3",
                "nginx.default.svc.cluster.local. 5 IN A 10.244.3.4",
            ],
        ),
        (
            "web-0.nginx.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.1.5"],
        ),
        (
            "10-244-3-3.nginx.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "10-244-3-3.nginx.default.svc.cluster.local. 5 IN A 10.244.3.3"],
        ),
        // A 64-octet hostname is never served malformed; the IP still counts for the service.
        ("10-244-3-4.nginx.default.svc.cluster.local.", RecordType::A, NX),
        // 2.4.2 SRV for a named port: one per ready endpoint, targets' addresses in additional.
        (
            "_web._tcp.nginx.default.svc.cluster.local.",
            RecordType::SRV,
            &[
                ";; No Error",
                "_web._tcp.nginx.default.svc.cluster.local. 5 IN SRV 0 33 8080 10-244-3-3.nginx.default.svc.cluster.local.",
                "_web._tcp.nginx.default.svc.cluster.local. 5 IN SRV 0 33 8080 web-0.nginx.default.svc.cluster.local.",
                "_web._tcp.nginx.default.svc.cluster.local. 5 IN SRV 0 33 8080 web-1.nginx.default.svc.cluster.local.",
                ";; ADDITIONAL 10-244-3-3.nginx.default.svc.cluster.local. 5 IN A 10.244.3.3",
                ";; ADDITIONAL web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.1.5",
                ";; ADDITIONAL web-1.nginx.default.svc.cluster.local. 5 IN A 10.244.2.7",
            ],
        ),
        ("_tcp.nginx.default.svc.cluster.local.", RecordType::SRV, NODATA),
        ("_web._udp.nginx.default.svc.cluster.local.", RecordType::SRV, NX),
        ("_nope._tcp.nginx.default.svc.cluster.local.", RecordType::SRV, NX),
        // 2.3.1 ClusterIP A/AAAA and SRV; the bare-name SRV lists every port (CoreDNS).
        (
            "api.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "api.default.svc.cluster.local. 5 IN A 10.96.0.20"],
        ),
        (
            "api.default.svc.cluster.local.",
            RecordType::AAAA,
            &[";; No Error", "api.default.svc.cluster.local. 5 IN AAAA fd00::20"],
        ),
        (
            "_http._tcp.api.default.svc.cluster.local.",
            RecordType::SRV,
            &[
                ";; No Error",
                "_http._tcp.api.default.svc.cluster.local. 5 IN SRV 0 100 8080 api.default.svc.cluster.local.",
                ";; ADDITIONAL api.default.svc.cluster.local. 5 IN A 10.96.0.20",
                ";; ADDITIONAL api.default.svc.cluster.local. 5 IN AAAA fd00::20",
            ],
        ),
        (
            "api.default.svc.cluster.local.",
            RecordType::SRV,
            &[
                ";; No Error",
                "api.default.svc.cluster.local. 5 IN SRV 0 50 53 api.default.svc.cluster.local.",
                "api.default.svc.cluster.local. 5 IN SRV 0 50 8080 api.default.svc.cluster.local.",
                ";; ADDITIONAL api.default.svc.cluster.local. 5 IN A 10.96.0.20",
                ";; ADDITIONAL api.default.svc.cluster.local. 5 IN AAAA fd00::20",
            ],
        ),
        (
            "empty.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "empty.default.svc.cluster.local. 5 IN A 10.96.0.30"],
        ),
        // ExternalName: CNAME, not chased outside the zone, chased inside it.
        (
            "ext.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "ext.default.svc.cluster.local. 5 IN CNAME example.com."],
        ),
        (
            "alias.default.svc.cluster.local.",
            RecordType::A,
            &[
                ";; No Error",
                "alias.default.svc.cluster.local. 5 IN CNAME api.default.svc.cluster.local.",
                "api.default.svc.cluster.local. 5 IN A 10.96.0.20",
            ],
        ),
        // Selectorless service from its slice: not-ready addresses left out.
        (
            "db.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "db.default.svc.cluster.local. 5 IN A 10.1.0.1"],
        ),
        (
            "_pg._tcp.db.default.svc.cluster.local.",
            RecordType::SRV,
            &[
                ";; No Error",
                "_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 db-0.db.default.svc.cluster.local.",
                ";; ADDITIONAL db-0.db.default.svc.cluster.local. 5 IN A 10.1.0.1",
            ],
        ),
        // Dual stack: AAAA for an IPv4-only name is NODATA (never NXDOMAIN), and the reverse.
        ("web-0.nginx.default.svc.cluster.local.", RecordType::AAAA, NODATA),
        (
            "v6.default.svc.cluster.local.",
            RecordType::AAAA,
            &[";; No Error", "v6.default.svc.cluster.local. 5 IN AAAA fd00::5"],
        ),
        ("v6.default.svc.cluster.local.", RecordType::A, NODATA),
        (
            "fd00--5.v6.default.svc.cluster.local.",
            RecordType::AAAA,
            &[";; No Error", "fd00--5.v6.default.svc.cluster.local. 5 IN AAAA fd00::5"],
        ),
        // 2.1 schema version.
        ("dns-version.cluster.local.", RecordType::TXT, &[";; No Error", "dns-version.cluster.local. 5 IN TXT 1.1.0"]),
        // Pod records are disabled by default.
        ("10-244-1-5.default.pod.cluster.local.", RecordType::A, NX),
        // Empty non-terminals and other namespaces.
        ("other.svc.cluster.local.", RecordType::A, NODATA),
        (
            "o-0.nginx.other.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "o-0.nginx.other.svc.cluster.local. 5 IN A 10.244.9.9"],
        ),
        ("nons.svc.cluster.local.", RecordType::A, NX),
    ];
    run(&[], cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ptr_records_in_reverse_zones_first_and_all() {
    const REV_SOA: &str = ";; AUTHORITY 10.in-addr.arpa. 5 SOA";
    let cases: &[Case] = &[
        (
            "5.1.244.10.in-addr.arpa.",
            RecordType::PTR,
            &[";; No Error", "5.1.244.10.in-addr.arpa. 5 IN PTR web-0.nginx.default.svc.cluster.local."],
        ),
        (
            "3.3.244.10.in-addr.arpa.",
            RecordType::PTR,
            &[";; No Error", "3.3.244.10.in-addr.arpa. 5 IN PTR 10-244-3-3.nginx.default.svc.cluster.local."],
        ),
        (
            "20.0.96.10.in-addr.arpa.",
            RecordType::PTR,
            &[";; No Error", "20.0.96.10.in-addr.arpa. 5 IN PTR api.default.svc.cluster.local."],
        ),
        ("99.0.96.10.in-addr.arpa.", RecordType::PTR, &[";; Non-Existent Domain", REV_SOA]),
        ("0.96.10.in-addr.arpa.", RecordType::PTR, &[";; No Error", REV_SOA]),
        (
            "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
            RecordType::PTR,
            &[
                ";; No Error",
                "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR fd00--5.v6.default.svc.cluster.local.",
            ],
        ),
        ("1.0.0.11.in-addr.arpa.", RecordType::PTR, &[";; Query Refused"]),
    ];
    run(&["--zone", "cluster.local,10.0.0.0/8,fd00::/8"], cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ptr_all_lists_every_name_of_an_address() {
    // web-0's IP is an endpoint of `nginx` (with its hostname, listed first) and of `peers`.
    let cases: &[Case] = &[(
        "5.1.244.10.in-addr.arpa.",
        RecordType::PTR,
        &[
            ";; No Error",
            "5.1.244.10.in-addr.arpa. 5 IN PTR web-0.nginx.default.svc.cluster.local.",
            "5.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-5.peers.default.svc.cluster.local.",
        ],
    )];
    run(&["--zone", "cluster.local,10.244.0.0/16", "--ptr", "all"], cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pod_records_insecure_and_verified() {
    let insecure: &[Case] = &[
        (
            "10-244-1-5.default.pod.cluster.local.",
            RecordType::A,
            &[";; No Error", "10-244-1-5.default.pod.cluster.local. 5 IN A 10.244.1.5"],
        ),
        (
            "1-2-3-4.default.pod.cluster.local.",
            RecordType::A,
            &[";; No Error", "1-2-3-4.default.pod.cluster.local. 5 IN A 1.2.3.4"],
        ),
        (
            "fd00--5.default.pod.cluster.local.",
            RecordType::AAAA,
            &[";; No Error", "fd00--5.default.pod.cluster.local. 5 IN AAAA fd00::5"],
        ),
        ("default.pod.cluster.local.", RecordType::A, NODATA),
        ("pod.cluster.local.", RecordType::A, NODATA),
        ("web-0.default.pod.cluster.local.", RecordType::A, NX),
    ];
    run(&["--pods", "insecure"], insecure).await;
    let verified: &[Case] = &[
        (
            "10-244-1-5.default.pod.cluster.local.",
            RecordType::A,
            &[";; No Error", "10-244-1-5.default.pod.cluster.local. 5 IN A 10.244.1.5"],
        ),
        (
            "fd00--5.default.pod.cluster.local.",
            RecordType::AAAA,
            &[";; No Error", "fd00--5.default.pod.cluster.local. 5 IN AAAA fd00::5"],
        ),
        ("1-2-3-4.default.pod.cluster.local.", RecordType::A, NX),
        ("10-244-9-9.default.pod.cluster.local.", RecordType::A, NX),
        (
            "10-244-9-9.other.pod.cluster.local.",
            RecordType::A,
            &[";; No Error", "10-244-9-9.other.pod.cluster.local. 5 IN A 10.244.9.9"],
        ),
        ("default.pod.cluster.local.", RecordType::A, NODATA),
    ];
    run(&["--pods", "verified"], verified).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn namespace_filters_make_namespaces_invisible() {
    let cases: &[Case] = &[
        ("nginx.other.svc.cluster.local.", RecordType::A, NX),
        ("other.svc.cluster.local.", RecordType::A, NX),
        (
            "web-0.nginx.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.1.5"],
        ),
    ];
    run(&["--namespaces", "default"], cases).await;
    run(&["--namespace-labels", "dns=on"], cases).await;
    let insecure_other: &[Case] = &[("10-244-9-9.other.pod.cluster.local.", RecordType::A, NX)];
    run(&["--namespace-labels", "dns=on", "--pods", "insecure"], insecure_other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn labels_endpoint_pod_names_ignore_empty_and_noendpoints() {
    let labels: &[Case] = &[
        (
            "api.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "api.default.svc.cluster.local. 5 IN A 10.96.0.20"],
        ),
        ("nginx.default.svc.cluster.local.", RecordType::A, NX),
    ];
    run(&["--labels", "tier=backend"], labels).await;
    let pod_names: &[Case] = &[
        (
            "loose-7f9c.nginx.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "loose-7f9c.nginx.default.svc.cluster.local. 5 IN A 10.244.3.3"],
        ),
        ("10-244-3-3.nginx.default.svc.cluster.local.", RecordType::A, NX),
        (
            "web-0.nginx.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.1.5"],
        ),
    ];
    run(&["--endpoint-pod-names"], pod_names).await;
    let ignore_empty: &[Case] = &[
        ("empty.default.svc.cluster.local.", RecordType::A, NX),
        (
            "api.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "api.default.svc.cluster.local. 5 IN A 10.96.0.20"],
        ),
    ];
    run(&["--ignore-empty-service"], ignore_empty).await;
    let noendpoints: &[Case] = &[
        ("nginx.default.svc.cluster.local.", RecordType::A, NX),
        ("web-0.nginx.default.svc.cluster.local.", RecordType::A, NX),
        (
            "api.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "api.default.svc.cluster.local. 5 IN A 10.96.0.20"],
        ),
    ];
    run(&["--noendpoints"], noendpoints).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_zones_and_separate_ttls() {
    let cases: &[Case] = &[
        (
            "web-0.nginx.default.svc.example.org.",
            RecordType::A,
            &[";; No Error", "web-0.nginx.default.svc.example.org. 30 IN A 10.244.1.5"],
        ),
        (
            "web-0.nginx.default.svc.cluster.local.",
            RecordType::A,
            &[";; No Error", "web-0.nginx.default.svc.cluster.local. 30 IN A 10.244.1.5"],
        ),
        (
            "web-9.nginx.default.svc.example.org.",
            RecordType::A,
            // RFC 2308 section 3: a negative answer's SOA TTL is min(SOA TTL, MINIMUM).
            &[";; Non-Existent Domain", ";; AUTHORITY example.org. 1 SOA"],
        ),
    ];
    run(&["--zone", "cluster.local,example.org", "--ttl", "30", "--soa-ttl", "60", "--soa-minimum", "1"], cases).await;
}

/// The StatefulSet recreation timeline through the manifests source: every intermediate answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statefulset_recreation_timeline_through_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service("default", "nginx", json!({"clusterIP": "None", "selector": {"app": "nginx"}}), json!({}));
    let marker = |n: u8| pod("default", "m-0", "marker", &[&format!("10.99.0.{n}")], Some(("m-0", "marker")), true);
    let marker_svc =
        service("default", "marker", json!({"clusterIP": "None", "selector": {"app": "marker"}}), json!({}));
    let web1 = pod("default", "web-1", "nginx", &["10.244.2.7"], Some(("web-1", "nginx")), true);
    let step = |web0: Option<Value>, n: u8| {
        let mut objs = vec![svc.clone(), marker_svc.clone(), marker(n), web1.clone()];
        objs.extend(web0);
        let tmp = dir.path().join(".tmp");
        let text: Vec<String> = objs.iter().map(|o| o.to_string()).collect();
        std::fs::write(&tmp, text.join("\n---\n")).unwrap();
        std::fs::rename(&tmp, dir.path().join("sts.yaml")).unwrap();
    };
    step(Some(pod("default", "web-0", "nginx", &["10.244.1.5"], Some(("web-0", "nginx")), true)), 1);
    let s = tokio::task::block_in_place(|| ServerProcess::start(&["--manifests", dir.path().to_str().unwrap()]));
    s.wait_for_log("first full sync complete", WAIT);
    let a = |name: &str| {
        let dns = s.dns;
        let name = format!("{name}.default.svc.cluster.local.");
        async move {
            let (m, _) = udp_message(dns, &query(&name, RecordType::A, None)).await;
            support::dns::addresses(&m)
        }
    };
    let applied = |n: u8| {
        let want = vec![format!("10.99.0.{n}")];
        let a = &a;
        async move { eventually("step applied", WAIT, || async { (a("m-0.marker").await == want).then_some(()) }).await }
    };
    assert_eq!(a("web-0.nginx").await, ["10.244.1.5"]);
    // Deleted.
    step(None, 2);
    applied(2).await;
    assert!(a("web-0.nginx").await.is_empty());
    assert_eq!(a("nginx").await, ["10.244.2.7"]);
    // Recreated, Pending, no IP.
    let mut pending = pod("default", "web-0", "nginx", &[], Some(("web-0", "nginx")), false);
    pending["status"] = json!({"phase": "Pending"});
    step(Some(pending), 3);
    applied(3).await;
    assert!(a("web-0.nginx").await.is_empty());
    assert_eq!(a("nginx").await, ["10.244.2.7"]);
    // New IP, not ready.
    step(Some(pod("default", "web-0", "nginx", &["10.244.7.7"], Some(("web-0", "nginx")), false)), 4);
    applied(4).await;
    assert!(a("web-0.nginx").await.is_empty());
    assert_eq!(a("nginx").await, ["10.244.2.7"]);
    // Ready.
    step(Some(pod("default", "web-0", "nginx", &["10.244.7.7"], Some(("web-0", "nginx")), true)), 5);
    applied(5).await;
    assert_eq!(a("web-0.nginx").await, ["10.244.7.7"]);
    assert_eq!(a("nginx").await, ["10.244.2.7", "10.244.7.7"]);
}

/// What CoreDNS answers and we did not before: `<ns>.svc` of a namespace that exists without a
/// Service, `pod.<zone>` in every pods mode and `<ns>.pod` by the namespace's existence (CoreDNS
/// `parseRequest`, `findServices`, `findPods`); endpoint names and their PTR for ClusterIP
/// Services (CoreDNS `findServices`: `svc.Headless() || r.endpoint != ""`; `reverse.go`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn namespaces_that_exist_pod_non_terminals_and_clusterip_endpoint_names() {
    let api_ep = &[";; No Error", "10-244-5-1.api.default.svc.cluster.local. 5 IN A 10.244.5.1"];
    let cases: &[Case] = &[
        ("empty.svc.cluster.local.", RecordType::A, NODATA),
        ("nosuch.svc.cluster.local.", RecordType::A, NX),
        ("pod.cluster.local.", RecordType::A, NODATA),
        ("default.pod.cluster.local.", RecordType::A, NX),
        ("10-244-5-1.api.default.svc.cluster.local.", RecordType::A, api_ep),
        (
            "1.5.244.10.in-addr.arpa.",
            RecordType::PTR,
            &[";; No Error", "1.5.244.10.in-addr.arpa. 5 IN PTR 10-244-5-1.api.default.svc.cluster.local."],
        ),
        // The ClusterIP Service's SRV still names the Service.
        (
            "_http._tcp.api.default.svc.cluster.local.",
            RecordType::SRV,
            &[
                ";; No Error",
                "_http._tcp.api.default.svc.cluster.local. 5 IN SRV 0 100 8080 api.default.svc.cluster.local.",
                ";; ADDITIONAL api.default.svc.cluster.local. 5 IN A 10.96.0.20",
                ";; ADDITIONAL api.default.svc.cluster.local. 5 IN AAAA fd00::20",
            ],
        ),
    ];
    run(&["--zone", "cluster.local,10.244.0.0/16"], cases).await;
    let insecure: &[Case] = &[
        ("pod.cluster.local.", RecordType::A, NODATA),
        ("empty.pod.cluster.local.", RecordType::A, NODATA),
        ("nosuch.pod.cluster.local.", RecordType::A, NX),
        ("10-0-0-1.nosuch.pod.cluster.local.", RecordType::A, NX),
        (
            "10-0-0-1.empty.pod.cluster.local.",
            RecordType::A,
            &[";; No Error", "10-0-0-1.empty.pod.cluster.local. 5 IN A 10.0.0.1"],
        ),
    ];
    run(&["--pods", "insecure"], insecure).await;
    let verified: &[Case] =
        &[("empty.pod.cluster.local.", RecordType::A, NODATA), ("nosuch.pod.cluster.local.", RecordType::A, NX)];
    run(&["--pods", "verified"], verified).await;
    let headless_only: &[Case] = &[("10-244-5-1.api.default.svc.cluster.local.", RecordType::A, NX)];
    run(&["--endpoint-names", "headless"], headless_only).await;
}
