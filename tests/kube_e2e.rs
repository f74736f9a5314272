//! End to end through the real binary watching a fake Kubernetes API server (real HTTP, list and
//! watch with resourceVersion, bookmarks, in-stream 410, disconnects, partitions) through a real
//! kubeconfig, queried with dig and hickory over UDP and TCP on loopback.

mod support;

use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use support::dns::{Proto, addresses, dig, hickory, query, udp_message};
use support::fake_api::FakeApi;
use support::server::{ServerProcess, eventually};

const WAIT: Duration = Duration::from_secs(20);

fn headless(name: &str, publish_not_ready: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": "None", "selector": {"app": name}, "publishNotReadyAddresses": publish_not_ready}})
}

/// A StatefulSet-style pod of `app`; `ip` None is a Pending pod without an IP.
fn pod(name: &str, app: &str, ip: Option<&str>, ready: bool) -> Value {
    support::objects::statefulset_pod("default", name, app, ip, ready)
}

struct Cluster {
    api: FakeApi,
    server: ServerProcess,
    marker: u8,
}

impl Cluster {
    /// A fake API holding `objects` plus a `marker` service, and the binary watching it.
    async fn start(objects: Vec<Value>, extra_args: &[&str]) -> Cluster {
        let api = FakeApi::start().await;
        api.apply(headless("marker", false));
        api.apply(pod("marker-0", "marker", Some("10.99.0.1"), true));
        for o in objects {
            api.apply(o);
        }
        let server = tokio::task::block_in_place(|| ServerProcess::watching(&api, extra_args, &[]));
        Cluster { api, server, marker: 1 }
    }

    fn dig(&self, args: &[&str]) -> support::dns::DigReply {
        tokio::task::block_in_place(|| dig(self.server.dns, args))
    }

    fn addrs(&self, name: &str) -> Vec<String> {
        self.dig(&[name]).addresses()
    }

    fn status(&self, name: &str) -> String {
        self.dig(&[name]).status
    }

    async fn until(&self, what: &str, mut check: impl FnMut(&Self) -> bool) {
        eventually(what, WAIT, || {
            let ok = check(self);
            async move { ok.then_some(()) }
        })
        .await
    }

    /// Waits until every Pod event sent so far has been applied: the marker pod's IP is bumped
    /// (on the same, ordered, watch stream) and waited for. Lets a test assert an answer that
    /// an event must *not* change.
    async fn pod_sync_point(&mut self) {
        self.marker += 1;
        let ip = format!("10.99.0.{}", self.marker);
        self.api.apply(pod("marker-0", "marker", Some(&ip), true));
        let want = vec![ip];
        self.until("marker pod update applied", |c| c.addrs("marker-0.marker.default.svc.cluster.local") == want).await;
    }
}

const WEB0: &str = "web-0.nginx.default.svc.cluster.local";
const WEB1: &str = "web-1.nginx.default.svc.cluster.local";
const NGINX: &str = "nginx.default.svc.cluster.local";

async fn statefulset(extra_args: &[&str]) -> Cluster {
    let c = Cluster::start(
        vec![
            headless("nginx", false),
            pod("web-0", "nginx", Some("10.244.1.5"), true),
            pod("web-1", "nginx", Some("10.244.2.7"), true),
        ],
        extra_args,
    )
    .await;
    c.server.wait_for_log("first full sync complete", WAIT);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn initial_sync_answers_over_udp_and_tcp() {
    let c = statefulset(&[]).await;
    assert_eq!(c.addrs(WEB0), ["10.244.1.5"]);
    assert_eq!(c.addrs(NGINX), ["10.244.1.5", "10.244.2.7"]);
    for proto in [Proto::Udp, Proto::Tcp] {
        let m = hickory(c.server.dns, &format!("{WEB1}."), RecordType::A, proto).await;
        assert_eq!(addresses(&m), ["10.244.2.7"], "{proto:?}");
        assert!(m.metadata.authoritative);
    }
    let (code, body) = c.server.http_get("/readyz");
    assert_eq!(code, 200, "{body}");
    assert_eq!(c.api.open_watches("Pod"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statefulset_pod_recreation_timeline_is_followed_step_by_step() {
    let mut c = statefulset(&[]).await;
    assert_eq!(c.addrs(WEB0), ["10.244.1.5"]);

    // DELETED web-0: its name is gone, the service keeps web-1.
    c.api.delete("Pod", "default", "web-0");
    c.until("web-0 withdrawn", |c| c.status(WEB0) == "NXDOMAIN").await;
    assert_eq!(c.addrs(NGINX), ["10.244.2.7"]);

    // ADDED web-0, Pending without an IP: nothing to serve yet.
    c.api.apply(pod("web-0", "nginx", None, false));
    c.pod_sync_point().await;
    assert_eq!(c.status(WEB0), "NXDOMAIN");
    assert_eq!(c.addrs(NGINX), ["10.244.2.7"]);

    // MODIFIED: the new IP, not Ready yet: still not published.
    c.api.apply(pod("web-0", "nginx", Some("10.244.3.9"), false));
    c.pod_sync_point().await;
    assert_eq!(c.status(WEB0), "NXDOMAIN");
    assert_eq!(c.addrs(NGINX), ["10.244.2.7"]);

    // MODIFIED: Ready: the new IP is served, and from then on the old one never again.
    c.api.apply(pod("web-0", "nginx", Some("10.244.3.9"), true));
    c.until("new IP served", |c| c.addrs(WEB0) == ["10.244.3.9"]).await;
    for _ in 0..20 {
        let m = hickory(c.server.dns, &format!("{WEB0}."), RecordType::A, Proto::Udp).await;
        assert_eq!(addresses(&m), ["10.244.3.9"]);
        let m = hickory(c.server.dns, &format!("{NGINX}."), RecordType::A, Proto::Udp).await;
        assert_eq!(addresses(&m), ["10.244.2.7", "10.244.3.9"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_up_down_readiness_and_service_deletion() {
    let mut c = statefulset(&[]).await;

    c.api.apply(pod("web-2", "nginx", Some("10.244.4.1"), true));
    c.until("scaled up", |c| c.addrs(NGINX).len() == 3).await;
    assert_eq!(c.addrs("web-2.nginx.default.svc.cluster.local"), ["10.244.4.1"]);
    c.api.delete("Pod", "default", "web-2");
    c.until("scaled down", |c| c.addrs(NGINX).len() == 2).await;
    assert_eq!(c.status("web-2.nginx.default.svc.cluster.local"), "NXDOMAIN");

    // Unready, then ready again.
    c.api.apply(pod("web-1", "nginx", Some("10.244.2.7"), false));
    c.until("unready pod withdrawn", |c| c.status(WEB1) == "NXDOMAIN").await;
    assert_eq!(c.addrs(NGINX), ["10.244.1.5"]);
    c.api.apply(pod("web-1", "nginx", Some("10.244.2.7"), true));
    c.until("ready again", |c| c.addrs(WEB1) == ["10.244.2.7"]).await;

    // Terminating (deletionTimestamp set) is not ready.
    let mut terminating = pod("web-1", "nginx", Some("10.244.2.7"), true);
    terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    c.api.apply(terminating);
    c.until("terminating pod withdrawn", |c| c.status(WEB1) == "NXDOMAIN").await;

    // A pod whose subdomain names another service is an endpoint without a hostname.
    let mut other = pod("web-3", "nginx", Some("10.244.5.5"), true);
    other["spec"]["subdomain"] = json!("elsewhere");
    c.api.apply(other);
    c.until("dashed-IP name", |c| c.addrs("10-244-5-5.nginx.default.svc.cluster.local") == ["10.244.5.5"]).await;
    assert_eq!(c.status("web-3.nginx.default.svc.cluster.local"), "NXDOMAIN");

    // Service deleted: every name under it goes.
    c.api.delete("Service", "default", "nginx");
    c.until("service withdrawn", |c| c.status(NGINX) == "NXDOMAIN").await;
    assert_eq!(c.status(WEB0), "NXDOMAIN");
    c.pod_sync_point().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publish_not_ready_addresses_serves_unready_pods() {
    let c = Cluster::start(
        vec![headless("db", true), pod("db-0", "db", Some("10.1.0.1"), false), pod("db-1", "db", None, false)],
        &[],
    )
    .await;
    c.server.wait_for_log("first full sync complete", WAIT);
    assert_eq!(c.addrs("db-0.db.default.svc.cluster.local"), ["10.1.0.1"]);
    assert_eq!(c.addrs("db.default.svc.cluster.local"), ["10.1.0.1"], "a pod without IP is never an endpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pod_deleted_during_partition_and_compaction_is_removed_by_the_relist() {
    let c = statefulset(&[]).await;
    // Lists are streamed (the fake API offers streaming lists, as Kubernetes 1.34 does).
    let lists_before = c.api.list_count("Pod") + c.api.stream_count("Pod");

    c.api.set_partitioned(true);
    c.api.delete("Pod", "default", "web-1");
    c.api.compact();
    // During the partition the last good answers keep serving.
    assert_eq!(c.addrs(WEB1), ["10.244.2.7"]);
    assert_eq!(c.addrs(NGINX), ["10.244.1.5", "10.244.2.7"]);

    // The partition heals: the watch resumes from a compacted version, gets the in-stream 410,
    // relists, and web-1's absence from the list deletes it. web-0 never stops answering.
    c.api.set_partitioned(false);
    c.until("relist removed web-1", |c| {
        assert_eq!(c.addrs(WEB0), ["10.244.1.5"], "an unchanged name never blinks");
        c.status(WEB1) == "NXDOMAIN"
    })
    .await;
    assert!(c.api.list_count("Pod") + c.api.stream_count("Pod") > lists_before, "a relist happened");
    assert_eq!(c.addrs(NGINX), ["10.244.1.5"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disconnects_and_api_errors_keep_the_last_good_answers() {
    let c = statefulset(&[]).await;
    c.api.fail_requests(Some(500));
    c.api.disconnect_watches();
    for _ in 0..10 {
        assert_eq!(c.addrs(WEB0), ["10.244.1.5"]);
    }
    c.api.fail_requests(None);
    c.api.apply(pod("web-0", "nginx", Some("10.244.9.9"), true));
    c.until("watch resumed after the outage", |c| c.addrs(WEB0) == ["10.244.9.9"]).await;
    c.api.bookmark();
    c.api.apply(pod("web-1", "nginx", Some("10.244.9.10"), true));
    c.until("events after a bookmark", |c| c.addrs(WEB1) == ["10.244.9.10"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servfail_until_the_first_full_list_then_answers() {
    let api = FakeApi::start().await;
    api.apply(headless("nginx", false));
    api.apply(pod("web-0", "nginx", Some("10.244.1.5"), true));
    api.fail_requests(Some(403));
    let server = tokio::task::block_in_place(|| ServerProcess::watching(&api, &[], &[]));
    let s = server.dns;
    server.wait_for_log("the API forbids listing or watching", WAIT);
    let r = tokio::task::block_in_place(|| dig(s, &[WEB0]));
    assert_eq!(r.status, "SERVFAIL", "never a premature NXDOMAIN");
    let (code, body) = tokio::task::block_in_place(|| server.http_get("/readyz"));
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("waiting for first list") && body.contains("403"), "{body}");

    api.fail_requests(None);
    eventually("answers after the first list", WAIT, || async {
        (tokio::task::block_in_place(|| dig(s, &[WEB0])).addresses() == ["10.244.1.5"]).then_some(())
    })
    .await;
    assert_eq!(tokio::task::block_in_place(|| server.http_get("/readyz")).0, 200);
}

fn slice(name: &str, service: &str, ips: &[String]) -> Value {
    let endpoints: Vec<Value> = ips.iter().map(|ip| json!({"addresses": [ip]})).collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "endpoints": endpoints})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn selectorless_service_with_120_endpoints_from_slices_truncates_over_udp_whole_over_tcp() {
    let ips: Vec<String> = (0..120).map(|i| format!("10.2.{}.{}", i / 100, i % 100 + 1)).collect();
    let c = Cluster::start(
        vec![
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "big", "namespace": "default"},
                "spec": {"clusterIP": "None"}}),
            slice("big-a", "big", &ips[..70]),
            slice("big-b", "big", &ips[60..]),
        ],
        &[],
    )
    .await;
    c.server.wait_for_log("first full sync complete", WAIT);
    let name = "big.default.svc.cluster.local.";
    let (m, size) = udp_message(c.server.dns, &query(name, RecordType::A, Some(1232))).await;
    assert!(m.metadata.truncation && size <= 1232);
    assert_eq!(c.dig(&["+tcp", name]).addresses().len(), 120, "overlapping slices count each address once");
    let m = hickory(c.server.dns, name, RecordType::A, Proto::Tcp).await;
    assert_eq!(addresses(&m).len(), 120);
    assert_eq!(c.addrs("10-2-0-1.big.default.svc.cluster.local"), ["10.2.0.1"]);
}

/// A slice as a controller writes it: `endpointslice.kubernetes.io/managed-by` set.
fn controller_slice(name: &str, service: &str, controller: &str, ip: &str) -> Value {
    let mut s = slice(name, service, &[ip.to_string()]);
    s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] = json!(controller);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pods_mode_leaves_the_endpointslice_controllers_slices_at_the_api() {
    let c = Cluster::start(
        vec![
            headless("nginx", false),
            pod("web-0", "nginx", Some("10.244.1.5"), true),
            controller_slice("nginx-abc", "nginx", "endpointslice-controller.k8s.io", "10.244.7.7"),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "default"},
                "spec": {"clusterIP": "None"}}),
            controller_slice("db-mirror", "db", "endpointslicemirroring-controller.k8s.io", "10.3.0.1"),
        ],
        &[],
    )
    .await;
    c.server.wait_for_log("first full sync complete", WAIT);
    assert_eq!(c.addrs(NGINX), ["10.244.1.5"]);
    assert_eq!(c.addrs("db.default.svc.cluster.local"), ["10.3.0.1"], "a selectorless Service's slice is kept");
    // The controller's slice changes, then the mirrored one: only the second reaches the server.
    c.api.apply(controller_slice("nginx-abc", "nginx", "endpointslice-controller.k8s.io", "10.244.7.8"));
    c.api.apply(controller_slice("db-mirror", "db", "endpointslicemirroring-controller.k8s.io", "10.3.0.2"));
    c.until("the mirrored slice's change", |c| c.addrs("db.default.svc.cluster.local") == ["10.3.0.2"]).await;
    let (_, text) = tokio::task::block_in_place(|| c.server.http_get("/metrics"));
    let applied =
        support::server::metric_in(&text, r#"headless_dns_watch_events_total{kind="endpointslices",event="apply"}"#);
    assert_eq!(applied, Some(1.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endpointslices_mode_does_not_watch_pods() {
    let c = Cluster::start(
        vec![
            headless("nginx", false),
            pod("web-0", "nginx", Some("10.244.1.5"), true),
            controller_slice("nginx-abc", "nginx", "endpointslice-controller.k8s.io", "10.244.7.7"),
        ],
        &["--endpoints-from", "endpointslices"],
    )
    .await;
    c.server.wait_for_log("first full sync complete", WAIT);
    assert_eq!(c.addrs(NGINX), ["10.244.7.7"]);
    assert_eq!(c.api.list_count("Pod") + c.api.watch_count("Pod"), 0);
    assert_eq!(c.api.open_watches("Pod"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_report_watch_activity_and_programming_latency_for_both_endpoint_sources() {
    let c = Cluster::start(
        vec![
            headless("nginx", false),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "default"},
                "spec": {"clusterIP": "None"}}),
        ],
        &[],
    )
    .await;
    c.server.wait_for_log("first full sync complete", WAIT);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let stamp = format!("{}", k8s_openapi::jiff::Timestamp::from_second(now as i64).unwrap());
    // A pod turning Ready now (selector path) and a slice written now (selectorless path).
    let mut web0 = pod("web-0", "nginx", Some("10.244.1.5"), true);
    web0["status"]["conditions"][0]["lastTransitionTime"] = json!(stamp);
    c.api.apply(web0);
    let mut s = slice("db-1", "db", &["10.3.0.1".to_string()]);
    s["metadata"]["annotations"] = json!({"endpoints.kubernetes.io/last-change-trigger-time": stamp});
    c.api.apply(s);
    c.until("both programmed", |c| {
        c.addrs(WEB0) == ["10.244.1.5"] && c.addrs("db.default.svc.cluster.local") == ["10.3.0.1"]
    })
    .await;

    let (code, text) = tokio::task::block_in_place(|| c.server.http_get("/metrics"));
    assert_eq!(code, 200);
    let value = |series: &str| -> f64 {
        support::server::metric_in(&text, series).unwrap_or_else(|| panic!("no metric {series}:\n{text}"))
    };
    assert_eq!(value(r#"headless_dns_programming_latency_seconds_count{source="pods"}"#), 1.0);
    assert_eq!(value(r#"headless_dns_programming_latency_seconds_count{source="endpointslices"}"#), 1.0);
    // Timestamps have one-second resolution: the latency is under a few seconds, not hours.
    assert!(value(r#"headless_dns_programming_latency_seconds_sum{source="pods"}"#) < 30.0);
    assert!(value(r#"headless_dns_watch_events_total{kind="pods",event="apply"}"#) >= 1.0);
    assert_eq!(value(r#"headless_dns_watch_events_total{kind="services",event="list"}"#), 1.0);
    assert!(value(r#"headless_dns_watch_last_event_age_seconds{kind="pods"}"#) < 60.0);
    assert!(value(r#"headless_dns_index_names{record="a"}"#) >= 3.0);
}

/// Streaming lists (`sendInitialEvents`) where the API server offers them, for every kind; paged
/// lists, per kind, where it refuses them (422, the `WatchList` gate off as on Kubernetes 1.33) or
/// ignores them (the initial watch ends without the end bookmark); `--streaming-lists=false`
/// never asks. Each way the answers are the same and a recreated pod's new IP follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lists_stream_where_the_api_offers_it_and_are_paged_where_it_does_not() {
    use support::fake_api::StreamingLists;
    const KINDS: [&str; 5] = ["Pod", "Service", "EndpointSlice", "Namespace", "StatefulSet"];
    for (mode, args) in [
        (StreamingLists::Offered, &[][..]),
        (StreamingLists::Refused, &[][..]),
        (StreamingLists::Ignored, &[][..]),
        (StreamingLists::Offered, &["--streaming-lists=false"][..]),
    ] {
        let what = format!("{mode:?} {args:?}");
        let api = FakeApi::start().await;
        api.set_streaming_lists(mode);
        api.apply(headless("nginx", false));
        api.apply(pod("web-0", "nginx", Some("10.244.1.5"), true));
        let server = tokio::task::block_in_place(|| support::server::ServerProcess::watching(&api, args, &[]));
        if mode == StreamingLists::Ignored {
            // The state arrives, the end never does: nothing is served as synced until the
            // stream ends and the watch falls back.
            eventually("every kind's initial watch", WAIT, || {
                let open = KINDS.iter().all(|k| api.open_watches(k) == 1);
                async move { open.then_some(()) }
            })
            .await;
            api.disconnect_watches();
        }
        server.wait_for_log("first full sync complete", WAIT);
        assert_eq!(tokio::task::block_in_place(|| dig(server.dns, &[WEB0])).addresses(), ["10.244.1.5"], "{what}");
        let streamed = mode == StreamingLists::Offered && args.is_empty();
        for kind in KINDS {
            let (lists, streams) = (api.list_count(kind), api.stream_count(kind));
            assert_eq!(
                (lists == 0, streams > 0),
                (streamed, streamed),
                "{what} {kind}: {lists} lists, {streams} streams"
            );
        }
        let fallbacks = server.metric("headless_dns_streaming_list_fallbacks_total{kind=\"pods\"}");
        let fell_back = matches!(mode, StreamingLists::Refused | StreamingLists::Ignored);
        assert_eq!(fallbacks, fell_back.then_some(1.0), "{what}");
        if fell_back {
            assert!(server.logs().iter().any(|l| l.contains("does not offer streaming lists for pods")), "{what}");
        }
        api.apply(pod("web-0", "nginx", Some("10.244.9.9"), true));
        eventually("the new IP", WAIT, || {
            let got = tokio::task::block_in_place(|| dig(server.dns, &[WEB0])).addresses();
            async move { (got == ["10.244.9.9"]).then_some(()) }
        })
        .await;
    }
}
