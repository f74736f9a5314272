//! Multicluster DNS (`--multicluster-zone clusterset.local`; KEP-1645, the mcs-api multicluster
//! DNS specification, and CoreDNS's `multicluster` option) through the real binary, for both
//! sources: ServiceImports of type ClusterSetIP and Headless, EndpointSlices labelled
//! `multicluster.kubernetes.io/service-name` / `source-cluster`, SRV, PTR, `dns-version`, and a
//! cluster without the ServiceImport CRD.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use support::dns::{query, udp_message};
use support::fake_api::FakeApi;
use support::server::{ServerProcess, eventually, http_get};

const WAIT: Duration = Duration::from_secs(20);
const ARGS: &[&str] =
    &["--multicluster-zone", "clusterset.local", "--zone", "cluster.local,10.0.0.0/8", "--debug-listen", "127.0.0.1:0"];

fn fixture() -> Vec<Value> {
    let import = |name: &str, spec: Value| {
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": name, "namespace": "ns"}, "spec": spec})
    };
    let slice = |name: &str, cluster: &str, endpoints: Value| {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "ns", "labels": {
                "multicluster.kubernetes.io/service-name": "db", "multicluster.kubernetes.io/source-cluster": cluster}},
            "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}], "endpoints": endpoints})
    };
    // CoreDNS's TestMultiClusterHeadless (plugin/kubernetes/controller_test.go): Headless imports
    // svc1..svc4 in testns, one slice each labelled only with the multicluster service name (no
    // source cluster), one endpoint `foo<N>` at 10.0.0.<N-1> without conditions (ready).
    let coredns = (1..=4).flat_map(|n| {
        let name = format!("svc{n}");
        [
            json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
                "metadata": {"name": name, "namespace": "testns"},
                "spec": {"type": "Headless", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": name, "namespace": "testns",
                    "labels": {"multicluster.kubernetes.io/service-name": name}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                "endpoints": [{"addresses": [format!("10.0.0.{}", n - 1)], "hostname": format!("foo{n}")}]}),
        ]
    });
    let mut objects = vec![
        import(
            "api",
            json!({"type": "ClusterSetIP", "ips": ["10.50.0.1"], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        ),
        import("db", json!({"type": "Headless", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]})),
        slice("db-c1", "c1", json!([{"addresses": ["10.1.1.1"], "hostname": "db-0", "conditions": {"ready": true}}])),
        slice(
            "db-c2",
            "c2",
            json!([{"addresses": ["10.2.2.2"], "conditions": {"ready": true}},
                   {"addresses": ["10.2.2.3"], "conditions": {"ready": false}}]),
        ),
        // The cluster's own `api` Service: its cluster.local name is untouched.
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "ns"},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
    ];
    objects.extend(coredns);
    objects
}

fn render(m: &Message) -> Vec<String> {
    let line = |r: &hickory_proto::rr::Record| format!("{} {} IN {} {}", r.name, r.ttl, r.record_type(), r.data);
    let mut out = vec![format!(";; {}", m.metadata.response_code)];
    out.extend(m.answers.iter().map(line));
    out.extend(m.authorities.iter().map(|r| format!(";; AUTHORITY {} {}", r.name, r.record_type())));
    out.extend(m.additionals.iter().map(|r| format!(";; ADDITIONAL {}", line(r))));
    out
}

fn cases() -> Vec<(&'static str, RecordType, Vec<&'static str>)> {
    const NX: &[&str] = &[";; Non-Existent Domain", ";; AUTHORITY clusterset.local. SOA"];
    const NODATA: &[&str] = &[";; No Error", ";; AUTHORITY clusterset.local. SOA"];
    vec![
        (
            "api.ns.svc.clusterset.local.",
            RecordType::A,
            vec![";; No Error", "api.ns.svc.clusterset.local. 5 IN A 10.50.0.1"],
        ),
        (
            "_http._tcp.api.ns.svc.clusterset.local.",
            RecordType::SRV,
            vec![
                ";; No Error",
                "_http._tcp.api.ns.svc.clusterset.local. 5 IN SRV 0 100 80 api.ns.svc.clusterset.local.",
                ";; ADDITIONAL api.ns.svc.clusterset.local. 5 IN A 10.50.0.1",
            ],
        ),
        (
            "db.ns.svc.clusterset.local.",
            RecordType::A,
            vec![
                ";; No Error",
                "db.ns.svc.clusterset.local. 5 IN A 10.1.1.1",
                "db.ns.svc.clusterset.local. 5 IN A 10.2.2.2",
            ],
        ),
        (
            "db-0.c1.db.ns.svc.clusterset.local.",
            RecordType::A,
            vec![";; No Error", "db-0.c1.db.ns.svc.clusterset.local. 5 IN A 10.1.1.1"],
        ),
        (
            "10-2-2-2.c2.db.ns.svc.clusterset.local.",
            RecordType::A,
            vec![";; No Error", "10-2-2-2.c2.db.ns.svc.clusterset.local. 5 IN A 10.2.2.2"],
        ),
        ("10-2-2-3.c2.db.ns.svc.clusterset.local.", RecordType::A, NX.to_vec()),
        ("c1.db.ns.svc.clusterset.local.", RecordType::A, NODATA.to_vec()),
        (
            "_pg._tcp.db.ns.svc.clusterset.local.",
            RecordType::SRV,
            vec![
                ";; No Error",
                "_pg._tcp.db.ns.svc.clusterset.local. 5 IN SRV 0 50 5432 10-2-2-2.c2.db.ns.svc.clusterset.local.",
                "_pg._tcp.db.ns.svc.clusterset.local. 5 IN SRV 0 50 5432 db-0.c1.db.ns.svc.clusterset.local.",
                ";; ADDITIONAL 10-2-2-2.c2.db.ns.svc.clusterset.local. 5 IN A 10.2.2.2",
                ";; ADDITIONAL db-0.c1.db.ns.svc.clusterset.local. 5 IN A 10.1.1.1",
            ],
        ),
        (
            "dns-version.clusterset.local.",
            RecordType::TXT,
            vec![";; No Error", "dns-version.clusterset.local. 5 IN TXT 1.0.0"],
        ),
        (
            "dns-version.cluster.local.",
            RecordType::TXT,
            vec![";; No Error", "dns-version.cluster.local. 5 IN TXT 1.1.0"],
        ),
        ("nope.ns.svc.clusterset.local.", RecordType::A, NX.to_vec()),
        ("api.ns.svc.clusterset.local.", RecordType::AAAA, NODATA.to_vec()),
        ("db-0.c1.db.ns.svc.clusterset.local.", RecordType::AAAA, NODATA.to_vec()),
        // CoreDNS's TestMultiClusterHeadless: NOERROR with the endpoint; no per-cluster name
        // without a source cluster.
        (
            "svc2.testns.svc.clusterset.local.",
            RecordType::A,
            vec![";; No Error", "svc2.testns.svc.clusterset.local. 5 IN A 10.0.0.1"],
        ),
        ("foo2.svc2.testns.svc.clusterset.local.", RecordType::A, NX.to_vec()),
        ("ns.svc.clusterset.local.", RecordType::A, NODATA.to_vec()),
        ("api.ns.svc.cluster.local.", RecordType::A, vec![";; No Error", "api.ns.svc.cluster.local. 5 IN A 10.96.0.1"]),
        (
            "1.0.50.10.in-addr.arpa.",
            RecordType::PTR,
            vec![";; No Error", "1.0.50.10.in-addr.arpa. 5 IN PTR api.ns.svc.clusterset.local."],
        ),
        (
            "1.0.96.10.in-addr.arpa.",
            RecordType::PTR,
            vec![";; No Error", "1.0.96.10.in-addr.arpa. 5 IN PTR api.ns.svc.cluster.local."],
        ),
    ]
}

async fn check(dns: SocketAddr, what: &str) {
    for (name, qtype, want) in cases() {
        let (m, _) = udp_message(dns, &query(name, qtype, Some(1232))).await;
        assert_eq!(render(&m), want, "\n{what}: {name} {qtype}");
    }
}

/// `/debug/explain` for names of the multicluster zone: the import, its slices, the cluster.
fn check_explain(s: &ServerProcess) {
    let debug: SocketAddr = s.log_field("debug listening", "addr").unwrap().parse().unwrap();
    let explain = |name: &str, qtype: &str| -> Value {
        let (code, body) = http_get(debug, &format!("/debug/explain?name={name}&type={qtype}"));
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    let objects = |v: &Value| -> Vec<String> {
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| format!("{}/{}", o["kind"], o["name"]).replace('"', ""))
            .collect()
    };
    let v = explain("db-0.c1.db.ns.svc.clusterset.local", "A");
    assert_eq!(v["zone"], "clusterset.local.", "{v:#}");
    assert_eq!(v["answer"]["answer"][0], "db-0.c1.db.ns.svc.clusterset.local. 5 IN A 10.1.1.1");
    assert_eq!(v["why"]["reason"], "endpoint db-0 of Headless ServiceImport db from cluster c1: its address", "{v:#}");
    assert_eq!(objects(&v), ["ServiceImport/db", "EndpointSlice/db-c1"]);
    assert!(v["objects"][0]["details"].is_object(), "the source finds the ServiceImport: {v:#}");
    let v = explain("db.ns.svc.clusterset.local", "A");
    assert_eq!(
        v["why"]["reason"],
        "Headless ServiceImport db: the 2 ready endpoints of every cluster; SRV: their ports"
    );
    assert_eq!(v["why"]["endpoints"].as_array().unwrap().len(), 3, "the not-ready one too: {v:#}");
    let v = explain("c2.db.ns.svc.clusterset.local", "A");
    assert_eq!(v["answer"]["rcode"], "NOERROR");
    assert!(v["why"]["reason"].as_str().unwrap().contains("an empty non-terminal"), "{v:#}");
    let v = explain("api.ns.svc.clusterset.local", "A");
    assert_eq!(v["why"]["reason"], "ClusterSetIP ServiceImport api: its spec.ips 10.50.0.1; SRV: its ports");
    let v = explain("1.0.50.10.in-addr.arpa", "PTR");
    assert!(v["why"]["reason"].as_str().unwrap().contains("api.ns.svc in the multicluster zone"), "{v:#}");
    assert_eq!(objects(&v), ["ServiceImport/api"]);
    // The cluster's own Service of the same name is explained in its own zone.
    let v = explain("api.ns.svc.cluster.local", "A");
    assert_eq!(objects(&v), ["Service/api"], "{v:#}");
}

async fn imports_served(dns: SocketAddr) {
    eventually("the imports listed", WAIT, || async {
        let (m, _) = udp_message(dns, &query("api.ns.svc.clusterset.local.", RecordType::A, None)).await;
        (!m.answers.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusterset_names_from_the_api() {
    let api = FakeApi::start().await;
    for o in fixture() {
        api.apply(o);
    }
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, ARGS, &[]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    imports_served(s.dns).await;
    check(s.dns, "kubernetes").await;
    tokio::task::block_in_place(|| check_explain(&s));

    // Live: a cluster leaves the set, an import changes its IP, then goes away.
    api.delete("EndpointSlice", "ns", "db-c2");
    let addrs = |name: &'static str| async move {
        let (m, _) = udp_message(s.dns, &query(name, RecordType::A, None)).await;
        support::dns::addresses(&m)
    };
    eventually("c2 leaves the headless import", WAIT, || async {
        (addrs("db.ns.svc.clusterset.local.").await == ["10.1.1.1"]).then_some(())
    })
    .await;
    let (m, _) = udp_message(s.dns, &query("10-2-2-2.c2.db.ns.svc.clusterset.local.", RecordType::A, None)).await;
    assert_eq!(render(&m)[0], ";; Non-Existent Domain");
    let mut api_import = api.get("ServiceImport", "ns", "api").unwrap();
    api_import["spec"]["ips"] = json!(["10.50.0.9"]);
    api.apply(api_import);
    eventually("the import's new IP", WAIT, || async {
        (addrs("api.ns.svc.clusterset.local.").await == ["10.50.0.9"]).then_some(())
    })
    .await;
    let (m, _) = udp_message(s.dns, &query("1.0.50.10.in-addr.arpa.", RecordType::PTR, None)).await;
    assert_eq!(render(&m)[0], ";; Non-Existent Domain", "no stale PTR for the old IP");
    api.delete("ServiceImport", "ns", "api");
    eventually("the deleted import", WAIT, || async {
        let (m, _) = udp_message(s.dns, &query("api.ns.svc.clusterset.local.", RecordType::A, None)).await;
        (m.metadata.response_code == hickory_proto::op::ResponseCode::NXDomain).then_some(())
    })
    .await;
    let (m, _) = udp_message(s.dns, &query("api.ns.svc.cluster.local.", RecordType::A, None)).await;
    assert_eq!(support::dns::addresses(&m), ["10.96.0.1"], "the local Service of the same name stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusterset_names_from_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": fixture()});
    std::fs::write(dir.path().join("all.json"), list.to_string()).unwrap();
    let mut args = vec!["--manifests", dir.path().to_str().unwrap()];
    args.extend_from_slice(ARGS);
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::start(&args);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    check(s.dns, "manifests").await;
    tokio::task::block_in_place(|| check_explain(&s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_the_serviceimport_crd_has_no_imports_and_stays_ready() {
    let api = FakeApi::start().await;
    for o in fixture() {
        api.apply(o);
    }
    api.fail_kind("ServiceImport", Some(404));
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, ARGS, &[]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    tokio::task::block_in_place(|| s.wait_for_log("does not serve serviceimports", WAIT));
    let (code, body) = tokio::task::block_in_place(|| s.http_get("/readyz"));
    assert_eq!(code, 200, "{body}");
    let (m, _) = udp_message(s.dns, &query("api.ns.svc.clusterset.local.", RecordType::A, None)).await;
    assert_eq!(render(&m)[0], ";; Non-Existent Domain", "no imports");
    let (m, _) = udp_message(s.dns, &query("api.ns.svc.cluster.local.", RecordType::A, None)).await;
    assert_eq!(support::dns::addresses(&m), ["10.96.0.1"], "the cluster's names serve as ever");
    // Logged once, not on every retry.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let told = s.logs().iter().filter(|l| l.contains("does not serve serviceimports")).count();
    assert_eq!(told, 1);
    // The CRD gets installed: the imports appear without a restart.
    api.fail_kind("ServiceImport", None);
    eventually("imports once the CRD is served", Duration::from_secs(60), || async {
        let (m, _) = udp_message(s.dns, &query("api.ns.svc.clusterset.local.", RecordType::A, None)).await;
        (!m.answers.is_empty()).then_some(())
    })
    .await;
}

/// `--namespaces` and `--labels` leave imports out as they leave Services out, for both sources
/// (server-side selectors for the API, the same rule for files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_label_filters_apply_to_imports() {
    let mut objects = fixture();
    objects[0]["metadata"]["labels"] = json!({"hide": "yes"}); // the `api` import
    objects.push(json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": "web", "namespace": "other"}, "spec": {"type": "ClusterSetIP", "ips": ["10.50.0.7"]}}));
    let mut args = vec!["--labels", "!hide", "--namespaces", "ns"];
    args.extend_from_slice(ARGS);
    let api = FakeApi::start().await;
    for o in &objects {
        api.apply(o.clone());
    }
    let from_api = tokio::task::block_in_place(|| ServerProcess::watching(&api, &args, &[]));
    let dir = tempfile::tempdir().unwrap();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    std::fs::write(dir.path().join("all.json"), list.to_string()).unwrap();
    let mut file_args = vec!["--manifests", dir.path().to_str().unwrap()];
    file_args.extend_from_slice(&args);
    let from_files = tokio::task::block_in_place(|| ServerProcess::start(&file_args));
    for (s, what) in [(&from_api, "kubernetes"), (&from_files, "manifests")] {
        tokio::task::block_in_place(|| s.wait_for_log("first full sync complete", WAIT));
        eventually("the unfiltered import", WAIT, || async {
            let (m, _) = udp_message(s.dns, &query("db.ns.svc.clusterset.local.", RecordType::A, None)).await;
            (m.answers.len() == 2).then_some(())
        })
        .await;
        for name in ["api.ns.svc.clusterset.local.", "web.other.svc.clusterset.local."] {
            let (m, _) = udp_message(s.dns, &query(name, RecordType::A, None)).await;
            assert_eq!(render(&m)[0], ";; Non-Existent Domain", "{what}: {name} is filtered out");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_multicluster_zone_no_serviceimport_watch() {
    let api = FakeApi::start().await;
    for o in fixture() {
        api.apply(o);
    }
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, &[], &[]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    let (m, _) = udp_message(s.dns, &query("api.ns.svc.clusterset.local.", RecordType::A, None)).await;
    assert_eq!(m.metadata.response_code, hickory_proto::op::ResponseCode::Refused, "not one of our zones");
    assert_eq!(api.list_count("ServiceImport") + api.watch_count("ServiceImport"), 0);
}
