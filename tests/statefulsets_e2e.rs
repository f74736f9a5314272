//! StatefulSets through the real binary, for both sources (the fake API server and a folder of
//! manifests): a name a StatefulSet expects but that has no address now gets its negative answer
//! with `expected-negative-ttl` (SOA TTL and MINIMUM), every other negative keeps `soa-minimum`;
//! scaling and `ordinals.start` move the expected range; a StatefulSet whose Service is missing or
//! not headless expects nothing; a forbidden StatefulSet watch degrades to today's answers and
//! never holds up readiness; `--statefulsets=false` turns the watch off; both `endpoints-from` modes.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::{Value, json};
use support::dns::{query, tcp_messages, udp_message};
use support::fake_api::FakeApi;
use support::objects::statefulset_pod;
use support::server::{ServerProcess, eventually};

const WAIT: Duration = Duration::from_secs(20);
/// `soa-minimum` the server runs with: every negative that is not an expected name's.
const MINIMUM: u32 = 5;

fn service(name: &str, headless: bool) -> Value {
    let cluster_ip = if headless { "None" } else { "10.96.0.9" };
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": cluster_ip, "selector": {"app": name}}})
}

fn statefulset(name: &str, service: &str, replicas: i32, start: Option<i32>) -> Value {
    let mut spec = json!({"serviceName": service, "replicas": replicas, "selector": {"matchLabels": {"app": service}},
        "template": {"metadata": {"labels": {"app": service}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}});
    if let Some(start) = start {
        spec["ordinals"] = json!({"start": start});
    }
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

/// web (3 replicas under the headless nginx: web-0 Ready, web-1 not Ready, web-2 missing), db
/// (ordinals 5..7 under the headless dbsvc, none running), orphan (its Service is missing) and
/// cip (its Service is a ClusterIP one).
fn fixture() -> Vec<Value> {
    vec![
        service("nginx", true),
        service("dbsvc", true),
        service("api", false),
        statefulset("web", "nginx", 3, None),
        statefulset("db", "dbsvc", 2, Some(5)),
        statefulset("orphan", "missing", 2, None),
        statefulset("cip", "api", 2, None),
        statefulset_pod("default", "web-0", "nginx", Some("10.244.1.5"), true),
        statefulset_pod("default", "web-1", "nginx", Some("10.244.1.6"), false),
    ]
}

/// The rcode and the authority SOA's (TTL, MINIMUM) of a negative answer.
fn negative(m: &Message) -> (ResponseCode, Option<(u32, u32)>) {
    let soa = m.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some((r.ttl, soa.minimum)),
        _ => None,
    });
    (m.metadata.response_code, soa)
}

/// Asks over UDP (A and AAAA take the fast path) and over TCP (the general path).
async fn ask_both(dns: SocketAddr, name: &str, rtype: RecordType) -> [(ResponseCode, Option<(u32, u32)>); 2] {
    let udp = negative(&udp_message(dns, &query(name, rtype, None)).await.0);
    let tcp = negative(&tcp_messages(dns, &[query(name, rtype, None)]).await[0]);
    [udp, tcp]
}

/// As [`ask_both`] while nothing changes: both paths must agree.
async fn ask(dns: SocketAddr, name: &str, rtype: RecordType) -> (ResponseCode, Option<(u32, u32)>) {
    let [udp, tcp] = ask_both(dns, name, rtype).await;
    assert_eq!(udp, tcp, "{name} {rtype}: UDP and TCP agree");
    udp
}

fn fqdn(label: &str, svc: &str) -> String {
    format!("{label}.{svc}.default.svc.cluster.local.")
}

const NX_EXPECTED: (ResponseCode, Option<(u32, u32)>) = (ResponseCode::NXDomain, Some((0, 0)));
const NX: (ResponseCode, Option<(u32, u32)>) = (ResponseCode::NXDomain, Some((MINIMUM, MINIMUM)));

/// The table every source must answer alike.
async fn check_the_table(dns: SocketAddr) {
    for rtype in [RecordType::A, RecordType::AAAA, RecordType::SRV] {
        assert_eq!(ask(dns, &fqdn("web-1", "nginx"), rtype).await, NX_EXPECTED, "web-1 not Ready, {rtype}");
        assert_eq!(ask(dns, &fqdn("web-2", "nginx"), rtype).await, NX_EXPECTED, "web-2 missing, {rtype}");
    }
    assert_eq!(ask(dns, &fqdn("web-3", "nginx"), RecordType::A).await, NX, "beyond the replicas");
    assert_eq!(
        ask(dns, &fqdn("web-0", "nginx"), RecordType::AAAA).await,
        (ResponseCode::NoError, Some((MINIMUM, MINIMUM))),
        "a served name's NODATA"
    );
    assert_eq!(ask(dns, &fqdn("db-5", "dbsvc"), RecordType::A).await, NX_EXPECTED, "ordinals.start");
    assert_eq!(ask(dns, &fqdn("db-6", "dbsvc"), RecordType::A).await, NX_EXPECTED);
    assert_eq!(ask(dns, &fqdn("db-4", "dbsvc"), RecordType::A).await, NX, "below ordinals.start");
    assert_eq!(ask(dns, &fqdn("db-7", "dbsvc"), RecordType::A).await, NX, "above the range");
    assert_eq!(ask(dns, &fqdn("orphan-0", "missing"), RecordType::A).await, NX, "no Service");
    assert_eq!(ask(dns, &fqdn("cip-0", "api"), RecordType::A).await, NX, "not headless");
    assert_eq!(ask(dns, &fqdn("web", "nginx"), RecordType::A).await, NX, "not an ordinal");
    assert_eq!(ask(dns, &fqdn("web-01", "nginx"), RecordType::A).await, NX, "not as the controller writes it");
}

const ARGS: &[&str] = &["--soa-minimum", "5", "--expected-negative-ttl", "0"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_names_get_the_short_negative_ttl_from_the_api() {
    let api = FakeApi::start().await;
    for obj in fixture() {
        api.apply(obj);
    }
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, ARGS, &[]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    // The StatefulSet watch is optional: the first answers may come before it has listed.
    eventually("the StatefulSets listed", WAIT, || async {
        (ask_both(s.dns, &fqdn("web-2", "nginx"), RecordType::A).await == [NX_EXPECTED; 2]).then_some(())
    })
    .await;
    check_the_table(s.dns).await;
    let metric = |series: &str| tokio::task::block_in_place(|| s.metric(series));
    assert_eq!(metric("headless_dns_expected_names_missing"), Some(4.0), "web-1, web-2, db-5, db-6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_names_get_the_short_negative_ttl_from_manifests() {
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
    check_the_table(s.dns).await;
    let negatives = tokio::task::block_in_place(|| s.metric("headless_dns_expected_negatives_total"));
    // Eight questions for expected names, each asked over UDP (the fast path) and TCP (the
    // general path).
    assert_eq!(negatives, Some(16.0), "each expected negative counted once, on both paths");
    // Scaled up in the file: the range follows.
    let mut items = fixture();
    items[3] = statefulset("web", "nginx", 5, None);
    std::fs::write(
        dir.path().join("all.json"),
        json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string(),
    )
    .unwrap();
    eventually("web-4 expected after the edit", WAIT, || async {
        (ask_both(s.dns, &fqdn("web-4", "nginx"), RecordType::A).await == [NX_EXPECTED; 2]).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_moves_the_expected_range_and_a_ready_pod_answers() {
    let api = FakeApi::start().await;
    for obj in fixture() {
        api.apply(obj);
    }
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, ARGS, &[]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    let until = |name: String, want: (ResponseCode, Option<(u32, u32)>)| {
        let dns = s.dns;
        async move {
            eventually(&format!("{name}: {want:?}"), WAIT, || {
                let name = name.clone();
                async move { (ask_both(dns, &name, RecordType::A).await == [want, want]).then_some(()) }
            })
            .await
        }
    };
    until(fqdn("web-4", "nginx"), NX).await;
    api.apply(statefulset("web", "nginx", 5, None));
    until(fqdn("web-4", "nginx"), NX_EXPECTED).await;
    api.apply(statefulset("web", "nginx", 1, None));
    until(fqdn("web-2", "nginx"), NX).await;
    assert_eq!(ask(s.dns, &fqdn("web-1", "nginx"), RecordType::A).await, NX, "scaled down: ordinary names again");
    // The recreated web-0: expected while it is not Ready, answered once it is.
    api.delete("Pod", "default", "web-0");
    until(fqdn("web-0", "nginx"), NX_EXPECTED).await;
    api.apply(statefulset_pod("default", "web-0", "nginx", Some("10.244.9.9"), true));
    until(fqdn("web-0", "nginx"), (ResponseCode::NoError, None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_statefulset_watch_degrades_to_soa_minimum_and_never_blocks_readiness() {
    let api = FakeApi::start().await;
    for obj in fixture() {
        api.apply(obj);
    }
    api.fail_kind("StatefulSet", Some(403));
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, ARGS, &[]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    let line = tokio::task::block_in_place(|| s.wait_for_log("forbids listing or watching statefulsets", WAIT));
    assert!(line.contains("deploy/rbac.yaml"), "says what to do: {line}");
    let (code, body) = tokio::task::block_in_place(|| s.http_get("/readyz"));
    assert_eq!(code, 200, "never holds up readiness:\n{body}");
    assert!(body.contains("statefulsets: not listed yet (optional"), "{body}");
    assert_eq!(ask(s.dns, &fqdn("web-2", "nginx"), RecordType::A).await, NX, "today's answers");
    assert_eq!(
        ask(s.dns, &fqdn("web-0", "nginx"), RecordType::A).await.0,
        ResponseCode::NoError,
        "the other kinds serve as ever"
    );
    let errors = tokio::task::block_in_place(|| s.metric(r#"headless_dns_watch_errors_total{kind="statefulsets"}"#));
    assert!(errors.is_some_and(|n| n >= 1.0), "counted: {errors:?}");
    // Granted: the watch recovers on its own.
    api.fail_kind("StatefulSet", None);
    eventually("expected names once the watch recovers", Duration::from_secs(60), || async {
        (ask_both(s.dns, &fqdn("web-2", "nginx"), RecordType::A).await == [NX_EXPECTED; 2]).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulsets_false_turns_the_watch_off() {
    let api = FakeApi::start().await;
    for obj in fixture() {
        api.apply(obj);
    }
    let mut args = ARGS.to_vec();
    args.push("--statefulsets=false");
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, &args, &[]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    assert_eq!(ask(s.dns, &fqdn("web-2", "nginx"), RecordType::A).await, NX);
    assert_eq!(api.list_count("StatefulSet") + api.watch_count("StatefulSet"), 0, "never asked for");
    let (_, body) = tokio::task::block_in_place(|| s.http_get("/readyz"));
    assert!(!body.contains("statefulsets"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_names_in_endpointslices_mode() {
    let api = FakeApi::start().await;
    for obj in fixture() {
        api.apply(obj);
    }
    // The EndpointSlice controller's view: web-0 ready with its hostname, web-1 not ready.
    api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "nginx-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "nginx"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.244.1.5"], "hostname": "web-0", "conditions": {"ready": true},
             "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "default"}},
            {"addresses": ["10.244.1.6"], "hostname": "web-1", "conditions": {"ready": false},
             "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default"}}]}));
    let mut args = ARGS.to_vec();
    args.extend_from_slice(&["--endpoints-from", "endpointslices"]);
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, &args, &[]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    eventually("the StatefulSets listed", WAIT, || async {
        (ask_both(s.dns, &fqdn("web-1", "nginx"), RecordType::A).await == [NX_EXPECTED; 2]).then_some(())
    })
    .await;
    assert_eq!(ask(s.dns, &fqdn("web-2", "nginx"), RecordType::A).await, NX_EXPECTED);
    assert_eq!(ask(s.dns, &fqdn("web-3", "nginx"), RecordType::A).await, NX);
    assert_eq!(ask(s.dns, &fqdn("web-0", "nginx"), RecordType::A).await.0, ResponseCode::NoError);
}
