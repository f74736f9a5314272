//! Churn under load: the fake Kubernetes API recreates StatefulSet pods with new IPs many times a
//! second while several tasks query the real binary over UDP as fast as it answers, and every
//! answer is checked against what the API had said by the time the query was sent.
//!
//! Each of [`PODS`] pods `web-N` of the headless Service `web` goes through the recreation the
//! API shows (`DELETED` -> `ADDED` Pending without an IP -> `MODIFIED` IP, not Ready ->
//! `MODIFIED` Ready) over and over, each time with an IP from a counter, so no IP is ever reused.
//! A ledger records, per IP, its pod, when the API made it Ready and when the API deleted it
//! (both taken just before the fake API emits the event). An answer is wrong when:
//!
//! - **regressed**: it contains an IP of a pod older than one an earlier answer, received before
//!   this query was sent, already carried: never an IP older than one already served (no clock
//!   involved);
//! - **premature**: it contains an IP that was not yet Ready when the reply arrived (causal: no
//!   clock bound either);
//! - **stale**: it contains an IP whose `DELETED` was emitted more than [`LIMIT`] before the
//!   query was sent;
//! - **late**: it lacks an IP that had been Ready for more than [`LIMIT`] when the query was sent
//!   and was still not deleted when the reply arrived (NXDOMAIN included);
//! - **other**: SERVFAIL (the server is synced throughout), an unknown IP, another pod's IP, or
//!   an unexpected rcode.
//!
//! [`LIMIT`] is a liveness bound that a busy two-core machine running a debug build never
//! crosses (propagation there is tens of milliseconds); how fast propagation is, is measured, not
//! asserted: the summary line reports it against [`BOUND`], and `cargo bench --bench scale`
//! measures it on a release build. Every query gets a reply: a query unanswered after
//! [`QUERY_TIMEOUT`] is retried up to [`RETRIES`] times and must not be lost; timeouts and the
//! server's RSS are reported. After the churn stops, every name answers the API's final state.
//!
//! Duration: `HEADLESS_DNS_SOAK_SECS` (default 10, for CI; 60 for the full run). Everything is
//! bounded: the run's time, the total number of queries, and each wait. The summary line is
//! printed to stderr (`cargo test --test soak -- --nocapture`):
//!
//! ```sh
//! HEADLESS_DNS_SOAK_SECS=60 cargo test --test soak -- --nocapture
//! ```

mod support;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use support::dns::{addresses, query};
use support::fake_api::FakeApi;
use support::server::ServerProcess;

/// Pods recreated over and over.
const PODS: usize = 20;
/// The propagation bound reported (API -> watch -> reconciler -> index), for a debug build on a
/// shared 2-core machine: measured worst cases were 20-80 ms (one outlier of 140 ms at load
/// average 6, with three compilers running); release-build propagation is p99 1-3 ms (`cargo
/// bench --bench scale`). Reported, not asserted.
const BOUND: Duration = Duration::from_millis(250);
/// The liveness bound asserted: a deleted IP served, or a Ready IP missing, this long after the
/// API said so is a stuck server, not a slow machine.
const LIMIT: Duration = Duration::from_secs(10);
/// Query tasks (each with one query in flight).
const LOADERS: usize = 4;
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
const RETRIES: u32 = 5;
/// Upper bound on queries per second of run time (the run stops at whichever bound comes first).
const MAX_QPS: u64 = 40_000;
/// Warm-up before the first RSS reading.
const WARM_UP: Duration = Duration::from_secs(1);
/// Pause steps of one recreation (the API's pace between the four events).
const PENDING_FOR: Duration = Duration::from_millis(10);
const NOT_READY_FOR: Duration = Duration::from_millis(10);
const STARTING_FOR: Duration = Duration::from_millis(20);
const SERVICE: &str = "web.default.svc.cluster.local.";

fn pod_name(i: usize) -> String {
    format!("web-{i}")
}

fn fqdn(i: usize) -> String {
    format!("web-{i}.web.default.svc.cluster.local.")
}

/// A StatefulSet pod of the Service `web`: without an IP (Pending), with one not Ready, or Ready.
fn pod(i: usize, ip: Option<Ipv4Addr>, ready: bool) -> Value {
    let name = pod_name(i);
    let mut status = json!({"phase": if ip.is_some() { "Running" } else { "Pending" },
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]});
    if let Some(ip) = ip {
        status["podIP"] = json!(ip.to_string());
        status["podIPs"] = json!([{"ip": ip.to_string()}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default",
            "labels": {"app": "web", "statefulset.kubernetes.io/pod-name": name}},
        "spec": {"hostname": name, "subdomain": "web", "containers": [{"name": "c", "image": "x"}]},
        "status": status})
}

/// IP number `n`, never reused: 10.128.0.0 + n.
fn nth_ip(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + n)
}

// ---------------------------------------------------------------------------------------------
// The ledger: what the API said, and when
// ---------------------------------------------------------------------------------------------

struct IpLife {
    pod: usize,
    /// Its place among the pod's IPs (0: the first).
    generation: usize,
    ready_at: Option<Instant>,
    deleted_at: Option<Instant>,
    /// When the last query was sent whose answer contained this IP.
    last_served: Option<Instant>,
}

#[derive(Default)]
struct Ledger {
    ips: HashMap<Ipv4Addr, IpLife>,
    /// Each pod's IPs, oldest first.
    by_pod: Vec<Vec<Ipv4Addr>>,
    /// Each pod's newest IP generation seen in an answer, and when that answer first arrived.
    newest_seen: Vec<Option<(usize, Instant)>>,
    next_ip: u32,
}

impl Ledger {
    /// For each deleted IP, how long after its `DELETED` a query was still sent that got it back
    /// (zero when none was): the observed propagation time of a deletion, to within the time
    /// between two queries for one name. Sorted.
    fn propagation(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self
            .ips
            .values()
            .filter_map(|l| {
                let deleted = l.deleted_at?;
                Some(l.last_served.map_or(Duration::ZERO, |s| s.saturating_duration_since(deleted)))
            })
            .collect();
        v.sort();
        v
    }

    fn new_ip(&mut self, pod: usize) -> Ipv4Addr {
        self.next_ip += 1;
        let ip = nth_ip(self.next_ip);
        let generation = self.by_pod[pod].len();
        self.ips.insert(ip, IpLife { pod, generation, ready_at: None, deleted_at: None, last_served: None });
        self.by_pod[pod].push(ip);
        ip
    }

    /// IPs that must be in an answer for `target` to a query sent at `sent` and answered at
    /// `received`: Ready for longer than [`LIMIT`] at `sent`, not deleted by `received`.
    fn due(&self, target: Target, sent: Instant, received: Instant) -> Vec<(Ipv4Addr, Duration)> {
        let pods = match target {
            Target::Pod(i) => i..i + 1,
            Target::Service => 0..PODS,
        };
        let mut out = Vec::new();
        for p in pods {
            // The IP current at `received` is one of the pod's last few.
            for ip in self.by_pod[p].iter().rev().take(3) {
                let life = &self.ips[ip];
                if let Some(ready) = life.ready_at
                    && ready + LIMIT < sent
                    && life.deleted_at.is_none_or(|d| d > received)
                {
                    out.push((*ip, sent - ready));
                }
            }
        }
        out
    }
}

type SharedLedger = Arc<Mutex<Ledger>>;

fn lock(l: &SharedLedger) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Pod(usize),
    Service,
}

// ---------------------------------------------------------------------------------------------
// Checking answers
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    sent: u64,
    answers: u64,
    timeouts: u64,
    lost: u64,
    regressed: u64,
    stale: u64,
    premature: u64,
    late: u64,
    servfail: u64,
    other: u64,
    nxdomain: u64,
    /// Answers that carried a deleted IP within [`BOUND`] (queries sent during propagation).
    within_bound: u64,
    /// Answers that carried a deleted IP later than [`BOUND`] but within [`LIMIT`] (reported).
    over_bound: u64,
    /// The largest `sent - deleted_at` over answers that contained a deleted IP.
    worst_staleness: Duration,
    /// The longest query round trip (a stalled server or machine shows here).
    worst_rtt: Duration,
    examples: Vec<String>,
}

impl Stats {
    fn wrong(&self) -> u64 {
        self.regressed + self.stale + self.premature + self.late + self.servfail + self.other
    }

    fn note(&mut self, what: String) {
        if self.examples.len() < 20 {
            self.examples.push(what);
        }
    }

    fn merge(&mut self, o: Stats) {
        self.sent += o.sent;
        self.answers += o.answers;
        self.timeouts += o.timeouts;
        self.lost += o.lost;
        self.regressed += o.regressed;
        self.stale += o.stale;
        self.premature += o.premature;
        self.late += o.late;
        self.servfail += o.servfail;
        self.other += o.other;
        self.nxdomain += o.nxdomain;
        self.within_bound += o.within_bound;
        self.over_bound += o.over_bound;
        self.worst_staleness = self.worst_staleness.max(o.worst_staleness);
        self.worst_rtt = self.worst_rtt.max(o.worst_rtt);
        for e in o.examples {
            self.note(e);
        }
    }

    fn check(
        &mut self,
        ledger: &mut Ledger,
        target: Target,
        sent: Instant,
        received: Instant,
        m: &Message,
        t0: Instant,
    ) {
        self.answers += 1;
        self.worst_rtt = self.worst_rtt.max(received - sent);
        // Each note says when the query was sent and how long its round trip took.
        let at = || {
            format!("{:.3}s rtt {:.1}ms", sent.duration_since(t0).as_secs_f64(), (received - sent).as_secs_f64() * 1e3)
        };
        let mut present = Vec::new();
        match m.metadata.response_code {
            ResponseCode::NoError => {
                for text in addresses(m) {
                    let Ok(ip) = text.parse::<Ipv4Addr>() else {
                        self.other += 1;
                        self.note(format!("+{} {target:?}: not an IPv4 address {text}", at()));
                        continue;
                    };
                    present.push(ip);
                    let Some(life) = ledger.ips.get_mut(&ip) else {
                        self.other += 1;
                        self.note(format!("+{} {target:?}: {ip} was never handed out", at()));
                        continue;
                    };
                    if let Target::Pod(i) = target
                        && life.pod != i
                    {
                        self.other += 1;
                        self.note(format!("+{} {target:?}: {ip} belongs to web-{}", at(), life.pod));
                    }
                    life.last_served = life.last_served.max(Some(sent));
                    let (pod, generation) = (life.pod, life.generation);
                    if let Some((newest, seen_at)) = ledger.newest_seen[pod]
                        && generation < newest
                        && seen_at < sent
                    {
                        self.regressed += 1;
                        self.note(format!(
                            "+{} {target:?}: {ip} served after a newer IP of web-{pod} was already served",
                            at()
                        ));
                    }
                    let life = &ledger.ips[&ip];
                    if life.ready_at.is_none_or(|r| received < r) {
                        self.premature += 1;
                        self.note(format!("+{} {target:?}: {ip} served before it was Ready", at()));
                    }
                    if let Some(deleted) = life.deleted_at
                        && sent > deleted
                    {
                        let staleness = sent - deleted;
                        self.worst_staleness = self.worst_staleness.max(staleness);
                        if staleness > LIMIT {
                            self.stale += 1;
                            self.note(format!("+{} {target:?}: {ip} served {staleness:?} after its DELETED", at()));
                        } else if staleness > BOUND {
                            self.over_bound += 1;
                        } else {
                            self.within_bound += 1;
                        }
                    }
                }
                for ip in &present {
                    if let Some(life) = ledger.ips.get(ip) {
                        let slot = &mut ledger.newest_seen[life.pod];
                        if slot.is_none_or(|(newest, _)| life.generation > newest) {
                            *slot = Some((life.generation, received));
                        }
                    }
                }
                if present.is_empty() {
                    self.other += 1;
                    self.note(format!("+{} {target:?}: NOERROR without an address", at()));
                }
            }
            ResponseCode::NXDomain => self.nxdomain += 1,
            ResponseCode::ServFail => {
                self.servfail += 1;
                self.note(format!("+{} {target:?}: SERVFAIL", at()));
            }
            rcode => {
                self.other += 1;
                self.note(format!("+{} {target:?}: {rcode:?}", at()));
            }
        }
        if matches!(m.metadata.response_code, ResponseCode::NoError | ResponseCode::NXDomain) {
            for (ip, ready_for) in ledger.due(target, sent, received) {
                if !present.contains(&ip) {
                    self.late += 1;
                    self.note(format!("+{} {target:?}: {ip} missing, Ready for {ready_for:?}", at()));
                }
            }
        }
    }
}

/// One query task: queries the names in turn, one in flight, until `end` or `budget` runs out.
async fn load(
    dns: SocketAddr,
    first: usize,
    ledger: SharedLedger,
    end: Instant,
    budget: Arc<AtomicU64>,
    t0: Instant,
) -> Stats {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(dns).await.unwrap();
    let targets: Vec<(Target, String)> =
        (0..PODS).map(|i| (Target::Pod(i), fqdn(i))).chain([(Target::Service, SERVICE.to_string())]).collect();
    let mut stats = Stats::default();
    let mut buf = vec![0u8; 4096];
    let mut id: u16 = (first as u16).wrapping_mul(10_007);
    let mut k = first;
    'run: while Instant::now() < end {
        let (target, name) = &targets[k % targets.len()];
        k += 1;
        let mut answered = false;
        for attempt in 0..=RETRIES {
            if budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1)).is_err() {
                break 'run;
            }
            id = id.wrapping_add(1);
            let mut q = query(name, RecordType::A, None);
            q.metadata.id = id;
            let bytes = q.to_vec().unwrap();
            let sent = Instant::now();
            sock.send(&bytes).await.unwrap();
            stats.sent += 1;
            let deadline = tokio::time::Instant::now() + QUERY_TIMEOUT;
            let reply = support::dns::await_reply(&sock, &mut buf, id, deadline).await;
            let received = Instant::now();
            match reply {
                Some(m) => {
                    stats.check(&mut lock(&ledger), *target, sent, received, &m, t0);
                    answered = true;
                    break;
                }
                None => {
                    stats.timeouts += 1;
                    let at = sent.duration_since(t0).as_secs_f64();
                    stats.note(format!("+{at:.3}s {name}: no reply in {QUERY_TIMEOUT:?} (attempt {attempt})"));
                }
            }
        }
        if !answered {
            stats.lost += 1;
        }
    }
    stats
}

// ---------------------------------------------------------------------------------------------
// Churn: the API recreating pods
// ---------------------------------------------------------------------------------------------

/// Recreates pod `i` over and over until `stop`, each time with a new IP; returns how often.
async fn churn(api: FakeApi, i: usize, ledger: SharedLedger, stop: Arc<AtomicBool>, end: Instant) -> u64 {
    let mut recreations = 0;
    // Each pod stays Ready for 300..=500 ms between recreations, staggered across pods.
    let mut hold = 300 + (i as u64 * 37) % 200;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(hold)).await;
        hold = 300 + (hold * 7 + 13) % 200;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        {
            let mut l = lock(&ledger);
            let old = *l.by_pod[i].last().expect("a pod has an IP");
            l.ips.get_mut(&old).expect("known IP").deleted_at = Some(Instant::now());
            api.delete("Pod", "default", &pod_name(i));
        }
        tokio::time::sleep(PENDING_FOR).await;
        api.apply(pod(i, None, false));
        tokio::time::sleep(NOT_READY_FOR).await;
        let ip = lock(&ledger).new_ip(i);
        api.apply(pod(i, Some(ip), false));
        tokio::time::sleep(STARTING_FOR).await;
        {
            let mut l = lock(&ledger);
            l.ips.get_mut(&ip).expect("known IP").ready_at = Some(Instant::now());
            api.apply(pod(i, Some(ip), true));
        }
        recreations += 1;
    }
    recreations
}

// ---------------------------------------------------------------------------------------------
// The soak
// ---------------------------------------------------------------------------------------------

/// Watches the machine: a thread of this process sleeps 5 ms at a time until `stop` (or `end`)
/// and records how late it wakes. A long oversleep means the machine (shared, two cores) did not
/// run this process then, and a server stall at the same moment is likely the machine's too.
/// Returns the worst oversleep and the times of those over 25 ms.
fn canary(t0: Instant, end: Instant, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Duration, Vec<String>)> {
    std::thread::spawn(move || {
        let (tick, mut worst, mut stalls) = (Duration::from_millis(5), Duration::ZERO, Vec::new());
        while !stop.load(Ordering::Relaxed) && Instant::now() < end {
            let before = Instant::now();
            std::thread::sleep(tick);
            let late = before.elapsed().saturating_sub(tick);
            worst = worst.max(late);
            if late > Duration::from_millis(25) && stalls.len() < 50 {
                stalls.push(format!(
                    "+{:.3}s {:.1}ms",
                    before.duration_since(t0).as_secs_f64(),
                    late.as_secs_f64() * 1e3
                ));
            }
        }
        (worst, stalls)
    })
}

/// The fake API's runtime, shut down in the background when dropped (a runtime cannot be dropped
/// the ordinary way inside the test's async context, including while a failed assertion unwinds).
struct ApiRuntime(Option<tokio::runtime::Runtime>);

impl ApiRuntime {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("runtime")
    }
}

impl Drop for ApiRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn soak_secs() -> u64 {
    match std::env::var("HEADLESS_DNS_SOAK_SECS") {
        Ok(v) => v
            .parse()
            .ok()
            .filter(|s| (1..=600).contains(s))
            .unwrap_or_else(|| panic!("HEADLESS_DNS_SOAK_SECS must be a number of seconds, 1..=600, not {v:?}")),
        Err(_) => 10,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn churn_under_load_never_serves_a_replaced_ip_and_loses_nothing() {
    let secs = soak_secs();
    // The fake API and the churn run on their own runtime, so that the query load does not
    // delay the API's events (which would be charged to the server).
    let api_rt =
        ApiRuntime(Some(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()));
    let api = api_rt.get().spawn(FakeApi::start()).await.unwrap();

    let ledger: SharedLedger = Arc::new(Mutex::new(Ledger {
        by_pod: vec![Vec::new(); PODS],
        newest_seen: vec![None; PODS],
        ..Ledger::default()
    }));
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "None", "selector": {"app": "web"}}}));
    for i in 0..PODS {
        let mut l = lock(&ledger);
        let ip = l.new_ip(i);
        l.ips.get_mut(&ip).unwrap().ready_at = Some(Instant::now());
        api.apply(pod(i, Some(ip), true));
    }
    let server = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, &[], &[]);
        s.wait_for_log("first full sync complete", Duration::from_secs(20));
        s
    });
    let dns = server.dns;

    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(secs);
    let stop = Arc::new(AtomicBool::new(false));
    let machine = canary(t0, end + Duration::from_secs(30), stop.clone());
    let churners: Vec<_> =
        (0..PODS).map(|i| api_rt.get().spawn(churn(api.clone(), i, ledger.clone(), stop.clone(), end))).collect();
    let budget = Arc::new(AtomicU64::new(secs * MAX_QPS));
    let loaders: Vec<_> =
        (0..LOADERS).map(|n| tokio::spawn(load(dns, n * 5, ledger.clone(), end, budget.clone(), t0))).collect();

    // RSS after the warm-up, then every second (the peak), then at the end.
    tokio::time::sleep(WARM_UP).await;
    let rss_start = server.rss_kib();
    let mut rss_peak = rss_start;
    while Instant::now() + Duration::from_secs(1) < end {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_peak = rss_peak.max(server.rss_kib());
    }
    let mut stats = Stats::default();
    for l in loaders {
        stats.merge(l.await.expect("load task"));
    }
    let rss_end = server.rss_kib();
    rss_peak = rss_peak.max(rss_end);
    stop.store(true, Ordering::Relaxed);
    let mut recreations = 0;
    for c in churners {
        recreations += c.await.expect("churn task");
    }
    let ran = t0.elapsed().as_secs_f64();
    let (worst_oversleep, stalls) = machine.join().expect("canary thread");
    let propagation = lock(&ledger).propagation();
    let pct = |p: f64| {
        let i = ((propagation.len() as f64 * p).ceil() as usize).clamp(1, propagation.len().max(1)) - 1;
        propagation.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };

    // After the churn: every name answers the API's final state.
    let finals: Vec<Ipv4Addr> = {
        let l = lock(&ledger);
        (0..PODS).map(|i| *l.by_pod[i].last().unwrap()).collect()
    };
    let settle = Instant::now() + Duration::from_secs(5);
    loop {
        let mut mismatch = None;
        for (i, ip) in finals.iter().enumerate() {
            let (m, _) = support::dns::udp_message(dns, &query(&fqdn(i), RecordType::A, None)).await;
            if addresses(&m) != [ip.to_string()] {
                mismatch = Some(format!("{}: {:?}, want {ip}", fqdn(i), addresses(&m)));
                break;
            }
        }
        let (m, _) = support::dns::udp_message(dns, &query(SERVICE, RecordType::A, None)).await;
        let mut want: Vec<String> = finals.iter().map(Ipv4Addr::to_string).collect();
        want.sort();
        if mismatch.is_none() && addresses(&m) != want {
            mismatch = Some(format!("{SERVICE}: {:?}, want {want:?}", addresses(&m)));
        }
        match mismatch {
            None => break,
            Some(m) => assert!(Instant::now() < settle, "the final state is not served: {m}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(api_rt);

    eprintln!(
        "soak: {ran:.1} s, {} queries sent ({:.0}/s), {} answers checked ({} NXDOMAIN during recreations), \
         {} wrong answers (regressed {}, stale {}, premature {}, late {}, SERVFAIL {}, other {}), \
         worst staleness {:.1} ms (reported bound {} ms: {} answers carried a deleted IP within it, {} later), {} timeouts, {} lost, {recreations} recreations ({:.1}/s), \
         RSS start {rss_start} KiB end {rss_end} KiB peak {rss_peak} KiB; \
         deletion propagation over {} deletions: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         worst round trip {:.1} ms, worst oversleep of a 5 ms sleep in the test process {:.1} ms",
        stats.sent,
        stats.sent as f64 / ran,
        stats.answers,
        stats.nxdomain,
        stats.wrong(),
        stats.regressed,
        stats.stale,
        stats.premature,
        stats.late,
        stats.servfail,
        stats.other,
        stats.worst_staleness.as_secs_f64() * 1000.0,
        BOUND.as_millis(),
        stats.within_bound,
        stats.over_bound,
        stats.timeouts,
        stats.lost,
        recreations as f64 / ran,
        propagation.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        stats.worst_rtt.as_secs_f64() * 1e3,
        worst_oversleep.as_secs_f64() * 1e3,
    );
    let examples = stats.examples.join("\n");
    let stalls = stalls.join(", ");
    assert_eq!(
        stats.wrong(),
        0,
        "wrong answers (first 20):\n{examples}\nthe test process itself overslept at: [{stalls}]"
    );
    assert_eq!(stats.lost, 0, "every query gets a reply on loopback, retries included:\n{examples}");
    assert!(stats.answers >= secs * 100, "the load ran: {} answers", stats.answers);
    assert!(recreations >= secs * 5, "the churn ran: {recreations} recreations");
}
