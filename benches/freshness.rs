//! Freshness through real resolvers: how soon a client behind unbound, BIND or Knot Resolver sees
//! a recreated StatefulSet pod's new IP once headless-dns serves it, with the expected-name
//! negatives on (the defaults we ship: `ttl` 5, `soa-minimum` 5, `expected-negative-ttl` 0) and
//! off (`--statefulsets=false`: every negative carries `soa-minimum`).
//!
//! The fake Kubernetes API serves a headless Service `nginx` and a StatefulSet `web` (1 replica).
//! Each recreation of `web-0`, as the StatefulSet controller and the kubelet show it: `DELETED`,
//! `ADDED` Pending without an IP, after 1 s `MODIFIED` with a new IP but not Ready, and
//! [`READY_AFTER`] after the delete `MODIFIED` Ready (longer than the TTL: the resolvers' cached
//! answer expires during the gap, so they ask, get a negative, and cache it). Meanwhile one client
//! per resolver asks for `web-0` every [`EVERY`] (recursion desired), and a probe asks headless-dns
//! itself every millisecond from the Ready event on, to time when it serves the new IP.
//!
//! Reported per resolver and mode, over the recreations: the delay from "headless-dns serves the
//! new IP" to "the client first gets it" (p50, max), the negatives the client got after the new IP
//! was served, and the answers with the old IP after that (must be 0). Each resolver runs with its
//! own defaults, except Knot Resolver with `cache.min_ttl(0)` (it raises every TTL to 5 s
//! otherwise; see shared/resolvers.md). The table is printed and written to
//! `bench/results/freshness-<UTC time>.md`.
//!
//! Run: `cargo bench --bench freshness` (FRESHNESS_RECREATIONS, default 5). Needs `unbound`,
//! `named` and `kresd` (`bash .ci/run` installs them). Loopback only; every loop is bounded.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use support::dns::{addresses, query};
use support::fake_api::FakeApi;
use support::objects::statefulset_pod;
use support::resolvers::{Kind, Resolver};
use support::server::ServerProcess;

const NAME: &str = "web-0.nginx.default.svc.cluster.local.";
/// How often each client asks.
const EVERY: Duration = Duration::from_millis(50);
/// From the delete to the new pod's Ready event: longer than the 5 s TTL.
const READY_AFTER: Duration = Duration::from_secs(6);
/// How long after the new IP is served the clients are watched before the next recreation:
/// longer than any negative is cached (`soa-minimum` 5 s).
const WATCH_AFTER: Duration = Duration::from_secs(8);
const RESOLVERS: [Kind; 3] = [Kind::Unbound, Kind::Bind, Kind::Kresd];

/// One client answer.
#[derive(Clone)]
struct Sample {
    at: Instant,
    rcode: ResponseCode,
    ips: Vec<String>,
}

/// One recreation: the IP before, the IP after, and when headless-dns first served the new one.
struct Recreation {
    old_ip: String,
    new_ip: String,
    served: Instant,
}

/// What one resolver's client saw after one recreation.
struct Outcome {
    delay: Option<Duration>,
    negatives: usize,
    old_ips: usize,
}

fn ip(n: usize) -> String {
    format!("10.244.{}.{}", n / 250, n % 250 + 1)
}

fn service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx", "namespace": "default"},
        "spec": {"clusterIP": "None", "selector": {"app": "nginx"}}})
}

fn statefulset() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"serviceName": "nginx", "replicas": 1, "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
}

/// Asks `server` for `web-0` A, recursion desired: (rcode, addresses), or None on a timeout.
fn ask(sock: &UdpSocket, server: SocketAddr, id: u16) -> Option<(ResponseCode, Vec<String>)> {
    let mut q = query(NAME, RecordType::A, None);
    q.metadata.id = id;
    q.metadata.recursion_desired = true;
    sock.send_to(&q.to_vec().ok()?, server).ok()?;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        let n = sock.recv(&mut buf).ok()?;
        if let Ok(m) = Message::from_vec(&buf[..n])
            && m.metadata.id == id
        {
            return Some((m.metadata.response_code, addresses(&m)));
        }
    }
    None
}

/// A client asking `server` every [`EVERY`] until `stop`.
fn client(server: SocketAddr, stop: Arc<AtomicBool>, samples: Arc<Mutex<Vec<Sample>>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let mut id: u16 = 1;
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            id = id.wrapping_add(1);
            if let Some((rcode, ips)) = ask(&sock, server, id) {
                samples.lock().unwrap().push(Sample { at: Instant::now(), rcode, ips });
            }
            next += EVERY;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            } else {
                next = Instant::now();
            }
        }
    })
}

fn outcome(samples: &[Sample], r: &Recreation) -> Outcome {
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at >= r.served && s.at < r.served + WATCH_AFTER).collect();
    let first_new = after.iter().position(|s| s.ips.contains(&r.new_ip));
    let seen_until = first_new.map_or(after.len(), |i| i);
    Outcome {
        delay: first_new.map(|i| after[i].at - r.served),
        negatives: after[..seen_until].iter().filter(|s| s.rcode != ResponseCode::NoError || s.ips.is_empty()).count(),
        old_ips: after.iter().filter(|s| s.ips.contains(&r.old_ip)).count(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e3)
}

/// Runs the recreations with the feature on or off; one table row per resolver.
async fn run(on: bool, recreations: usize) -> Vec<String> {
    let api = FakeApi::start().await;
    api.apply(service());
    api.apply(statefulset());
    let mut n = 1;
    api.apply(statefulset_pod("default", "web-0", "nginx", Some(&ip(n)), true));
    let args: &[&str] = if on { &["--ttl", "5"] } else { &["--ttl", "5", "--statefulsets=false"] };
    let server = tokio::task::block_in_place(|| {
        let s = ServerProcess::watching(&api, args, &[]);
        s.wait_for_log("first full sync complete", Duration::from_secs(20));
        s
    });
    let resolvers: Vec<Resolver> = RESOLVERS.iter().map(|k| Resolver::start(*k, server.dns)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Vec<Arc<Mutex<Vec<Sample>>>> = resolvers.iter().map(|_| Arc::default()).collect();
    let clients: Vec<_> =
        resolvers.iter().zip(&samples).map(|(r, s)| client(r.addr, stop.clone(), s.clone())).collect();
    // Warm up: every client has the current IP cached.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    probe.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let mut timeline = Vec::new();
    for k in 0..recreations {
        let old_ip = ip(n);
        n += 1;
        let new_ip = ip(n);
        let deleted = Instant::now();
        api.delete("Pod", "default", "web-0");
        api.apply(statefulset_pod("default", "web-0", "nginx", None, false));
        tokio::time::sleep(Duration::from_secs(1)).await;
        api.apply(statefulset_pod("default", "web-0", "nginx", Some(&new_ip), false));
        tokio::time::sleep(READY_AFTER.saturating_sub(deleted.elapsed())).await;
        api.apply(statefulset_pod("default", "web-0", "nginx", Some(&new_ip), true));
        // When headless-dns serves it (polled every millisecond, at most 5 s).
        let ready = Instant::now();
        let mut id: u16 = 0;
        let served = loop {
            id = id.wrapping_add(1);
            let got = ask(&probe, server.dns, id);
            if got.is_some_and(|(_, ips)| ips == [new_ip.clone()]) {
                break Instant::now();
            }
            assert!(ready.elapsed() < Duration::from_secs(5), "headless-dns did not serve {new_ip}");
            std::thread::sleep(Duration::from_millis(1));
        };
        eprintln!(
            "freshness ({}): recreation {}: new IP served {} ms after the Ready event",
            if on { "on" } else { "off" },
            k + 1,
            ms(served - ready)
        );
        timeline.push(Recreation { old_ip, new_ip, served });
        tokio::time::sleep(WATCH_AFTER).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let mut rows = Vec::new();
    for (r, s) in resolvers.iter().zip(&samples) {
        let s = s.lock().unwrap();
        let outcomes: Vec<Outcome> = timeline.iter().map(|rec| outcome(&s, rec)).collect();
        let mut delays: Vec<Duration> = outcomes.iter().filter_map(|o| o.delay).collect();
        delays.sort();
        let unseen = outcomes.iter().filter(|o| o.delay.is_none()).count();
        let p50 = delays.get(delays.len() / 2).copied().unwrap_or_default();
        let max = delays.last().copied().unwrap_or_default();
        let negatives: usize = outcomes.iter().map(|o| o.negatives).sum();
        let old: usize = outcomes.iter().map(|o| o.old_ips).sum();
        let per: Vec<String> = outcomes.iter().map(|o| o.delay.map_or("never".into(), ms)).collect();
        rows.push(format!(
            "| {} | {} | {} | {} | {} | {negatives} | {old} | {} |",
            if on { "on" } else { "off" },
            r.kind.name(),
            timeline.len(),
            ms(p50),
            if unseen > 0 { format!("{} ({unseen} never)", ms(max)) } else { ms(max) },
            per.join(", ")
        ));
    }
    rows
}

fn main() {
    let recreations: usize =
        std::env::var("FRESHNESS_RECREATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(5).clamp(1, 50);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut rows = Vec::new();
    for on in [true, false] {
        rows.extend(rt.block_on(run(on, recreations)));
    }
    let stamp = std::process::Command::new("date")
        .args(["-u", "+%Y%m%d-%H%M%S"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let version = |bin: &str, arg: &str| {
        let Some(path) = support::resolvers::find_binary_named(bin) else { return format!("{bin} (not found)") };
        std::process::Command::new(path)
            .arg(arg)
            .output()
            .map(|o| {
                let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
                String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_owned()
            })
            .unwrap_or_default()
    };
    let unbound = format!("unbound {}", version("unbound", "-V").trim_start_matches("Version "));
    let text = format!(
        "# Freshness through resolvers: {stamp}\n\n\
         headless-dns `--ttl 5` (`soa-minimum` 5), expected-name negatives on (`expected-negative-ttl` 0) and off \
         (`--statefulsets=false`). Resolvers: {}; {}; {} (with `cache.min_ttl(0)`). Each of {recreations} \
         recreations of `web-0`: delete, Pending, a new IP not Ready after 1 s, Ready {} s after the delete; one \
         client per resolver asking every {} ms. Delay: from headless-dns serving the new IP to the client's first \
         answer with it. Negatives: NXDOMAIN/NODATA answers the client got after the new IP was served. Old IPs: \
         answers with the replaced IP after the new one was served.\n\n\
         | expected negatives | resolver | recreations | delay p50 ms | delay max ms | negatives after served | old IPs after served | delay per recreation, ms |\n\
         |---|---|---|---|---|---|---|---|\n{}\n\n\
         Rerun: `cargo bench --bench freshness` (FRESHNESS_RECREATIONS, default 5).\n",
        unbound,
        version("named", "-v"),
        version("kresd", "--version"),
        READY_AFTER.as_secs(),
        EVERY.as_millis(),
        rows.join("\n")
    );
    println!("{text}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results");
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("freshness-{stamp}.md"));
    match std::fs::write(&file, &text) {
        Ok(()) => println!("wrote bench/results/freshness-{stamp}.md"),
        Err(e) => eprintln!("cannot write {}: {e}", file.display()),
    }
}
