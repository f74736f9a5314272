//! Event-throughput benchmark: how many Pod events per second the server absorbs, how fast a
//! recreation propagates under background churn, and what a replica costs the API server.
//!
//! The fake Kubernetes API server (real HTTP watch) holds 1,000 headless Services of 10
//! StatefulSet pods (10,000 pods; EVENTS_SERVICES and EVENTS_PODS_PER_SERVICE change it). The
//! release binary watches it, pinned to CPU 1 with every thread (`taskset`), while this process
//! (the API server and the event source) runs on CPU 0. Events cycle over the pods: a Ready flip,
//! an IP change, a label change.
//!
//! 1. **Absorption**: 5 s at 5,000 and 10,000 events/s, each ended by a marker pod's IP change
//!    whose answer over DNS shows every event before it was reconciled and published (the watch
//!    stream is ordered); then the peak rate, on a backlog of 200,000 events (EVENTS_BACKLOG) that
//!    the watch reads at once after a partition: events / (first to last applied, from the
//!    server's `watch_events_total`).
//! 2. **Propagation under churn**: at 1,000 and 5,000 events/s of background churn, 200 pods of
//!    another Service are recreated in turn: API sends the Ready event -> new IP answered over
//!    UDP (p50, p99).
//! 3. **API-side cost per replica**: requests and octets the API server sent during 30 s of churn
//!    at 1,000 events/s (scaled to 10 minutes), and for a relist of every kind.
//!
//! Run: `cargo bench --bench events`. Loopback only; every loop is bounded in count and time.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::json;
use support::bench::{env, ip_of, percentile};
use support::dns::{addresses, query, udp_message};
use support::fake_api::FakeApi;
use support::objects::statefulset_pod as pod;
use support::server::ServerProcess;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Pins every thread of `pid` to `cpu`; false when `taskset` is missing or refuses.
fn pin(pid: u32, cpu: usize) -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run());
}

/// The churned pods and what each looks like now.
struct Churn {
    services: usize,
    per_service: usize,
    /// Per pod: ready, its IP, its label generation.
    pods: Vec<(bool, u32, u32)>,
    next: usize,
    next_ip: u32,
}

impl Churn {
    /// The next event: pod `next` (round robin) flips Ready, changes IP or changes a label.
    fn event(&mut self, api: &FakeApi) {
        let i = self.next % self.pods.len();
        let kind = (self.next / self.pods.len() + i) % 3;
        self.next += 1;
        let (s, p) = (i / self.per_service, i % self.per_service);
        let (ns, svc) = (format!("ns-{}", s % 10), format!("hs-{s}"));
        let state = &mut self.pods[i];
        match kind {
            0 => state.0 = !state.0,
            1 => {
                state.1 = self.next_ip;
                self.next_ip += 1;
            }
            _ => state.2 += 1,
        }
        let mut obj = pod(&ns, &format!("{svc}-{p}"), &svc, Some(&ip_of(state.1)), state.0);
        obj["metadata"]["labels"]["churn"] = json!(state.2.to_string());
        api.apply(obj);
        let _ = self.services;
    }
}

async fn served(dns: SocketAddr, name: &str, ip: &str, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        let (m, _) = udp_message(dns, &query(name, RecordType::A, None)).await;
        if addresses(&m) == [ip.to_owned()] {
            return Some(start.elapsed());
        }
    }
    None
}

async fn run() {
    let services = env("EVENTS_SERVICES", 1_000);
    let per_service = env("EVENTS_PODS_PER_SERVICE", 10);
    let api = Arc::new(FakeApi::start().await);
    let mut next_ip: u32 = 1;
    for n in 0..10 {
        api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{n}")}}));
    }
    let mut pods = Vec::with_capacity(services * per_service);
    for s in 0..services {
        let (ns, svc) = (format!("ns-{}", s % 10), format!("hs-{s}"));
        api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": svc, "namespace": ns},
            "spec": {"clusterIP": "None", "selector": {"app": svc}, "ports": [{"name": "web", "port": 80}]}}));
        for p in 0..per_service {
            api.apply(pod(&ns, &format!("{svc}-{p}"), &svc, Some(&ip_of(next_ip)), true));
            pods.push((true, next_ip, 0));
            next_ip += 1;
        }
    }
    // The probe Service: its pods are recreated to measure propagation; never churned.
    api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "probe", "namespace": "ns-0"},
        "spec": {"clusterIP": "None", "selector": {"app": "probe"}, "ports": [{"name": "web", "port": 80}]}}));
    for p in 0..20 {
        api.apply(pod("ns-0", &format!("probe-{p}"), "probe", Some(&ip_of(next_ip)), true));
        next_ip += 1;
    }
    let server = tokio::task::block_in_place(|| {
        ServerProcess::watching(&api, &["--udp-workers", "1"], &[("RUST_LOG", "info,hickory_server=warn")])
    });
    tokio::task::block_in_place(|| server.wait_for_log("first full sync complete", Duration::from_secs(120)));
    let pinned = pin(server.pid(), 1) && pin(std::process::id(), 0);
    println!(
        "events: {} pods in {services} headless Services; server on CPU 1, API and event source on CPU 0: {}",
        services * per_service,
        if pinned { "pinned" } else { "NOT pinned (taskset failed): figures are for 2 shared cores" }
    );
    let mut churn = Churn { services, per_service, pods, next: 0, next_ip: 0x0040_0000 };
    let mut probe_ip = 0x0060_0000u32;
    let marker = |api: &FakeApi, probe_ip: &mut u32| {
        *probe_ip += 1;
        let ip = ip_of(*probe_ip);
        api.apply(pod("ns-0", "probe-0", "probe", Some(&ip), true));
        ip
    };
    let dns = server.dns;
    let marker_name = "probe-0.probe.ns-0.svc.cluster.local.";

    // 1. Absorption: paced rates this process can generate, then a backlog.
    for offered in [5_000usize, 10_000] {
        let total = offered * 5;
        let start = Instant::now();
        let mut sent = 0usize;
        while sent < total && start.elapsed() < Duration::from_secs(30) {
            let due = (start.elapsed().as_secs_f64() * offered as f64) as usize + 1;
            while sent < due.min(total) {
                churn.event(&api);
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let send_time = start.elapsed();
        let ip = marker(&api, &mut probe_ip);
        let Some(after) = served(dns, marker_name, &ip, Duration::from_secs(60)).await else {
            println!("absorption: offered {offered}/s: not drained within 60 s");
            continue;
        };
        println!(
            "absorption: offered {offered}/s: {sent} events in {:.2} s, the last one served {:.1} ms after it was sent: kept up",
            send_time.as_secs_f64(),
            ms(after)
        );
    }
    // This process cannot generate events as fast as the server takes them (about 15,000/s with
    // the API server on the same core), so the peak rate is measured on a backlog: the watch is
    // frozen (a partition) while 200,000 events go into the API's history, then it resumes from
    // its version and the history streams as fast as the server reads it.
    let applied = |server: &ServerProcess| {
        server.metric("headless_dns_watch_events_total{kind=\"pods\",event=\"apply\"}").unwrap_or(0.0) as usize
    };
    let backlog = env("EVENTS_BACKLOG", 200_000);
    let before = tokio::task::block_in_place(|| applied(&server));
    api.set_partitioned(true);
    for _ in 0..backlog {
        churn.event(&api);
    }
    let ip = marker(&api, &mut probe_ip);
    api.set_partitioned(false);
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut first, mut last, mut seen) = (None, Instant::now(), before);
    while seen < before + backlog + 1 && Instant::now() < deadline {
        let now = tokio::task::block_in_place(|| applied(&server));
        if now > seen {
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
            seen = now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let served_marker = served(dns, marker_name, &ip, Duration::from_secs(10)).await.is_some();
    match first {
        Some(first) if seen > before + backlog => {
            let took = last.duration_since(first);
            println!(
                "absorption: a backlog of {backlog} pod events read, reconciled and published in {:.2} s: {:.0} events/s on one core (marker served: {served_marker})",
                took.as_secs_f64(),
                backlog as f64 / took.as_secs_f64()
            );
        }
        _ => println!("absorption: the backlog was not absorbed within 120 s ({} of {backlog})", seen - before),
    }

    // 2. Propagation under churn.
    let churn = Arc::new(std::sync::Mutex::new(churn));
    for rate in [1_000usize, 5_000] {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let background = {
            let (api, churn, stop, sent) = (api.clone(), churn.clone(), stop.clone(), sent.clone());
            tokio::spawn(async move {
                let start = Instant::now();
                while !stop.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(120) {
                    let due = (start.elapsed().as_secs_f64() * rate as f64) as usize;
                    {
                        let mut c = churn.lock().unwrap_or_else(|e| e.into_inner());
                        while sent.load(Ordering::Relaxed) < due {
                            c.event(&api);
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let started = Instant::now();
        let mut latencies = Vec::new();
        let mut missed = 0;
        for i in 0..200 {
            let name = format!("probe-{}", 1 + i % 19);
            probe_ip += 1;
            let ip = ip_of(probe_ip);
            api.apply(pod("ns-0", &name, "probe", Some(&ip), false));
            let sent_at = Instant::now();
            api.apply(pod("ns-0", &name, "probe", Some(&ip), true));
            match served(dns, &format!("{name}.probe.ns-0.svc.cluster.local."), &ip, Duration::from_secs(5)).await {
                Some(_) => latencies.push(sent_at.elapsed()),
                None => missed += 1,
            }
        }
        let churned = sent.load(Ordering::Relaxed) as f64 / (started.elapsed().as_secs_f64() + 1.0);
        stop.store(true, Ordering::Release);
        let _ = background.await;
        latencies.sort();
        println!(
            "propagation under {rate} events/s of churn ({churned:.0}/s achieved): 200 recreations, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, not seen within 5 s: {missed}",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            ms(latencies.last().copied().unwrap_or_default()),
        );
    }

    // 3. API-side cost per replica.
    let (req0, bytes0) = api.traffic();
    let start = Instant::now();
    let mut sent = 0usize;
    while start.elapsed() < Duration::from_secs(30) {
        let due = (start.elapsed().as_secs_f64() * 1_000.0) as usize;
        {
            let mut c = churn.lock().unwrap_or_else(|e| e.into_inner());
            while sent < due {
                c.event(&api);
                sent += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (req1, bytes1) = api.traffic();
    let scale = 600.0 / start.elapsed().as_secs_f64();
    println!(
        "API cost of churn at 1,000 events/s: {sent} events in 30 s: {} requests (the watches stay open; kube renews each one every 290 s, \
         so about 2 requests per watched kind per 10 minutes) and {:.1} MiB sent, {} octets per event: {:.0} MiB per 10 minutes",
        req1 - req0,
        (bytes1 - bytes0) as f64 / 1048576.0,
        (bytes1 - bytes0) / sent.max(1) as u64,
        (bytes1 - bytes0) as f64 / 1048576.0 * scale,
    );
    // A relist of every kind: watches held off while history moves on and is compacted.
    let (req0, bytes0) = api.traffic();
    api.fail_requests(Some(500));
    api.disconnect_watches();
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "relist-marker"}}));
    api.compact();
    let (req_fail, _) = api.traffic();
    api.fail_requests(None);
    let ip = marker(&api, &mut probe_ip);
    let _ = served(dns, marker_name, &ip, Duration::from_secs(60)).await;
    // Lists of other kinds may still be streaming: let them finish.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (req1, bytes1) = api.traffic();
    println!(
        "API cost of a relist of every kind: {} requests ({} refused while held off), {:.1} MiB",
        req1 - req0,
        req_fail - req0,
        (bytes1 - bytes0) as f64 / 1048576.0
    );
}
