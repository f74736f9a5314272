//! Self-tests of the fake Kubernetes API server in `tests/support/fake_api.rs`, driven by kube's
//! real client and `watcher`, plus raw HTTP checks of the wire format.

#[path = "support/fake_api.rs"]
mod fake_api;

use std::net::SocketAddr;
use std::pin::pin;
use std::time::{Duration, Instant};

use fake_api::FakeApi;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Config, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn client(api: &FakeApi) -> Client {
    Client::try_from(Config::new(api.url().parse().expect("url"))).expect("client")
}

fn pod(ns: &str, name: &str, labels: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| ((*k).to_string(), json!(v))).collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "namespace": ns, "labels": labels },
        "spec": { "containers": [{ "name": "c", "image": "busybox" }] },
        "status": { "phase": "Running", "podIP": "10.0.0.1" },
    })
}

/// Polls `cond` until it holds, failing the test after a deadline.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Retries a failed watcher step after 50 ms (kube's default backoff starts at 800 ms and
/// doubles, which would make the error tests slow).
struct FastBackoff;

impl Iterator for FastBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(Duration::from_millis(50))
    }
}

impl kube::runtime::utils::Backoff for FastBackoff {
    fn reset(&mut self) {}
}

type Item<K> = Result<Event<K>, watcher::Error>;

fn code_of(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.code.to_string(),
        _ => "transport".to_string(),
    }
}

fn describe<K: Resource>(item: &Item<K>) -> String {
    match item {
        Ok(Event::Init) => "Init".to_string(),
        Ok(Event::InitApply(o)) => format!("InitApply({})", o.name_any()),
        Ok(Event::InitDone) => "InitDone".to_string(),
        Ok(Event::Apply(o)) => format!("Apply({})", o.name_any()),
        Ok(Event::Delete(o)) => format!("Delete({})", o.name_any()),
        Err(watcher::Error::InitialListFailed(e)) => format!("Err(InitialListFailed {})", code_of(e)),
        Err(watcher::Error::WatchStartFailed(e)) => format!("Err(WatchStartFailed {})", code_of(e)),
        Err(watcher::Error::WatchError(s)) => format!("Err(WatchError {})", s.code),
        Err(watcher::Error::WatchFailed(e)) => format!("Err(WatchFailed {})", code_of(e)),
        Err(watcher::Error::NoResourceVersion) => "Err(NoResourceVersion)".to_string(),
    }
}

/// A kube `watcher` running in a task, its items forwarded to a channel.
struct Watch<K> {
    rx: mpsc::UnboundedReceiver<Item<K>>,
}

impl<K> Watch<K>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    fn spawn(api: Api<K>, cfg: watcher::Config) -> Watch<K> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut stream = pin!(watcher::watcher(api, cfg).backoff(FastBackoff));
            while let Some(item) = stream.next().await {
                if tx.send(item).is_err() {
                    break;
                }
            }
        });
        Watch { rx }
    }

    async fn next(&mut self) -> Item<K> {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("timed out waiting for a watcher event")
            .expect("watcher task ended")
    }

    /// The next successful event, skipping (and returning) errors before it.
    async fn next_ok(&mut self) -> (Vec<String>, Event<K>) {
        let mut errors = Vec::new();
        loop {
            match self.next().await {
                Ok(ev) => return (errors, ev),
                err => errors.push(describe(&err)),
            }
        }
    }

    async fn expect(&mut self, want: &[&str]) {
        for w in want {
            let got = describe(&self.next().await);
            assert_eq!(&got, w, "watcher event");
        }
    }

    /// Reads until `InitDone`, returning the errors seen and the objects of the last
    /// `Init`..`InitDone` batch. Any `Apply`/`Delete` on the way fails the test.
    async fn resync(&mut self) -> (Vec<String>, Vec<String>) {
        let mut errors = Vec::new();
        let mut batch = Vec::new();
        loop {
            let item = self.next().await;
            match &item {
                Ok(Event::Init) => batch.clear(),
                Ok(Event::InitApply(o)) => batch.push(o.name_any()),
                Ok(Event::InitDone) => return (errors, batch),
                Ok(_) => panic!("unexpected event during resync: {}", describe(&item)),
                Err(_) => errors.push(describe(&item)),
            }
        }
    }

    /// Asserts that nothing arrives for `d` (a bounded negative check, not synchronisation).
    async fn assert_quiet(&mut self, d: Duration) {
        if let Ok(Some(item)) = tokio::time::timeout(d, self.rx.recv()).await {
            panic!("expected no watcher event, got {}", describe(&item));
        }
    }
}

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn lines(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.body)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Sends one GET on a fresh connection and reads until the server closes it.
async fn raw_exchange(addr: SocketAddr, target: &str, close: bool) -> Vec<u8> {
    raw_exchange_accepting(addr, target, close, "application/json").await
}

async fn raw_exchange_accepting(addr: SocketAddr, target: &str, close: bool, accept: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let conn = if close { "Connection: close\r\n" } else { "" };
    let req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\n{conn}\r\n");
    s.write_all(req.as_bytes()).await.expect("write request");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    out
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").expect("chunked body incomplete (no chunk header)");
        let size_text = String::from_utf8_lossy(&b[..eol]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).expect("chunk size");
        b = &b[eol + 2..];
        if size == 0 {
            return out;
        }
        assert!(b.len() >= size + 2, "chunked body incomplete");
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

fn parse_response(bytes: &[u8]) -> RawResponse {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).to_string();
    let rest = &bytes[split + 4..];
    let mut lines = head.lines();
    let status_line = lines.next().expect("status line");
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut resp = RawResponse { status, headers, body: Vec::new() };
    resp.body = if resp.header("transfer-encoding") == Some("chunked") {
        dechunk(rest)
    } else {
        let len = resp.header("content-length").and_then(|l| l.parse().ok()).unwrap_or(rest.len());
        rest[..len].to_vec()
    };
    resp
}

async fn raw_get(addr: SocketAddr, target: &str, close: bool) -> RawResponse {
    let bytes = tokio::time::timeout(WAIT, raw_exchange(addr, target, close)).await.expect("raw request timed out");
    parse_response(&bytes)
}

async fn raw_get_with(addr: SocketAddr, target: &str, accept: &str) -> RawResponse {
    let bytes = tokio::time::timeout(WAIT, raw_exchange_accepting(addr, target, true, accept))
        .await
        .expect("raw request timed out");
    parse_response(&bytes)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn list_then_watch_sees_init_then_live_changes() {
    let api = FakeApi::start().await;
    api.apply(pod("default", "a", &[]));
    api.apply(pod("default", "b", &[]));
    let mut w = Watch::spawn(Api::<Pod>::all(client(&api)), watcher::Config::default());

    let mut inits = Vec::new();
    w.expect(&["Init"]).await;
    for _ in 0..2 {
        match w.next().await {
            Ok(Event::InitApply(p)) => inits.push(p),
            other => panic!("want InitApply, got {}", describe(&other)),
        }
    }
    w.expect(&["InitDone"]).await;
    assert_eq!(inits.iter().map(|p| p.name_any()).collect::<Vec<_>>(), ["a", "b"]);
    for p in &inits {
        assert!(p.uid().is_some_and(|u| !u.is_empty()), "uid set");
        assert!(p.creation_timestamp().is_some(), "creationTimestamp set");
        assert!(p.resource_version().is_some(), "resourceVersion set");
    }
    wait_for("the watch", || api.open_watches("Pod") == 1).await;

    api.apply(pod("default", "c", &[]));
    w.expect(&["Apply(c)"]).await;
    api.apply(pod("default", "a", &[("x", "y")]));
    match w.next().await {
        Ok(Event::Apply(p)) => {
            assert_eq!(p.name_any(), "a");
            assert_eq!(p.labels().get("x").map(String::as_str), Some("y"));
            assert_eq!(p.uid(), inits[0].uid(), "a replace keeps the uid");
        }
        other => panic!("want Apply(a), got {}", describe(&other)),
    }
    api.delete("Pod", "default", "b");
    match w.next().await {
        Ok(Event::Delete(p)) => {
            assert_eq!(p.name_any(), "b");
            assert_eq!(
                p.resource_version(),
                Some(api.resource_version().to_string()),
                "DELETED carries the deletion's resourceVersion"
            );
        }
        other => panic!("want Delete(b), got {}", describe(&other)),
    }
    api.delete("Pod", "default", "nope");
    api.apply(pod("default", "d", &[]));
    w.expect(&["Apply(d)"]).await;
    assert_eq!(api.list_count("Pod"), 1);
    assert_eq!(api.watch_count("Pod"), 1);
    assert_eq!(api.open_watches("Service"), 0);
}

#[tokio::test]
async fn paging_delivers_every_object_over_a_consistent_snapshot() {
    let api = FakeApi::start().await;
    api.set_max_page(2);
    for i in 0..5 {
        api.apply(pod("default", &format!("p{i}"), &[]));
    }
    let mut w = Watch::spawn(Api::<Pod>::all(client(&api)), watcher::Config::default());
    w.expect(&[
        "Init",
        "InitApply(p0)",
        "InitApply(p1)",
        "InitApply(p2)",
        "InitApply(p3)",
        "InitApply(p4)",
        "InitDone",
    ])
    .await;
    assert_eq!(api.list_count("Pod"), 3, "three pages of at most 2");

    // The client's own limit is honoured too, and pages come from the first page's snapshot.
    api.set_max_page(0);
    let pods = Api::<Pod>::all(client(&api));
    let page1 = pods.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page1.items.len(), 2);
    let rv1 = page1.metadata.resource_version.clone();
    let token = page1.metadata.continue_.clone().expect("continue token");
    api.apply(pod("default", "p10", &[])); // sorts between p1 and p2; not in the snapshot
    let page2 = pods.list(&ListParams::default().limit(2).continue_token(&token)).await.unwrap();
    assert_eq!(page2.items.iter().map(|p| p.name_any()).collect::<Vec<_>>(), ["p2", "p3"]);
    assert_eq!(page2.metadata.resource_version, rv1);
    let token = page2.metadata.continue_.clone().expect("continue token");

    // Compaction expires the token: HTTP 410 Expired.
    api.compact();
    let err =
        pods.list(&ListParams::default().limit(2).continue_token(&token)).await.expect_err("expired continue token");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 410);
            assert_eq!(s.reason, "Expired");
        }
        other => panic!("want an Api error, got {other:?}"),
    }
    let all = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 6);
    assert!(all.metadata.continue_.is_none_or(|c| c.is_empty()));
}

#[tokio::test]
async fn compaction_while_disconnected_forces_a_relist_without_the_deleted_object() {
    let api = FakeApi::start().await;
    api.apply(pod("default", "a", &[]));
    api.apply(pod("default", "b", &[]));
    let mut w = Watch::spawn(Api::<Pod>::all(client(&api)), watcher::Config::default());
    w.expect(&["Init", "InitApply(a)", "InitApply(b)", "InitDone"]).await;
    wait_for("the watch", || api.open_watches("Pod") == 1).await;

    // Keep the watcher off the server while `b` goes away and history is compacted.
    api.fail_requests(Some(500));
    api.disconnect_watches();
    assert_eq!(api.open_watches("Pod"), 0);
    let first = describe(&w.next().await);
    assert_eq!(first, "Err(WatchStartFailed 500)");
    api.delete("Pod", "default", "b");
    api.compact();
    api.fail_requests(None);

    let (errors, batch) = w.resync().await;
    assert!(errors.iter().any(|e| e == "Err(WatchError 410)"), "in-stream 410 seen: {errors:?}");
    assert_eq!(batch, ["a"], "b is gone only by its absence from the relist");
    assert_eq!(api.list_count("Pod"), 2);
    wait_for("the re-watch", || api.open_watches("Pod") == 1).await;
    api.apply(pod("default", "c", &[]));
    w.expect(&["Apply(c)"]).await;
}

#[tokio::test]
async fn raw_http_wire_format() {
    let api = FakeApi::start().await;
    let addr = api.addr();
    api.apply(pod("default", "a", &[]));
    let old = api.resource_version();
    api.apply(pod("default", "b", &[]));

    // List: items without kind/apiVersion, non-empty resourceVersion, keep-alive answer.
    let list = raw_get(addr, "/api/v1/pods?&limit=500", true).await;
    assert_eq!(list.status, 200);
    let body = list.json();
    assert_eq!(body["kind"], "PodList");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["metadata"]["resourceVersion"], api.resource_version().to_string());
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2));
    assert!(body["items"][0].get("kind").is_none());
    assert!(body["items"][0].get("apiVersion").is_none());

    // Watch from a compacted resourceVersion: 200, then one in-stream ERROR 410, then close.
    api.compact();
    let target = format!("/api/v1/pods?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion={old}");
    let resp = raw_get(addr, &target, false).await;
    assert_eq!(resp.status, 200, "never a bare HTTP 410 on a watch");
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    let lines = resp.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["type"], "ERROR");
    assert_eq!(lines[0]["object"]["kind"], "Status");
    assert_eq!(lines[0]["object"]["code"], 410);
    assert_eq!(lines[0]["object"]["reason"], "Expired");

    // Expired continue token: a bare HTTP 410 with a Status body.
    api.set_max_page(1);
    let page = raw_get(addr, "/api/v1/pods?&limit=500", true).await.json();
    let token = page["metadata"]["continue"].as_str().expect("token").to_string();
    assert!(!page["metadata"]["resourceVersion"].as_str().unwrap_or("").is_empty());
    api.compact();
    let gone = raw_get(addr, &format!("/api/v1/pods?&limit=500&continue={token}"), true).await;
    assert_eq!(gone.status, 410);
    assert_eq!(gone.json()["kind"], "Status");
    assert_eq!(gone.json()["code"], 410);

    // A bookmark then a clean end of stream (terminating chunk present).
    let rv = api.resource_version();
    let target = format!("/api/v1/pods?watch=true&allowWatchBookmarks=true&resourceVersion={rv}");
    let task = tokio::spawn(async move { raw_get(addr, &target, false).await });
    wait_for("the raw watch", || api.open_watches("Pod") == 1).await;
    api.bookmark();
    api.disconnect_watches();
    let resp = task.await.unwrap();
    let lines = resp.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["type"], "BOOKMARK");
    assert_eq!(lines[0]["object"]["kind"], "Pod");
    assert_eq!(lines[0]["object"]["apiVersion"], "v1");
    assert_eq!(lines[0]["object"]["metadata"]["resourceVersion"], rv.to_string());

    // resourceVersion=0: synthetic ADDED for the current state; timeoutSeconds ends it.
    let started = Instant::now();
    let resp =
        raw_get(addr, "/api/v1/namespaces/default/pods?watch=true&resourceVersion=0&timeoutSeconds=1", false).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    let lines = resp.lines();
    let added: Vec<&str> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["type"], "ADDED");
            assert_eq!(l["object"]["kind"], "Pod");
            l["object"]["metadata"]["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(added, ["a", "b"]);

    // Resuming from a recent resourceVersion replays history after it.
    let rv = api.resource_version();
    api.apply(pod("default", "c", &[]));
    api.delete("Pod", "default", "a");
    let target = format!("/api/v1/pods?watch=true&resourceVersion={rv}&timeoutSeconds=1");
    let lines = raw_get(addr, &target, false).await.lines();
    let seen: Vec<String> =
        lines.iter().map(|l| format!("{} {}", l["type"].as_str().unwrap(), l["object"]["metadata"]["name"])).collect();
    assert_eq!(seen, ["ADDED \"c\"", "DELETED \"a\""]);

    // EndpointSlice bookmarks carry their own kind and apiVersion; unknown paths are 404.
    let target = "/apis/discovery.k8s.io/v1/endpointslices?watch=true&allowWatchBookmarks=true";
    let task = tokio::spawn(raw_get(addr, target, false));
    wait_for("the raw watch", || api.open_watches("EndpointSlice") == 1).await;
    api.bookmark();
    api.disconnect_watches();
    let lines = task.await.unwrap().lines();
    assert_eq!(lines[0]["object"]["kind"], "EndpointSlice");
    assert_eq!(lines[0]["object"]["apiVersion"], "discovery.k8s.io/v1");
    let missing = raw_get(addr, "/api/v1/configmaps", true).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["kind"], "Status");
}

#[tokio::test]
async fn failed_requests_error_the_watcher_until_restored() {
    let api = FakeApi::start().await;
    api.apply(pod("default", "a", &[]));

    api.fail_requests(Some(500));
    let mut w = Watch::spawn(Api::<Pod>::all(client(&api)), watcher::Config::default());
    w.expect(&["Init", "Err(InitialListFailed 500)"]).await;
    api.fail_requests(None);
    let (_, batch) = w.resync().await;
    assert_eq!(batch, ["a"]);
    assert_eq!(api.list_count("Pod"), 1, "failed lists are not counted");
    wait_for("the watch", || api.open_watches("Pod") == 1).await;

    api.fail_requests(Some(403));
    api.disconnect_watches();
    assert_eq!(describe(&w.next().await), "Err(WatchStartFailed 403)");
    api.fail_requests(None);
    wait_for("the re-watch", || api.open_watches("Pod") == 1).await;
    api.apply(pod("default", "b", &[]));
    let (_, ev) = w.next_ok().await;
    assert_eq!(describe::<Pod>(&Ok(ev)), "Apply(b)");
    assert_eq!(api.list_count("Pod"), 1, "a re-watch is not a relist");

    // The Status body is a proper one.
    api.fail_requests(Some(500));
    let resp = raw_get(api.addr(), "/api/v1/pods", true).await;
    assert_eq!(resp.status, 500);
    let body = resp.json();
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "InternalError");
    assert_eq!(body["code"], 500);
}

#[tokio::test]
async fn kubeconfig_from_write_kubeconfig_works() {
    let api = FakeApi::start().await;
    api.apply(pod("default", "a", &[]));
    let dir = tempfile::tempdir().unwrap();
    let path = api.write_kubeconfig(dir.path());
    let kubeconfig = Kubeconfig::read_from(&path).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config from kubeconfig");
    assert!(config.cluster_url.to_string().starts_with(&api.url()));
    assert_eq!(config.default_namespace, "default");
    let client = Client::try_from(config).expect("client");
    let pods = Api::<Pod>::default_namespaced(client.clone()).list(&ListParams::default()).await.expect("list pods");
    assert_eq!(pods.items.len(), 1);
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.major, "1");
}

#[tokio::test]
async fn partition_holds_requests_and_freezes_watches() {
    let api = FakeApi::start().await;
    api.apply(pod("default", "a", &[]));
    let mut w = Watch::spawn(Api::<Pod>::all(client(&api)), watcher::Config::default());
    w.expect(&["Init", "InitApply(a)", "InitDone"]).await;
    wait_for("the watch", || api.open_watches("Pod") == 1).await;

    api.set_partitioned(true);
    api.apply(pod("default", "b", &[]));
    api.delete("Pod", "default", "a");
    api.bookmark();
    w.assert_quiet(Duration::from_millis(300)).await;
    assert_eq!(api.open_watches("Pod"), 1, "the frozen stream stays open");

    // A new request gets no answer while partitioned, and a dropped connection after.
    let mut held = tokio::spawn(raw_exchange(api.addr(), "/api/v1/pods", true));
    wait_for("the held request", || api.held_requests() == 1).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut held).await.is_err(),
        "no response during a partition"
    );
    let lists = api.list_count("Pod");
    api.set_partitioned(false);
    let bytes = tokio::time::timeout(WAIT, held).await.expect("held request released").unwrap();
    assert!(bytes.is_empty(), "dropped without a response: {bytes:?}");
    assert_eq!(api.held_requests(), 0);

    // The watcher re-watches from its last resourceVersion and gets the missed events.
    let (_, ev) = w.next_ok().await;
    assert_eq!(describe::<Pod>(&Ok(ev)), "Apply(b)");
    let (_, ev) = w.next_ok().await;
    assert_eq!(describe::<Pod>(&Ok(ev)), "Delete(a)");
    assert_eq!(api.list_count("Pod"), lists, "no relist needed");
    wait_for("the re-watch", || api.open_watches("Pod") == 1).await;
}

#[tokio::test]
async fn selectors_and_namespaces() {
    let api = FakeApi::start().await;
    api.apply(pod("ns1", "a", &[("app", "web")]));
    api.apply(pod("ns1", "b", &[("app", "db")]));
    api.apply(pod("ns2", "c", &[("app", "web"), ("tier", "x")]));
    api.apply(pod("ns2", "d", &[]));
    let c = client(&api);
    let names = |l: kube::core::ObjectList<Pod>| -> Vec<String> { l.items.iter().map(|p| p.name_any()).collect() };
    let all = Api::<Pod>::all(c.clone());
    let cases: &[(&str, &[&str])] = &[
        ("app=web", &["a", "c"]),
        ("app==web,tier=x", &["c"]),
        ("app!=web", &["b", "d"]),
        ("app", &["a", "b", "c"]),
        ("!app", &["d"]),
        ("app in (web,db)", &["a", "b", "c"]),
        ("app notin (web)", &["b", "d"]),
    ];
    for (sel, want) in cases {
        let got = names(all.list(&ListParams::default().labels(sel)).await.unwrap());
        assert_eq!(&got, want, "selector {sel}");
    }
    let got = names(all.list(&ListParams::default().fields("metadata.name=c")).await.unwrap());
    assert_eq!(got, ["c"]);
    let ns1 = Api::<Pod>::namespaced(c.clone(), "ns1");
    let got = names(ns1.list(&ListParams::default().labels("app=web")).await.unwrap());
    assert_eq!(got, ["a"]);
    assert_eq!(ns1.get("b").await.unwrap().name_any(), "b");
    assert!(matches!(ns1.get("zzz").await, Err(kube::Error::Api(s)) if s.code == 404));

    let mut w = Watch::spawn(ns1, watcher::Config::default().labels("app=web"));
    w.expect(&["Init", "InitApply(a)", "InitDone"]).await;
    wait_for("the watch", || api.open_watches("Pod") == 1).await;
    api.apply(pod("ns1", "b", &[("app", "web")])); // moves into the selection: ADDED
    w.expect(&["Apply(b)"]).await;
    api.apply(pod("ns1", "a", &[("app", "other")])); // moves out of it: DELETED
    w.expect(&["Delete(a)"]).await;
    api.apply(pod("ns2", "e", &[("app", "web")])); // other namespace: nothing
    api.apply(pod("ns1", "f", &[("app", "db")])); // not selected: nothing
    api.apply(pod("ns1", "g", &[("app", "web")]));
    w.expect(&["Apply(g)"]).await;
}

#[tokio::test]
async fn services_and_endpointslices_are_served() {
    let api = FakeApi::start().await;
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "web", "namespace": "default" },
        "spec": { "clusterIP": "None", "selector": { "app": "web" } },
    }));
    let slice = |name: &str, ip: &str| {
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": { "name": name, "namespace": "default",
                          "labels": { "kubernetes.io/service-name": "web" } },
            "addressType": "IPv4",
            "endpoints": [{ "addresses": [ip], "conditions": { "ready": true } }],
        })
    };
    api.apply(slice("web-abc", "10.0.0.1"));
    let c = client(&api);
    let svcs = Api::<Service>::all(c.clone()).list(&ListParams::default()).await.unwrap();
    assert_eq!(svcs.items.len(), 1);
    let mut w = Watch::spawn(
        Api::<EndpointSlice>::namespaced(c, "default"),
        watcher::Config::default().labels("kubernetes.io/service-name=web"),
    );
    w.expect(&["Init", "InitApply(web-abc)", "InitDone"]).await;
    wait_for("the watch", || api.open_watches("EndpointSlice") == 1).await;
    api.apply(slice("web-abc", "10.0.0.2"));
    match w.next().await {
        Ok(Event::Apply(s)) => assert_eq!(s.endpoints[0].addresses, ["10.0.0.2"]),
        other => panic!("want Apply(web-abc), got {}", describe(&other)),
    }
    api.delete("EndpointSlice", "default", "web-abc");
    w.expect(&["Delete(web-abc)"]).await;
    assert_eq!(api.list_count("EndpointSlice"), 1);
    assert_eq!(api.list_count("Service"), 1);
    assert_eq!(api.list_count("Pod"), 0);
}

#[tokio::test]
async fn shutdown_closes_the_listener_and_every_connection() {
    let api = FakeApi::start().await;
    let addr = api.addr();
    let mut w = Watch::spawn(Api::<Pod>::all(client(&api)), watcher::Config::default());
    w.expect(&["Init", "InitDone"]).await;
    wait_for("the watch", || api.open_watches("Pod") == 1).await;
    api.set_partitioned(true);
    let held = tokio::spawn(raw_exchange(addr, "/api/v1/pods", true));
    wait_for("the held request", || api.held_requests() == 1).await;
    api.shutdown();
    assert_eq!(api.open_watches("Pod"), 0);
    let bytes = tokio::time::timeout(WAIT, held).await.expect("held request released").unwrap();
    assert!(bytes.is_empty());
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "listener still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The watcher now only sees errors.
    let item = w.next().await;
    assert!(item.is_err(), "{}", describe(&item));
}

#[tokio::test]
async fn watch_timeout_rewatches_without_a_relist() {
    let api = FakeApi::start().await;
    api.apply(pod("default", "a", &[]));
    let mut w = Watch::spawn(Api::<Pod>::all(client(&api)), watcher::Config::default().timeout(1));
    w.expect(&["Init", "InitApply(a)", "InitDone"]).await;
    // The server ends the stream after timeoutSeconds=1; kube re-watches from its last RV.
    wait_for("a second watch", || api.watch_count("Pod") >= 2 && api.open_watches("Pod") == 1).await;
    api.apply(pod("default", "b", &[]));
    w.expect(&["Apply(b)"]).await;
    assert_eq!(api.list_count("Pod"), 1);
}

#[tokio::test]
async fn statefulsets_are_served_under_apps_v1_and_can_be_forbidden() {
    let api = FakeApi::start().await;
    let sts = |replicas: i32| {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": { "name": "web", "namespace": "default" },
            "spec": { "serviceName": "nginx", "replicas": replicas, "selector": { "matchLabels": { "app": "web" } },
                      "template": { "metadata": { "labels": { "app": "web" } },
                                    "spec": { "containers": [{ "name": "c", "image": "x" }] } } },
        })
    };
    api.apply(sts(3));
    let c = client(&api);
    let mut w = Watch::spawn(Api::<StatefulSet>::all(c.clone()), watcher::Config::default());
    w.expect(&["Init", "InitApply(web)", "InitDone"]).await;
    wait_for("the watch", || api.open_watches("StatefulSet") == 1).await;
    api.apply(sts(5));
    match w.next().await {
        Ok(Event::Apply(s)) => assert_eq!(s.spec.and_then(|s| s.replicas), Some(5)),
        other => panic!("want Apply(web), got {}", describe(&other)),
    }
    // RBAC without statefulsets: 403 Forbidden on list and watch, as the real API answers.
    api.fail_kind("StatefulSet", Some(403));
    let err = Api::<StatefulSet>::all(c.clone()).list(&ListParams::default()).await.unwrap_err();
    assert_eq!(code_of(&err), "403");
    assert_eq!(Api::<Service>::all(c).list(&ListParams::default()).await.unwrap().items.len(), 0, "others served");
}

#[tokio::test]
async fn metadata_only_requests_get_partial_object_metadata() {
    let api = FakeApi::start().await;
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "db", "labels": {"dns": "on"}},
        "spec": {"finalizers": ["kubernetes"]}}));
    let c = client(&api);
    let metas = Api::<PartialObjectMeta<Namespace>>::all(c.clone());
    let list = metas.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.labels.as_ref().and_then(|l| l.get("dns")).map(String::as_str), Some("on"));
    // On the wire: PartialObjectMetadataList, no spec.
    let raw = raw_get_with(
        api.addr(),
        "/api/v1/namespaces",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )
    .await;
    let body: Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(body["kind"], "PartialObjectMetadataList");
    assert_eq!(body["items"][0]["kind"], "PartialObjectMetadata");
    assert!(body["items"][0].get("spec").is_none(), "{body}");
    let mut w = Watch::spawn(metas, watcher::Config::default());
    w.expect(&["Init", "InitApply(db)", "InitDone"]).await;
    wait_for("the watch", || api.open_watches("Namespace") == 1).await;
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}));
    w.expect(&["Apply(web)"]).await;
}

#[tokio::test]
async fn streaming_lists_get_initial_events_and_the_end_bookmark() {
    let api = FakeApi::start().await;
    api.apply(pod("default", "a", &[]));
    api.apply(pod("default", "b", &[]));
    let mut w = Watch::spawn(Api::<Pod>::all(client(&api)), watcher::Config::default().streaming_lists());
    w.expect(&["Init", "InitApply(a)", "InitApply(b)", "InitDone"]).await;
    api.apply(pod("default", "c", &[]));
    w.expect(&["Apply(c)"]).await;
    assert_eq!((api.list_count("Pod"), api.stream_count("Pod")), (0, 1));
}

/// A server with the `WatchList` gate off (Kubernetes 1.33's default) refuses the streaming list
/// with 422 `Invalid`, and kube's watcher retries it forever (headless-dns falls back); one that
/// ignores the parameter sends the state but never the end bookmark, so the list never ends.
#[tokio::test]
async fn streaming_lists_refused_or_ignored_as_older_servers_do() {
    let api = FakeApi::start().await;
    api.apply(pod("default", "a", &[]));
    api.set_streaming_lists(fake_api::StreamingLists::Refused);
    let mut w = Watch::spawn(Api::<Pod>::all(client(&api)), watcher::Config::default().streaming_lists());
    w.expect(&["Err(WatchStartFailed 422)", "Err(WatchStartFailed 422)"]).await;
    assert_eq!((api.stream_count("Pod"), api.list_count("Pod")), (0, 0));

    api.set_streaming_lists(fake_api::StreamingLists::Ignored);
    let (_, first) = w.next_ok().await;
    assert!(matches!(first, Event::Init));
    w.expect(&["InitApply(a)"]).await;
    w.assert_quiet(Duration::from_millis(300)).await;
    // A clean end of the stream starts the streaming list again, still without an end.
    api.disconnect_watches();
    w.expect(&["Init", "InitApply(a)"]).await;
    assert_eq!(api.stream_count("Pod"), 0);

    // The real server's checks on a streaming list's parameters.
    let addr = api.addr();
    let path = "/api/v1/pods?watch=true&sendInitialEvents=true&resourceVersion=0";
    api.set_streaming_lists(fake_api::StreamingLists::Offered);
    let r = raw_get(addr, &format!("{path}&allowWatchBookmarks=true"), true).await;
    assert_eq!(r.status, 422, "no resourceVersionMatch");
    let r = raw_get(addr, &format!("{path}&resourceVersionMatch=NotOlderThan"), true).await;
    assert_eq!(r.status, 422, "no allowWatchBookmarks");
    assert_eq!(api.stream_count("Pod"), 0);
}

#[tokio::test]
async fn service_imports_are_discovered_and_watched_as_dynamic_objects() {
    let api = FakeApi::start().await;
    let import = |name: &str| {
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": name, "namespace": "ns"}, "spec": {"type": "Headless"}})
    };
    api.apply(import("db"));
    let c = client(&api);
    // kube's discovery client finds the CRD's group, version and plural.
    let discovery = kube::Discovery::new(c.clone()).run().await.unwrap();
    let group = discovery.get("multicluster.x-k8s.io").expect("the mcs-api group");
    let (resource, caps) = group
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.kind == "ServiceImport")
        .expect("ServiceImport discovered");
    assert_eq!((resource.version.as_str(), resource.plural.as_str()), ("v1alpha1", "serviceimports"));
    assert!(caps.supports_operation(kube::discovery::verbs::WATCH));
    let imports = Api::<kube::api::DynamicObject>::all_with(c, &resource);
    let mut w = Watch::spawn(imports, watcher::Config::default());
    w.expect(&["Init", "InitApply(db)", "InitDone"]).await;
    wait_for("the watch", || api.open_watches("ServiceImport") == 1).await;
    api.apply(import("web"));
    w.expect(&["Apply(web)"]).await;
    // Without the CRD the group is gone from discovery and the list is a 404.
    api.fail_kind("ServiceImport", Some(404));
    let discovery = kube::Discovery::new(client(&api)).run().await.unwrap();
    assert!(discovery.get("multicluster.x-k8s.io").is_none(), "no CRD, no group");
}
