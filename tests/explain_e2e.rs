//! `headless-dns explain` and `/debug/explain` through the real binary, for both sources: what the
//! server answers for a name and why: each rule (hostname, dashed IP, ClusterIP, ExternalName,
//! SRV port, PTR claim), each negative reason (no such Service, endpoint not Ready, expected by a
//! StatefulSet with its pod Pending, namespace not served, not one of our zones), the objects'
//! identities and states from the source, and nothing about objects DNS would not serve.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use support::fake_api::FakeApi;
use support::objects::statefulset_pod;
use support::server::{ServerProcess, binary, eventually, http_get};

const WAIT: Duration = Duration::from_secs(20);

fn objects() -> Vec<Value> {
    let svc = |ns: &str, name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec});
    vec![
        svc(
            "default",
            "nginx",
            json!({"clusterIP": "None", "selector": {"app": "nginx"},
            "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}),
        ),
        svc("default", "api", json!({"clusterIP": "10.96.0.20", "selector": {"app": "api"}})),
        svc("default", "ext", json!({"type": "ExternalName", "externalName": "example.com"})),
        svc("hidden", "secret", json!({"clusterIP": "None", "selector": {"app": "secret"}})),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"serviceName": "nginx", "replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
        statefulset_pod("default", "web-0", "nginx", Some("10.244.1.5"), true),
        statefulset_pod("default", "web-1", "nginx", Some("10.244.1.6"), false),
        statefulset_pod("default", "web-2", "nginx", None, false),
        // No hostname: named by its dashed IP.
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "loose", "namespace": "default", "labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running", "podIP": "10.244.3.3", "conditions": [{"type": "Ready", "status": "True",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}),
        statefulset_pod("hidden", "secret-0", "secret", Some("10.244.9.9"), true),
        // A hostname over 63 octets: an endpoint whose name is never served.
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "long", "namespace": "default", "labels": {"app": "nginx"}},
            "spec": {"hostname": "h".repeat(64), "subdomain": "nginx", "containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running", "podIP": "10.244.3.4", "conditions": [{"type": "Ready", "status": "True"}]}}),
    ]
}

const ARGS: &[&str] =
    &["--namespaces", "default", "--zone", "cluster.local,10.244.0.0/16", "--debug-listen", "127.0.0.1:0"];

fn debug_addr(s: &ServerProcess) -> SocketAddr {
    s.log_field("debug listening", "addr").expect("the debug listener's address").parse().unwrap()
}

fn explain(s: &ServerProcess, name: &str, qtype: &str) -> Value {
    let (code, body) = http_get(debug_addr(s), &format!("/debug/explain?name={name}&type={qtype}"));
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("JSON: {e}: {body}"))
}

fn reason(v: &Value) -> String {
    v["why"]["reason"].as_str().unwrap_or_default().to_owned()
}

fn kinds(v: &Value) -> Vec<String> {
    v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["name"].as_str().unwrap()))
        .collect()
}

/// The rules and reasons every source explains alike.
fn check_rules(s: &ServerProcess) {
    let web0 = explain(s, "web-0.nginx.default.svc.cluster.local", "A");
    assert_eq!(web0["answer"]["rcode"], "NOERROR");
    assert_eq!(web0["answer"]["answer"][0], "web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.1.5");
    assert!(reason(&web0).contains("named by its hostname"), "{web0:#}");
    assert_eq!(kinds(&web0), ["Service/nginx", "Pod/web-0", "StatefulSet/web"]);
    assert_eq!(web0["objects"][1]["details"]["phase"], "Running", "{web0:#}");

    let loose = explain(s, "10-244-3-3.nginx.default.svc.cluster.local", "A");
    assert!(reason(&loose).contains("dashed IP"), "{loose:#}");
    assert_eq!(loose["objects"][1]["details"]["ready"], "True");
    assert!(loose["objects"][1]["details"]["ready_since_s"].as_f64().is_some_and(|s| s > 0.0), "{loose:#}");

    let web1 = explain(s, "web-1.nginx.default.svc.cluster.local", "A");
    assert_eq!(web1["answer"]["rcode"], "NXDOMAIN");
    assert!(reason(&web1).contains("not published: not Ready"), "{web1:#}");

    let web2 = explain(s, "web-2.nginx.default.svc.cluster.local", "A");
    assert_eq!(web2["answer"]["negative_ttl"], 0, "{web2:#}");
    assert!(reason(&web2).contains("expected by StatefulSet web (replicas 3"), "{web2:#}");
    assert_eq!(web2["why"]["expected_by"]["pod_state"], "Pending (no IP yet)");
    assert_eq!(web2["why"]["expected_by"]["missing"], 2, "web-1 and web-2: {web2:#}");
    assert!(web2["why"]["expected_by"]["gap_s"].is_number() && web2["why"]["expected_by"]["longest_gap_s"].is_number());
    assert!(kinds(&web2).contains(&"StatefulSet/web".to_owned()) && kinds(&web2).contains(&"Pod/web-2".to_owned()));

    let web9 = explain(s, "web-9.nginx.default.svc.cluster.local", "A");
    assert_eq!(web9["answer"]["negative_ttl"], 5);
    assert!(reason(&web9).contains("no endpoint of Service nginx is named web-9"), "{web9:#}");

    let svc = explain(s, "nginx.default.svc.cluster.local", "A");
    assert!(reason(&svc).contains("its 3 ready endpoints"), "{svc:#}");
    assert_eq!(svc["answer"]["answer"].as_array().unwrap().len(), 3, "web-0, loose and long: {svc:#}");
    let endpoints = svc["why"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 4, "web-0, web-1, loose and long: {svc:#}");
    let long = endpoints.iter().find(|e| e["pod"] == "long").unwrap();
    assert_eq!((&long["published"], &long["named"]), (&json!(true), &json!(false)), "{long:#}");
    assert!(long["state"].as_str().unwrap().contains("name is too long"), "{long:#}");

    let srv = explain(s, "_web._tcp.nginx.default.svc.cluster.local", "SRV");
    assert!(reason(&srv).contains("named port web/tcp (80)"), "{srv:#}");

    let api = explain(s, "api.default.svc.cluster.local", "A");
    assert!(reason(&api).contains("ClusterIP Service api: its cluster IPs 10.96.0.20"), "{api:#}");
    let ext = explain(s, "ext.default.svc.cluster.local", "A");
    assert!(reason(&ext).contains("a CNAME to example.com"), "{ext:#}");
    let none = explain(s, "nope.default.svc.cluster.local", "A");
    assert!(reason(&none).contains("no Service nope in namespace default"), "{none:#}");

    let ptr = explain(s, "5.1.244.10.in-addr.arpa", "PTR");
    assert!(reason(&ptr).contains("web-0.nginx.default.svc (a headless endpoint's hostname)"), "{ptr:#}");

    let outside = explain(s, "example.com", "A");
    assert_eq!(outside["answer"]["rcode"], "REFUSED");
    assert!(reason(&outside).contains("not one of our zones"), "{outside:#}");

    // A namespace left out: the reason only, not a word about its objects.
    let hidden = explain(s, "secret-0.secret.hidden.svc.cluster.local", "A");
    assert!(reason(&hidden).contains("namespace hidden is not served"), "{hidden:#}");
    assert!(hidden["objects"].as_array().unwrap().is_empty(), "{hidden:#}");
    assert!(!hidden.to_string().contains("10.244.9.9"), "{hidden:#}");

    // Watches are reported.
    assert_eq!(web0["watches"]["pods"]["synced"], true, "{web0:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_says_why_from_the_api() {
    let api = FakeApi::start().await;
    for o in objects() {
        api.apply(o);
    }
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, ARGS, &[]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    eventually("the StatefulSet listed", WAIT, || async {
        let v = tokio::task::block_in_place(|| explain(&s, "web-2.nginx.default.svc.cluster.local", "A"));
        (v["why"]["expected_by"].is_object()).then_some(())
    })
    .await;
    tokio::task::block_in_place(|| {
        check_rules(&s);
        // The API's identity of each object.
        let web0 = explain(&s, "web-0.nginx.default.svc.cluster.local", "A");
        let uid = web0["objects"][0]["details"]["uid"].as_str().unwrap_or_default().to_owned();
        assert!(!uid.is_empty() && web0["objects"][0]["details"]["resourceVersion"].is_string(), "{web0:#}");
        // The command for a person.
        let out = std::process::Command::new(binary())
            .args(["explain", "web-2.nginx.default.svc.cluster.local", "A", "--server", &debug_addr(&s).to_string()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("answer:  NXDOMAIN, authoritative, negative TTL 0 s"), "{text}");
        assert!(
            text.contains("expected: by StatefulSet web (replicas 3, ordinals 0..3): pod web-2 is Pending"),
            "{text}"
        );
        assert!(text.contains("Pod default/web-2  phase Pending"), "{text}");
        assert!(text.contains("statefulsets: synced (optional)"), "{text}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_says_why_from_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects()});
    std::fs::write(dir.path().join("all.json"), list.to_string()).unwrap();
    let mut args = vec!["--manifests", dir.path().to_str().unwrap()];
    args.extend_from_slice(ARGS);
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::start(&args);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    tokio::task::block_in_place(|| check_rules(&s));
}

#[test]
fn explain_without_a_server_says_where_it_asked() {
    let out = std::process::Command::new(binary())
        .args(["explain", "web-0.nginx.default.svc.cluster.local", "--server", "127.0.0.1:9"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("127.0.0.1:9") && err.contains("--debug-listen"), "{err}");
}
