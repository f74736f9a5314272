//! API faults, end to end: the real binary watches the fake Kubernetes API through a kubeconfig
//! while the API fails lists and watches (500, 403), goes away (connection refused), goes silent
//! (a partition), drops its watches over and over, forgets its history (410 and a relist), and
//! comes back with a different state.
//!
//! Every test runs a [`Probe`] alongside: a bounded loop that asks, every 10 ms over UDP, for names
//! whose records never change, and records every answer. The test then asserts "no gap": not one
//! of those answers was a SERVFAIL, an NXDOMAIN, a wrong address or missing. Names that do change
//! are checked by the test itself: their last good answer serves while the API is unreachable,
//! and once the API is back (after the relist, where there is one) they equal the API's state.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use support::dns::{addresses, query, udp_message};
use support::fake_api::FakeApi;
use support::server::{ServerProcess, eventually, run_to_exit};

/// Deadline for the server to catch up after a fault ends. kube's watcher retries with a
/// jittered exponential backoff (0.8 s doubling, each delay up to twice that), so recovery after
/// an outage of a few seconds can take several seconds more.
const RECOVER: Duration = Duration::from_secs(15);
/// Deadline for the server to notice a fault (the first failed request).
const NOTICE: Duration = Duration::from_secs(10);
/// How soon after the relist finished the answers must equal the API's state: a liveness bound
/// that a busy two-core machine never crosses (the time it took is printed; propagation speed is
/// measured by `cargo bench --bench scale`, not asserted here).
const AFTER_RELIST: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

fn headless(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": "None", "selector": {"app": name}}})
}

fn cluster_ip(name: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": ip, "clusterIPs": [ip], "selector": {"app": name}}})
}

/// A Service without a selector: its endpoints come from EndpointSlices.
fn selectorless(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"}, "spec": {"clusterIP": "None"}})
}

fn slice(name: &str, service: &str, ips: &[&str]) -> Value {
    let endpoints: Vec<Value> = ips.iter().map(|ip| json!({"addresses": [ip]})).collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "endpoints": endpoints})
}

/// A ready StatefulSet-style pod of `app` with `ip`.
fn pod(name: &str, app: &str, ip: &str) -> Value {
    support::objects::statefulset_pod("default", name, app, Some(ip), true)
}

/// What every test starts from: the steady objects behind [`STEADY`] (one of each watched kind:
/// a headless Service with pods, a ClusterIP Service, a selectorless Service with a slice), and
/// the `nginx` StatefulSet the tests change.
fn base_objects() -> Vec<Value> {
    vec![
        headless("stable"),
        pod("stable-0", "stable", "10.10.0.1"),
        pod("stable-1", "stable", "10.10.0.2"),
        cluster_ip("api", "10.96.0.10"),
        selectorless("ext"),
        slice("ext-1", "ext", &["10.20.0.1"]),
        headless("nginx"),
        pod("web-0", "nginx", "10.244.1.5"),
        pod("web-1", "nginx", "10.244.2.7"),
    ]
}

/// Names whose records never change in any test, with their addresses: the [`Probe`] asks for
/// them throughout every fault.
const STEADY: [(&str, &[&str]); 4] = [
    ("stable-0.stable.default.svc.cluster.local.", &["10.10.0.1"]),
    ("stable.default.svc.cluster.local.", &["10.10.0.1", "10.10.0.2"]),
    ("api.default.svc.cluster.local.", &["10.96.0.10"]),
    ("ext.default.svc.cluster.local.", &["10.20.0.1"]),
];

const WEB0: &str = "web-0.nginx.default.svc.cluster.local.";
const WEB1: &str = "web-1.nginx.default.svc.cluster.local.";
const WEB2: &str = "web-2.nginx.default.svc.cluster.local.";
const NGINX: &str = "nginx.default.svc.cluster.local.";

/// The watches, by the names `/readyz` and `/metrics` use.
const KINDS: [&str; 3] = ["services", "pods", "endpointslices"];

struct Fixture {
    api: FakeApi,
    server: ServerProcess,
}

impl Fixture {
    /// A fake API holding `objects` and the binary watching it through a kubeconfig, synced.
    async fn start(objects: Vec<Value>, extra_args: &[&str]) -> Fixture {
        let api = FakeApi::start().await;
        for o in objects {
            api.apply(o);
        }
        let server = tokio::task::block_in_place(|| ServerProcess::watching(&api, extra_args, &[]));
        tokio::task::block_in_place(|| server.wait_for_log("first full sync complete", NOTICE));
        let f = Fixture { api, server };
        for (name, want) in STEADY {
            assert_eq!(f.a(name).await, (ResponseCode::NoError, strings(want)), "{name} after the first sync");
        }
        f
    }

    /// An A query over UDP: (rcode, sorted addresses).
    async fn a(&self, name: &str) -> (ResponseCode, Vec<String>) {
        a(self.server.dns, name).await
    }

    fn readyz(&self) -> (u16, String) {
        tokio::task::block_in_place(|| self.server.http_get("/readyz"))
    }

    /// How many full lists (first list and relists) each watch has completed, in [`KINDS`] order.
    fn lists(&self) -> [f64; 3] {
        KINDS.map(|kind| {
            let series = format!("headless_dns_watch_events_total{{kind=\"{kind}\",event=\"list\"}}");
            tokio::task::block_in_place(|| self.server.metric(&series)).unwrap_or(0.0)
        })
    }

    /// Waits until `/readyz`'s line for `kind` satisfies `check`; returns (status, body).
    async fn readyz_until(&self, what: &str, kind: &str, check: impl Fn(&str) -> bool) -> (u16, String) {
        eventually(what, NOTICE, || {
            let (code, body) = self.readyz();
            let ok = check(watch_line(&body, kind));
            async move { ok.then_some((code, body)) }
        })
        .await
    }

    /// Waits until every name in `want` answers as given; a name with no addresses is NXDOMAIN.
    async fn until_state(&self, what: &str, timeout: Duration, want: &[(&str, &[&str])]) {
        let dns = self.server.dns;
        let deadline = Instant::now() + timeout;
        loop {
            let Some(last) = mismatch(dns, want).await else { return };
            assert!(Instant::now() < deadline, "timed out waiting for: {what}; last mismatch: {last}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until every watch has completed more full lists than `before`; returns when it saw it.
    async fn relisted(&self, before: [f64; 3]) -> Instant {
        eventually("every watch relisted", RECOVER, || {
            let now = self.lists();
            let done = now.iter().zip(before).all(|(n, b)| *n > b);
            async move { done.then(Instant::now) }
        })
        .await
    }

    /// Holds a fault for `duration` (the duration is the point), checking every 100 ms that
    /// `/readyz` stays 200 (synced: the last good answers serve) and that each name in `want`
    /// still gives its last good answer.
    async fn hold(&self, duration: Duration, want: &[(&str, &[&str])]) {
        let end = Instant::now() + duration;
        while Instant::now() < end {
            let (code, body) = self.readyz();
            assert_eq!(code, 200, "readiness stays while synced and serving the last good answers:\n{body}");
            if let Some(m) = mismatch(self.server.dns, want).await {
                panic!("the last good answer must keep serving during the fault: {m}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

async fn a(dns: SocketAddr, name: &str) -> (ResponseCode, Vec<String>) {
    let (m, _) = udp_message(dns, &query(name, RecordType::A, None)).await;
    (m.metadata.response_code, addresses(&m))
}

/// The first name in `want` that does not answer as given, described.
async fn mismatch(dns: SocketAddr, want: &[(&str, &[&str])]) -> Option<String> {
    for (name, ips) in want {
        let expect = if ips.is_empty() { ResponseCode::NXDomain } else { ResponseCode::NoError };
        let got = a(dns, name).await;
        if got != (expect, strings(ips)) {
            return Some(format!("{name}: got {got:?}, want {expect:?} {ips:?}"));
        }
    }
    None
}

/// The `/readyz` line of one watch (`pods: synced; ...`), or "" when there is none.
fn watch_line<'a>(body: &'a str, kind: &str) -> &'a str {
    body.lines().find(|l| l.strip_prefix(kind).is_some_and(|rest| rest.starts_with(':'))).unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// The probe: "no gap" for names that did not change
// ---------------------------------------------------------------------------------------------

/// Bounds of one probe: it stops when told, after this long, or after this many rounds.
const PROBE_MAX_TIME: Duration = Duration::from_secs(60);
const PROBE_MAX_ROUNDS: usize = 6000;
const PROBE_EVERY: Duration = Duration::from_millis(10);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks for a set of names (by default [`STEADY`]) every 10 ms over UDP and records each answer.
struct Probe {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<ProbeReport>,
}

#[derive(Debug, Default)]
struct ProbeReport {
    queries: u64,
    timeouts: u64,
    /// One line per wrong or missing answer.
    wrong: Vec<String>,
    elapsed: Duration,
}

impl Probe {
    /// Probes the [`STEADY`] names.
    fn start(dns: SocketAddr) -> Probe {
        Probe::names(dns, &STEADY)
    }

    /// Probes `names`, each of which must always answer NOERROR with exactly its addresses.
    fn names(dns: SocketAddr, names: &[(&str, &[&str])]) -> Probe {
        let names: Vec<(String, Vec<String>)> = names.iter().map(|(n, ips)| (n.to_string(), strings(ips))).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            sock.connect(dns).await.unwrap();
            let started = Instant::now();
            let mut report = ProbeReport::default();
            let mut id: u16 = 0;
            let mut buf = vec![0u8; 4096];
            for _ in 0..PROBE_MAX_ROUNDS {
                if flag.load(Ordering::Relaxed) || started.elapsed() > PROBE_MAX_TIME {
                    break;
                }
                for (name, want) in &names {
                    id = id.wrapping_add(1);
                    let mut q = query(name, RecordType::A, None);
                    q.metadata.id = id;
                    let at = started.elapsed().as_secs_f64();
                    sock.send(&q.to_vec().unwrap()).await.unwrap();
                    report.queries += 1;
                    let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
                    let reply = support::dns::await_reply(&sock, &mut buf, id, deadline).await;
                    match reply {
                        None => {
                            report.timeouts += 1;
                            report.wrong.push(format!("+{at:.3}s {name}: no reply within {PROBE_TIMEOUT:?}"));
                        }
                        Some(m) => {
                            let got = addresses(&m);
                            if m.metadata.response_code != ResponseCode::NoError || got != *want {
                                let rcode = m.metadata.response_code;
                                report.wrong.push(format!("+{at:.3}s {name}: {rcode:?} {got:?}, want {want:?}"));
                            }
                        }
                    }
                }
                tokio::time::sleep(PROBE_EVERY).await;
            }
            report.elapsed = started.elapsed();
            report
        });
        Probe { stop, task }
    }

    /// Stops the probe and asserts no gap: every answer it got was right, none was missing.
    async fn assert_no_gap(self) -> ProbeReport {
        self.stop.store(true, Ordering::Relaxed);
        let report = self.task.await.expect("probe task");
        eprintln!(
            "probe: {} queries over {:.1} s, {} wrong, {} timeouts",
            report.queries,
            report.elapsed.as_secs_f64(),
            report.wrong.len(),
            report.timeouts
        );
        assert!(
            report.wrong.is_empty(),
            "{} of {} answers for unchanged names were wrong or missing (first 20):\n{}",
            report.wrong.len(),
            report.queries,
            report.wrong.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
        );
        assert!(report.queries >= 40, "the probe ran ({} queries)", report.queries);
        report
    }
}

// ---------------------------------------------------------------------------------------------
// List and watch failures
// ---------------------------------------------------------------------------------------------

/// HTTP `code` on every watch request while every watch is cut: the last good answers serve,
/// `/readyz` stays 200 and names each watch's error, and once the API answers again the change
/// made during the outage arrives.
async fn watch_errors_keep_the_last_good_answers(code: u16) {
    let f = Fixture::start(base_objects(), &[]).await;
    let probe = Probe::start(f.server.dns);
    let code_text = code.to_string();

    f.api.fail_requests(Some(code));
    f.api.disconnect_watches();
    let (status, body) = f
        .readyz_until("the pods watch reports the failed watch", "pods", |l| {
            l.starts_with("pods: synced")
                && l.contains("last error: failed to start watching")
                && l.contains(&code_text)
        })
        .await;
    assert_eq!(status, 200, "{body}");
    for kind in KINDS {
        assert!(watch_line(&body, kind).starts_with(&format!("{kind}: synced")), "{body}");
    }
    // A change the server cannot see yet: web-0's last good answer keeps serving.
    f.api.apply(pod("web-0", "nginx", "10.244.1.50"));
    f.hold(Duration::from_millis(1500), &[(WEB0, &["10.244.1.5"]), (WEB1, &["10.244.2.7"])]).await;
    f.api.fail_requests(None);
    f.until_state("the watch resumed and replayed the change", RECOVER, &[(WEB0, &["10.244.1.50"])]).await;
    let (status, body) =
        f.readyz_until("the pods error cleared by the next event", "pods", |l| !l.contains("error")).await;
    assert_eq!(status, 200, "{body}");
    assert!(watch_line(&body, "pods").starts_with("pods: synced"), "{body}");
    probe.assert_no_gap().await;
}

/// HTTP `code` on every list (streaming lists: every watch) while a relist is needed: with the
/// watches down, web-1 is deleted, web-2 added and the history compacted; the watch then resumes
/// from a forgotten version (in-stream 410) and every relist gets `code`. The last good answers serve (web-1 too: the
/// server cannot know), `/readyz` stays 200 and names the failed list, and soon after
/// the relist finally completing the answers equal the API's state.
/// With `streaming`, relists are streaming lists (watches), so the fault is on watches; without,
/// on paged lists.
async fn relist_errors_keep_the_last_good_answers(code: u16, streaming: bool) {
    let args: &[&str] = if streaming { &[] } else { &["--streaming-lists=false"] };
    let f = Fixture::start(base_objects(), args).await;
    let probe = Probe::start(f.server.dns);
    let code_text = code.to_string();

    f.api.fail_requests(Some(code));
    f.api.disconnect_watches();
    assert_eq!(f.api.open_watches("Pod"), 0);
    f.api.delete("Pod", "default", "web-1");
    f.api.apply(pod("web-2", "nginx", "10.244.3.3"));
    f.api.compact();
    let lists_before = f.lists();
    let fail = |status| if streaming { f.api.fail_watches(status) } else { f.api.fail_lists(status) };
    fail(Some(code));
    f.api.fail_requests(None);
    let failed = if streaming { "failed to start watching" } else { "failed to perform initial object list" };
    let (status, body) = f
        .readyz_until("the pods watch reports the failed relist", "pods", |l| {
            l.starts_with("pods: synced") && l.contains(failed) && l.contains(&code_text)
        })
        .await;
    assert_eq!(status, 200, "{body}");
    f.hold(
        Duration::from_millis(1500),
        &[(WEB0, &["10.244.1.5"]), (WEB1, &["10.244.2.7"]), (WEB2, &[]), (NGINX, &["10.244.1.5", "10.244.2.7"])],
    )
    .await;
    fail(None);
    let relisted = f.relisted(lists_before).await;
    f.until_state(
        "the relist's state",
        AFTER_RELIST,
        &[(WEB0, &["10.244.1.5"]), (WEB1, &[]), (WEB2, &["10.244.3.3"]), (NGINX, &["10.244.1.5", "10.244.3.3"])],
    )
    .await;
    eprintln!(
        "HTTP {code} on relists: answers equal the API's state {:?} after the relist was seen",
        relisted.elapsed()
    );
    let (status, body) = f.readyz();
    assert_eq!(status, 200, "{body}");
    assert!(!watch_line(&body, "pods").contains("error"), "the relist clears the error:\n{body}");
    probe.assert_no_gap().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_500_on_watches_keeps_the_last_good_answers() {
    watch_errors_keep_the_last_good_answers(500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_403_on_watches_keeps_the_last_good_answers() {
    watch_errors_keep_the_last_good_answers(403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_500_on_relists_keeps_the_last_good_answers_then_answers_equal_the_relist() {
    relist_errors_keep_the_last_good_answers(500, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_500_on_paged_relists_keeps_the_last_good_answers_then_answers_equal_the_relist() {
    relist_errors_keep_the_last_good_answers(500, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_403_on_relists_keeps_the_last_good_answers_then_answers_equal_the_relist() {
    relist_errors_keep_the_last_good_answers(403, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_403_on_paged_relists_keeps_the_last_good_answers_then_answers_equal_the_relist() {
    relist_errors_keep_the_last_good_answers(403, false).await;
}

// ---------------------------------------------------------------------------------------------
// The API goes away, goes silent, drops watches, forgets history, comes back different
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_shut_down_connection_refused_keeps_the_last_good_answers() {
    let mut f = Fixture::start(base_objects(), &[]).await;
    let probe = Probe::start(f.server.dns);
    let (addr, rv) = (f.api.addr(), f.api.resource_version());

    f.api.shutdown();
    let (status, body) = f
        .readyz_until("the pods watch reports the refused connection", "pods", |l| {
            l.starts_with("pods: synced") && l.contains("last error") && l.to_lowercase().contains("connect")
        })
        .await;
    assert_eq!(status, 200, "{body}");
    f.hold(Duration::from_secs(2), &[(WEB0, &["10.244.1.5"]), (NGINX, &["10.244.1.5", "10.244.2.7"])]).await;

    // The API comes back on the same address, web-0 changed while it was away.
    let mut objects = base_objects();
    objects.push(pod("web-0", "nginx", "10.244.1.60"));
    f.api = FakeApi::start_on(addr, objects, rv + 100).await;
    f.until_state(
        "the state of the API that came back",
        RECOVER,
        &[(WEB0, &["10.244.1.60"]), (NGINX, &["10.244.1.60", "10.244.2.7"])],
    )
    .await;
    probe.assert_no_gap().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_silent_partition_keeps_the_last_good_answers_and_changes_appear_after_it_heals() {
    let f = Fixture::start(base_objects(), &[]).await;
    let probe = Probe::start(f.server.dns);

    f.api.set_partitioned(true);
    // Changes during the partition go into the API's history; the server cannot see them.
    f.api.apply(pod("web-0", "nginx", "10.244.1.70"));
    f.api.delete("Pod", "default", "web-1");
    f.api.apply(pod("web-2", "nginx", "10.244.3.70"));
    f.hold(
        Duration::from_secs(4),
        &[(WEB0, &["10.244.1.5"]), (WEB1, &["10.244.2.7"]), (WEB2, &[]), (NGINX, &["10.244.1.5", "10.244.2.7"])],
    )
    .await;

    // Healing breaks the frozen streams; the watch resumes from its resourceVersion and the
    // history replays.
    f.api.set_partitioned(false);
    f.until_state(
        "the changes made during the partition",
        RECOVER,
        &[(WEB0, &["10.244.1.70"]), (WEB1, &[]), (WEB2, &["10.244.3.70"]), (NGINX, &["10.244.1.70", "10.244.3.70"])],
    )
    .await;
    probe.assert_no_gap().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disconnect_storm_with_changes_and_compactions_converges_without_a_gap() {
    let f = Fixture::start(base_objects(), &[]).await;
    let probe = Probe::start(f.server.dns);
    let lists_before = f.lists();

    // The model of what the API holds: web-0..web-4 (IP or absent) and a ClusterIP Service
    // `flap` (IP or absent).
    let mut web: Vec<Option<String>> = vec![Some("10.244.1.5".into()), Some("10.244.2.7".into()), None, None, None];
    let mut flap: Option<String> = None;
    for k in 0..60u32 {
        f.api.disconnect_watches();
        let i = (k % 5) as usize;
        let name = format!("web-{i}");
        if k % 7 == 6 {
            f.api.delete("Pod", "default", &name);
            web[i] = None;
        } else {
            let ip = format!("10.30.{k}.{}", i + 1);
            f.api.apply(pod(&name, "nginx", &ip));
            web[i] = Some(ip);
        }
        if k % 4 == 0 {
            match flap.take() {
                Some(_) => f.api.delete("Service", "default", "flap"),
                None => {
                    let ip = format!("10.96.1.{}", k + 1);
                    f.api.apply(cluster_ip("flap", &ip));
                    flap = Some(ip);
                }
            }
        }
        if k % 10 == 9 {
            // Some reconnects resume from a forgotten version: 410, relist.
            f.api.compact();
        }
        // The storm's pace (the pattern is the point, not a synchronisation).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let names: Vec<String> = (0..5).map(|i| format!("web-{i}.nginx.default.svc.cluster.local.")).collect();
    let mut set: Vec<String> = web.iter().flatten().cloned().collect();
    set.sort();
    let mut want: Vec<(&str, Vec<&str>)> =
        names.iter().zip(&web).map(|(n, ip)| (n.as_str(), ip.iter().map(String::as_str).collect())).collect();
    want.push((NGINX, set.iter().map(String::as_str).collect()));
    want.push(("flap.default.svc.cluster.local.", flap.iter().map(String::as_str).collect()));
    let want: Vec<(&str, &[&str])> = want.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    f.until_state("the state after the storm", RECOVER, &want).await;
    let lists = f.lists();
    assert!(lists[1] > lists_before[1], "the compactions forced pod relists: {lists_before:?} -> {lists:?}");
    let report = probe.assert_no_gap().await;
    eprintln!("storm: 60 disconnects, 6 compactions, lists {lists_before:?} -> {lists:?}, {} probes", report.queries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relist_after_410_drops_deleted_objects_within_a_second_and_unchanged_names_never_blink() {
    let mut objects = base_objects();
    objects.push(cluster_ip("gone", "10.96.0.99"));
    objects.push(selectorless("extra"));
    objects.push(slice("extra-1", "extra", &["10.20.9.1"]));
    let f = Fixture::start(objects, &[]).await;
    let probe = Probe::start(f.server.dns);

    // Round 1: a pod, a Service and a slice deleted, a pod changed, a pod added.
    // Round 2: the added pod deleted again, a slice re-created with another address.
    type Round = (fn(&FakeApi), &'static [(&'static str, &'static [&'static str])]);
    let rounds: [Round; 2] = [
        (
            |api| {
                api.delete("Pod", "default", "web-1");
                api.delete("Service", "default", "gone");
                api.delete("EndpointSlice", "default", "extra-1");
                api.apply(pod("web-0", "nginx", "10.244.1.80"));
                api.apply(pod("web-2", "nginx", "10.244.3.80"));
            },
            &[
                (WEB0, &["10.244.1.80"]),
                (WEB1, &[]),
                (WEB2, &["10.244.3.80"]),
                (NGINX, &["10.244.1.80", "10.244.3.80"]),
                ("gone.default.svc.cluster.local.", &[]),
                ("extra.default.svc.cluster.local.", &[]),
            ],
        ),
        (
            |api| {
                api.delete("Pod", "default", "web-2");
                api.apply(slice("extra-2", "extra", &["10.20.9.2"]));
            },
            &[
                (WEB0, &["10.244.1.80"]),
                (WEB2, &[]),
                (NGINX, &["10.244.1.80"]),
                ("extra.default.svc.cluster.local.", &["10.20.9.2"]),
            ],
        ),
    ];
    let mut member = None;
    for (round, (change, want)) in rounds.iter().enumerate() {
        if round == 1 {
            // Round 2 leaves web-0 as round 1 made it while its Service changes: it never blinks.
            member = Some(Probe::names(f.server.dns, &[(WEB0, &["10.244.1.80"])]));
        }
        // Keep the watches down while the changes happen, so they reach the server only through
        // the relist; then forget the history.
        f.api.fail_requests(Some(500));
        f.api.disconnect_watches();
        change(&f.api);
        f.api.compact();
        let before = f.lists();
        f.api.fail_requests(None);
        let relisted = f.relisted(before).await;
        f.until_state(&format!("round {round}: the relisted state within {AFTER_RELIST:?}"), AFTER_RELIST, want).await;
        eprintln!("round {round}: answers equal the relist {:?} after it was seen", relisted.elapsed());
    }
    probe.assert_no_gap().await;
    member.expect("round 2 ran").assert_no_gap().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_restarted_with_a_different_state_answers_equal_it_within_a_second_of_the_relist() {
    // web-4 is a member of `nginx` that does not change while the rest of `nginx` does.
    const WEB4: &str = "web-4.nginx.default.svc.cluster.local.";
    let mut objects = base_objects();
    objects.push(cluster_ip("gone", "10.96.0.99"));
    objects.push(pod("web-4", "nginx", "10.244.5.4"));
    let mut f = Fixture::start(objects, &[]).await;
    let probe = Probe::start(f.server.dns);
    let member = Probe::names(f.server.dns, &[(WEB4, &["10.244.5.4"])]);
    let (addr, rv) = (f.api.addr(), f.api.resource_version());
    let before = f.lists();

    f.api.shutdown();
    f.readyz_until("the outage is noticed", "pods", |l| l.contains("last error")).await;

    // The new state: the steady objects as they were (new uids), web-0 changed, web-1 and the
    // Service `gone` removed, web-3 and the Service `fresh` new.
    let mut objects: Vec<Value> = base_objects().into_iter().filter(|o| o["metadata"]["name"] != "web-1").collect();
    objects.push(pod("web-0", "nginx", "10.244.1.90"));
    objects.push(pod("web-3", "nginx", "10.244.4.90"));
    objects.push(pod("web-4", "nginx", "10.244.5.4"));
    objects.push(cluster_ip("fresh", "10.96.0.77"));
    f.api = FakeApi::start_on(addr, objects, rv + 1000).await;
    let relisted = f.relisted(before).await;
    let want: &[(&str, &[&str])] = &[
        (WEB0, &["10.244.1.90"]),
        (WEB1, &[]),
        ("web-3.nginx.default.svc.cluster.local.", &["10.244.4.90"]),
        (NGINX, &["10.244.1.90", "10.244.4.90", "10.244.5.4"]),
        ("gone.default.svc.cluster.local.", &[]),
        ("fresh.default.svc.cluster.local.", &["10.96.0.77"]),
    ];
    f.until_state("the restarted API's state soon after the relist", AFTER_RELIST, want).await;
    eprintln!("restart: answers equal the new state {:?} after the relist was seen", relisted.elapsed());
    probe.assert_no_gap().await;
    member.assert_no_gap().await;
}

// ---------------------------------------------------------------------------------------------
// /readyz during an outage
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_names_the_failing_watch_and_its_error_and_stays_ready_while_synced() {
    let f = Fixture::start(base_objects(), &[]).await;
    let probe = Probe::start(f.server.dns);

    // Only the Pod watch fails.
    f.api.fail_kind("Pod", Some(500));
    f.api.disconnect_watches_of("Pod");
    let (status, body) = f
        .readyz_until("the pods watch reports its error", "pods", |l| {
            l.starts_with("pods: synced") && l.contains("last error:") && l.contains("500")
        })
        .await;
    assert_eq!(status, 200, "synced: the last good answers serve, so still ready:\n{body}");
    assert_eq!(body.lines().next(), Some("ready"), "{body}");
    for kind in ["services", "endpointslices"] {
        let line = watch_line(&body, kind);
        assert!(line.starts_with(&format!("{kind}: synced")) && !line.contains("error"), "only pods fails:\n{body}");
    }
    f.hold(Duration::from_secs(1), &[(WEB0, &["10.244.1.5"])]).await;

    f.api.fail_kind("Pod", None);
    f.api.apply(pod("web-0", "nginx", "10.244.1.55"));
    f.until_state("the pods watch back", RECOVER, &[(WEB0, &["10.244.1.55"])]).await;
    let (status, body) = f.readyz_until("the pods error cleared", "pods", |l| !l.contains("error")).await;
    assert_eq!(status, 200, "{body}");
    probe.assert_no_gap().await;
}

/// Asserts that the binary accepts `--stale-after`, with a message that says what is missing.
fn require_stale_after_flag() {
    // `--help` after it: exit 0 when the flag exists, clap's usage error (2) when it does not.
    let (code, stderr) = run_to_exit(&["--stale-after", "5", "--help"]);
    assert_eq!(
        code, 0,
        "this test needs the staleness report: `headless-dns --stale-after SECS` (a watch without \
         successful API contact for that long makes /readyz 503 and names the watch), but the binary \
         rejects the flag (exit {code}):\n{stderr}"
    );
}

// needs --stale-after
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_fails_naming_the_watch_that_is_stale_beyond_stale_after() {
    require_stale_after_flag();
    const STALE_AFTER: Duration = Duration::from_secs(2);
    let f = Fixture::start(base_objects(), &["--stale-after", "2"]).await;
    let probe = Probe::start(f.server.dns);

    // A quiet, healthy API for longer than the limit: no events is not staleness.
    let quiet = Instant::now() + STALE_AFTER + Duration::from_millis(1500);
    while Instant::now() < quiet {
        let (status, body) = f.readyz();
        assert_eq!(status, 200, "a quiet but reachable API is not stale:\n{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The Pod API goes away (every list and watch of pods fails); the others stay.
    f.api.fail_kind("Pod", Some(500));
    f.api.disconnect_watches_of("Pod");
    let outage = Instant::now();
    let body = eventually("/readyz 503 naming the stale pods watch", NOTICE, || {
        let (status, body) = f.readyz();
        async move { (status == 503).then_some(body) }
    })
    .await;
    let took = outage.elapsed();
    assert!(body.to_lowercase().contains("stale"), "the report says why:\n{body}");
    assert!(watch_line(&body, "pods").to_lowercase().contains("stale"), "it names the pods watch:\n{body}");
    for kind in ["services", "endpointslices"] {
        assert!(!watch_line(&body, kind).to_lowercase().contains("stale"), "only pods is stale:\n{body}");
    }
    // The last contact was the last probe (every second here, at most a third of the limit)
    // before the outage: never stale before limit - 1 s (a slow machine only makes it later; how
    // much later is printed, not asserted, beyond the NOTICE deadline above).
    eprintln!("stale reported {took:?} after the outage (limit {STALE_AFTER:?})");
    assert!(took >= STALE_AFTER - Duration::from_millis(1100), "not before the limit: {took:?}");
    // Not ready, but the last good answers still serve (the probe checks them throughout).
    assert_eq!(f.a(WEB0).await, (ResponseCode::NoError, strings(&["10.244.1.5"])));

    f.api.fail_kind("Pod", None);
    let body = eventually("ready again once the API answers", RECOVER, || {
        let (status, body) = f.readyz();
        async move { (status == 200).then_some(body) }
    })
    .await;
    assert!(!watch_line(&body, "pods").to_lowercase().contains("stale"), "{body}");
    eprintln!("stale-after 2 s: /readyz 503 after {took:?} of outage");
    probe.assert_no_gap().await;
}

// needs --stale-after
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_reports_a_watch_that_cannot_restart_even_while_lists_succeed() {
    // RBAC with `list` but not `watch` on pods (or a proxy that breaks long requests): lists,
    // and so the staleness probes, succeed, but the Pod watch cannot restart, so no pod change
    // reaches the index. /readyz must keep saying so (the watch's error), and with
    // --stale-after it must fail once the watch has been down for longer than the limit.
    require_stale_after_flag();
    let f = Fixture::start(base_objects(), &["--stale-after", "2"]).await;
    let probe = Probe::start(f.server.dns);

    f.api.fail_watches(Some(403));
    f.api.disconnect_watches_of("Pod");
    f.readyz_until("the pods watch reports the failed watch", "pods", |l| l.contains("failed to start watching")).await;
    f.api.apply(pod("web-0", "nginx", "10.244.1.66"));
    // Longer than the limit and several probe periods: the error must not be wiped by a probe.
    let end = Instant::now() + Duration::from_secs(4);
    let mut last = (0, String::new());
    while Instant::now() < end {
        last = f.readyz();
        let line = watch_line(&last.1, "pods");
        assert!(
            line.contains("failed to start watching") || line.contains("probe watch"),
            "while the pods watch cannot restart, /readyz must keep its error (the watch's or the probe's watch):\n{}",
            last.1
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(last.0, 503, "a watch down for longer than --stale-after is stale:\n{}", last.1);
    assert_eq!(f.a(WEB0).await.1, ["10.244.1.5"], "the change cannot arrive: the last good answer serves");

    f.api.fail_watches(None);
    f.until_state("the watch back", RECOVER, &[(WEB0, &["10.244.1.66"])]).await;
    probe.assert_no_gap().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_that_recovers_quietly_stops_being_reported_as_failing() {
    // Without --stale-after: the Service watch fails to restart for a while, then restarts with
    // no event to report. kube's watcher says nothing on success, so the failure-only probe (every
    // 10 s) must clear the error from /readyz.
    let f = Fixture::start(base_objects(), &[]).await;
    f.api.fail_watches(Some(500));
    f.api.disconnect_watches_of("Service");
    f.readyz_until("the services watch reports its failure", "services", |l| l.contains("last error")).await;
    f.api.fail_watches(None);
    let body = eventually("the error cleared without any Service event", Duration::from_secs(30), || {
        let (code, body) = f.readyz();
        let clear = code == 200 && !watch_line(&body, "services").contains("last error");
        async move { clear.then_some(body) }
    })
    .await;
    assert!(body.starts_with("ready"), "{body}");
}
