//! Topology-pinned names (`--zonal`, CoreDNS's `zonal`, PR #8388) through the real binary, for
//! both sources: CoreDNS's own `zonal_test.go` cases as zone-file text (zones from EndpointSlices'
//! `zone`), the same from pods and their nodes' `topology.kubernetes.io/zone` in `pods` mode, and
//! the option off.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use support::dns::{query, udp_message};
use support::fake_api::FakeApi;
use support::server::ServerProcess;

const WAIT: Duration = Duration::from_secs(20);
const ZONE: &str = "hdls.testns.svc.cluster.local.";

/// CoreDNS's `zonal_test.go` objects: headless `hdls` with 172.0.0.1 in us-west-2a and 172.0.0.2,
/// 172.0.0.3 in us-west-2b (port 80 `http`), and the ClusterIP `clstr`. Plus `hp`, a headless
/// Service with a selector whose pods run on nodes n1 (us-west-2a) and n2 (us-west-2b).
fn fixture() -> Vec<Value> {
    let ep = |ip: &str, zone: &str| json!({"addresses": [ip], "zone": zone, "conditions": {"ready": true}});
    let pod = |name: &str, ip: &str, node: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "testns", "labels": {"app": "hp"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 80}]}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}})
    };
    let node = |name: &str, zone: &str| json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}}});
    vec![
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hdls", "namespace": "testns"},
            "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "hdls-1", "namespace": "testns", "labels": {"kubernetes.io/service-name": "hdls"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": [ep("172.0.0.1", "us-west-2a"), ep("172.0.0.2", "us-west-2b"), ep("172.0.0.3", "us-west-2b")]}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "clstr", "namespace": "testns"},
            "spec": {"clusterIP": "10.0.0.9", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hp", "namespace": "testns"},
            "spec": {"clusterIP": "None", "selector": {"app": "hp"}, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
        pod("hp-a", "10.9.0.1", "n1"),
        pod("hp-b", "10.9.0.2", "n2"),
        node("n1", "us-west-2a"),
        node("n2", "us-west-2b"),
    ]
}

fn render(m: &Message) -> Vec<String> {
    let line = |r: &hickory_proto::rr::Record| format!("{} {} IN {} {}", r.name, r.ttl, r.record_type(), r.data);
    let mut out = vec![format!(";; {}", m.metadata.response_code)];
    out.extend(m.answers.iter().map(line));
    out.extend(m.authorities.iter().map(|r| format!(";; AUTHORITY {} {}", r.name, r.record_type())));
    out.extend(m.additionals.iter().map(|r| format!(";; ADDITIONAL {}", line(r))));
    out
}

type Case = (String, RecordType, Vec<String>);

fn case(prefix: &str, qtype: RecordType, want: &[&str]) -> Case {
    (format!("{prefix}.{ZONE}"), qtype, want.iter().map(|s| s.to_string()).collect())
}

const NODATA: &[&str] = &[";; No Error", ";; AUTHORITY cluster.local. SOA"];
const NX: &[&str] = &[";; Non-Existent Domain", ";; AUTHORITY cluster.local. SOA"];

fn zonal_cases() -> Vec<Case> {
    let a = |n: &str, ip: &str| format!("{n}.{ZONE} 5 IN A {ip}");
    let pin2a = "us-west-2a.pin._zone";
    let pin2b = "us-west-2b.pin._zone";
    let srv = |owner: &str, w: u16, ips: &[&str]| -> Vec<String> {
        let mut v = vec![";; No Error".to_string()];
        v.extend(ips.iter().map(|ip| {
            format!("{owner}.{ZONE} 5 IN SRV 0 {w} 80 {}.hdls.testns.svc.cluster.local.", ip.replace('.', "-"))
        }));
        v.extend(
            ips.iter()
                .map(|ip| format!(";; ADDITIONAL {}.hdls.testns.svc.cluster.local. 5 IN A {ip}", ip.replace('.', "-"))),
        );
        v
    };
    let mut cases = vec![
        (format!("{pin2a}.{ZONE}"), RecordType::A, vec![";; No Error".into(), a(pin2a, "172.0.0.1")]),
        (
            format!("{pin2b}.{ZONE}"),
            RecordType::A,
            vec![";; No Error".into(), a(pin2b, "172.0.0.2"), a(pin2b, "172.0.0.3")],
        ),
        case("us-west-2c.pin._zone", RecordType::A, NODATA),
        (
            format!("us-west-2a.prefer._zone.{ZONE}"),
            RecordType::A,
            vec![";; No Error".into(), a("us-west-2a.prefer._zone", "172.0.0.1")],
        ),
        (
            format!("us-west-2c.prefer._zone.{ZONE}"),
            RecordType::A,
            vec![
                ";; No Error".into(),
                a("us-west-2c.prefer._zone", "172.0.0.1"),
                a("us-west-2c.prefer._zone", "172.0.0.2"),
                a("us-west-2c.prefer._zone", "172.0.0.3"),
            ],
        ),
        case("us-west-2a.florp._zone", RecordType::A, NX),
        case("us-west-2c.pin._zone", RecordType::TXT, NODATA),
        case("us-west-2c.prefer._zone", RecordType::TXT, NODATA),
        (
            format!("us-west-2c.prefer._zone.{ZONE}"),
            RecordType::SRV,
            srv("us-west-2c.prefer._zone", 33, &["172.0.0.1", "172.0.0.2", "172.0.0.3"]),
        ),
        (format!("{pin2b}.{ZONE}"), RecordType::SRV, srv(pin2b, 50, &["172.0.0.2", "172.0.0.3"])),
    ];
    for (name, want) in [
        ("us-west-2a.pin._zone.ghost.testns.svc.cluster.local.", NX),
        ("us-west-2a.pin._zone.clstr.testns.svc.cluster.local.", NX),
        ("pin._zone.hdls.testns.svc.cluster.local.", NODATA),
        ("prefer._zone.hdls.testns.svc.cluster.local.", NODATA),
        ("_zone.hdls.testns.svc.cluster.local.", NODATA),
        ("pin._zone.clstr.testns.svc.cluster.local.", NX),
    ] {
        cases.push((name.to_owned(), RecordType::A, want.iter().map(|s| s.to_string()).collect()));
    }
    cases
}

async fn check(dns: SocketAddr, what: &str, cases: &[Case]) {
    for (name, qtype, want) in cases {
        let (m, _) = udp_message(dns, &query(name, *qtype, Some(1232))).await;
        assert_eq!(render(&m), *want, "\n{what}: {name} {qtype}");
    }
}

async fn start_both(args: &[&str]) -> (ServerProcess, ServerProcess, FakeApi, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": fixture()});
    std::fs::write(dir.path().join("all.json"), list.to_string()).unwrap();
    let mut full = vec!["--manifests", dir.path().to_str().unwrap()];
    full.extend_from_slice(args);
    let manifests = tokio::task::block_in_place(|| {
        let s = ServerProcess::start(&full);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    let api = FakeApi::start().await;
    for o in fixture() {
        api.apply(o);
    }
    let watching = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, args, &[]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    (manifests, watching, api, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coredns_zonal_cases_from_endpointslices_for_both_sources() {
    let (manifests, watching, _api, _dir) = start_both(&["--zonal"]).await;
    check(manifests.dns, "manifests", &zonal_cases()).await;
    // The Node watch is optional and may list after the first answers: wait for a node's zone.
    let pinned = "us-west-2a.pin._zone.hp.testns.svc.cluster.local.";
    support::server::eventually("the nodes listed", WAIT, || async {
        let (m, _) = udp_message(watching.dns, &query(pinned, RecordType::A, None)).await;
        (!m.answers.is_empty()).then_some(())
    })
    .await;
    check(watching.dns, "kubernetes", &zonal_cases()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zones_of_pods_come_from_their_nodes_in_pods_mode() {
    let (manifests, watching, api, _dir) = start_both(&["--zonal"]).await;
    let name = |z: &str, d: &str| format!("{z}.{d}._zone.hp.testns.svc.cluster.local.");
    let ips = |m: &Message| support::dns::addresses(m);
    for (what, dns) in [("manifests", manifests.dns), ("kubernetes", watching.dns)] {
        support::server::eventually(&format!("{what}: hp-a pinned to us-west-2a"), WAIT, || async {
            let (m, _) = udp_message(dns, &query(&name("us-west-2a", "pin"), RecordType::A, None)).await;
            (ips(&m) == ["10.9.0.1"]).then_some(())
        })
        .await;
        let (m, _) = udp_message(dns, &query(&name("us-west-2b", "pin"), RecordType::A, None)).await;
        assert_eq!(ips(&m), ["10.9.0.2"], "{what}");
        let (m, _) = udp_message(dns, &query(&name("us-west-2c", "prefer"), RecordType::A, None)).await;
        assert_eq!(ips(&m), ["10.9.0.1", "10.9.0.2"], "{what}: prefer falls back to every endpoint");
    }
    // A node moves to another zone: its pods' pinned names follow.
    api.apply(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2", "labels": {"topology.kubernetes.io/zone": "us-west-2a"}}}));
    support::server::eventually("hp-b moved to us-west-2a", WAIT, || async {
        let (m, _) = udp_message(watching.dns, &query(&name("us-west-2a", "pin"), RecordType::A, None)).await;
        (ips(&m) == ["10.9.0.1", "10.9.0.2"]).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zonal_off_answers_nxdomain_and_watches_no_node() {
    let (manifests, watching, api, _dir) = start_both(&[]).await;
    let off = vec![case("us-west-2a.pin._zone", RecordType::A, NX), case("us-west-2c.prefer._zone", RecordType::A, NX)];
    check(manifests.dns, "manifests", &off).await;
    check(watching.dns, "kubernetes", &off).await;
    assert_eq!(api.list_count("Node") + api.watch_count("Node"), 0, "no Node watch without --zonal");
}

/// `explain` gives the zonal rule's reason next to the real answer, for each of its outcomes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_tells_each_zonal_outcome() {
    let (manifests, _watching, _api, _dir) = start_both(&["--zonal", "--debug-listen", "127.0.0.1:0"]).await;
    let debug: SocketAddr = manifests.log_field("debug listening", "addr").unwrap().parse().unwrap();
    for (name, rcode, reason) in [
        ("_zone.hdls", "NOERROR", "an empty non-terminal above the topology-pinned names"),
        ("pin._zone.hdls", "NOERROR", "an empty non-terminal above the topology-pinned names"),
        ("us-west-2b.pin._zone.hdls", "NOERROR", "the 2 ready endpoints of headless Service hdls in zone us-west-2b"),
        ("us-west-2c.pin._zone.hdls", "NOERROR", "no ready endpoint of Service hdls in zone us-west-2c: NODATA"),
        (
            "us-west-2c.prefer._zone.hdls",
            "NOERROR",
            "no ready endpoint of Service hdls in zone us-west-2c: every endpoint",
        ),
        ("us-west-2a.florp._zone.hdls", "NXDOMAIN", "`florp` is not a directive"),
        ("us-west-2a.pin._zone.clstr", "NXDOMAIN", "Service clstr is not headless"),
    ] {
        let url = format!("/debug/explain?name={name}.testns.svc.cluster.local&type=A");
        let (code, body) = tokio::task::block_in_place(|| support::server::http_get(debug, &url));
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["answer"]["rcode"], rcode, "{name}: {v:#}");
        let got = v["why"]["reason"].as_str().unwrap_or_default();
        assert!(got.starts_with(reason), "{name}: {got}");
    }
}
