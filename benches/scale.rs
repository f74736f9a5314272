//! Scale and propagation benchmark against the fake Kubernetes API server (real HTTP, list
//! paging, watch), with the release binary:
//!
//! 1. **Scale**: 150,000 StatefulSet pods (with the labels the StatefulSet controller writes) in
//!    10,000 headless Services (15 each) plus 10,000 ClusterIP Services: time from process start
//!    to the first full sync, RSS peak during the sync and at steady state. Every watch is on:
//!    the 100 Namespaces, 30 Nodes in 3 topology zones (each pod names its node, `--zonal`) and
//!    1,000 ServiceImports (`--multicluster-zone clusterset.local`); SCALE_PLAIN=1 leaves the
//!    zonal and multicluster options (and the Nodes and imports) out, to compare. Like every real
//!    cluster, it also holds the EndpointSlices the EndpointSlice controller writes for the
//!    headless Services (one per Service, with its 15 endpoints), which `pods` mode never reads.
//! 2. **Relist**: every watch is made to relist at once while serving (its watch connections
//!    dropped and history compacted, as an API server restart does: each watch resumes from a
//!    forgotten version, gets 410 and lists again, streamed or paged as the server allows): RSS
//!    peak during the relist against the steady RSS, wrong or missing answers for 300 unchanged
//!    names queried throughout, and the time from the relist's end to a recreated pod's new IP
//!    being answered. SCALE_STREAMING=0 runs the server with `--streaming-lists=false`.
//! 3. **Propagation**: StatefulSet-style recreations (DELETED, ADDED Pending, MODIFIED with the new
//!    IP, MODIFIED Ready): the time from the API server sending the Ready event to the new IP being
//!    answered over UDP (p50, p99, max), and whether any answer ever returned an IP older than one
//!    already served.
//!
//! Run: `cargo bench --bench scale` (sizes from SCALE_SERVICES, SCALE_PODS_PER_SERVICE,
//! SCALE_RECREATIONS; SCALE_SETTLE_SECS, default 15, between the sync and the steady-state RSS).
//! Loopback only; every loop is bounded.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;
use support::bench::{RssSampler, env, ip_of, percentile};
use support::dns::{addresses, query, udp_message};
use support::fake_api::FakeApi;
use support::server::ServerProcess;

use support::objects::statefulset_pod as pod;

fn main() {
    let services = env("SCALE_SERVICES", 10_000);
    let per_service = env("SCALE_PODS_PER_SERVICE", 15);
    let recreations = env("SCALE_RECREATIONS", 1_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run(services, per_service, recreations));
}

async fn run(services: usize, per_service: usize, recreations: usize) {
    let api = FakeApi::start().await;
    let build = Instant::now();
    let plain = env("SCALE_PLAIN", 0) != 0;
    let mut next_ip: u32 = 1;
    for n in 0..100 {
        api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{n}")}}));
    }
    if !plain {
        for n in 0..30 {
            api.apply(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{n}"),
                "labels": {"topology.kubernetes.io/zone": format!("zone-{}", n % 3)}}}));
        }
        for s in 0..1_000u32 {
            api.apply(json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
                "metadata": {"name": format!("cs-{s}"), "namespace": format!("ns-{}", s % 100)},
                "spec": {"type": "ClusterSetIP", "ips": [ip_of(0x00e0_0000 + s)],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}}));
        }
    }
    for s in 0..services {
        let ns = format!("ns-{}", s % 100);
        let svc = format!("hs-{s}");
        api.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": svc, "namespace": ns},
            "spec": {"clusterIP": "None", "selector": {"app": svc}, "ports": [{"name": "web", "port": 80}]}}));
        let first_ip = next_ip;
        for p in 0..per_service {
            let mut pod = pod(&ns, &format!("{svc}-{p}"), &svc, Some(&ip_of(next_ip)), true);
            if !plain {
                pod["spec"]["nodeName"] = json!(format!("node-{}", next_ip % 30));
            }
            api.apply(pod);
            next_ip += 1;
        }
        let endpoints: Vec<serde_json::Value> = (0..per_service)
            .map(|p| {
                json!({"addresses": [ip_of(first_ip + p as u32)], "conditions": {"ready": true},
                "hostname": format!("{svc}-{p}"), "nodeName": format!("node-{}", (first_ip + p as u32) % 30),
                "targetRef": {"kind": "Pod", "namespace": ns, "name": format!("{svc}-{p}")}})
            })
            .collect();
        api.apply(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{svc}-x7k2q"), "namespace": ns, "labels": {
                "kubernetes.io/service-name": svc, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4", "ports": [{"name": "web", "port": 80, "protocol": "TCP"}], "endpoints": endpoints}));
        api.apply(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("cs-{s}"), "namespace": ns},
            "spec": {"clusterIP": ip_of(0x00f0_0000 + s as u32), "selector": {"app": format!("c-{s}")},
            "ports": [{"name": "http", "port": 8080}]}}),
        );
    }
    api.compact();
    println!(
        "fake API holds {} headless services x {per_service} pods + {services} ClusterIP services + the controller's {services} EndpointSlices (built in {:.1} s)",
        services,
        build.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let server = tokio::task::block_in_place(|| {
        let mut args = vec!["--udp-workers", "1"];
        if env("SCALE_STREAMING", 1) == 0 {
            args.push("--streaming-lists=false");
        }
        if !plain {
            args.extend(["--zonal", "--multicluster-zone", "clusterset.local"]);
        }
        ServerProcess::watching(&api, &args, &[("RUST_LOG", "info,hickory_server=warn")])
    });
    let sampler = RssSampler::start(server.pid());
    tokio::task::block_in_place(|| server.wait_for_log("first full sync complete", Duration::from_secs(300)));
    let sync = started.elapsed();
    let peak_kib = sampler.stop().max(server.rss_kib());
    // Steady state: once the sync's transient buffers have been freed and returned to the system
    // (jemalloc's background thread returns freed pages over its 10 s decay time).
    tokio::time::sleep(Duration::from_secs(env("SCALE_SETTLE_SECS", 15) as u64)).await;
    let steady_kib = server.rss_kib();
    println!("scale: start to first full sync {:.2} s", sync.as_secs_f64());
    println!(
        "scale: RSS peak during sync {:.1} MiB, steady {:.1} MiB",
        peak_kib as f64 / 1024.0,
        steady_kib as f64 / 1024.0
    );
    let (_, metrics) = tokio::task::block_in_place(|| server.http_get("/metrics"));
    for line in metrics.lines().filter(|l| l.starts_with("headless_dns_index_names")) {
        println!("scale: {line}");
    }
    if !plain {
        // The new watches serve what they hold: an import's ClusterSetIP and a pinned zone.
        let (m, _) = udp_message(server.dns, &query("cs-5.ns-5.svc.clusterset.local.", RecordType::A, None)).await;
        assert_eq!(addresses(&m), vec![ip_of(0x00e0_0005)], "multicluster answer");
        let (m, _) =
            udp_message(server.dns, &query("zone-0.pin._zone.hs-0.ns-0.svc.cluster.local.", RecordType::A, None)).await;
        assert!(!addresses(&m).is_empty(), "zonal answer: {m:?}");
        println!("scale: multicluster and zonal answers served");
    }

    relist(&api, &server, services, per_service, steady_kib, &mut next_ip).await;
    propagation(&api, server.dns, services, recreations, &mut next_ip).await;
}

/// The kinds the server watches, by their metrics name, and how many lists each has completed.
fn lists_done(server: &ServerProcess) -> Vec<(String, f64)> {
    let (_, text) = server.http_get("/metrics");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("headless_dns_watch_events_total{kind=\"")?;
            let (kind, rest) = rest.split_once("\",event=\"list\"} ")?;
            Some((kind.to_owned(), rest.trim().parse().ok()?))
        })
        .collect()
}

/// Forces a relist of every kind while serving (see the module header) and reports RSS, answer
/// gaps for unchanged names and the first propagation after it.
async fn relist(
    api: &FakeApi,
    server: &ServerProcess,
    services: usize,
    per_service: usize,
    steady_kib: u64,
    next_ip: &mut u32,
) {
    // 300 names no recreation touches (recreations take services from 0 up), with their IPs as
    // built: pod p of service s has address 1 + s * per_service + p.
    let probes: Vec<(String, String)> = (0..300)
        .map(|i| {
            let s = services - 1 - (i % services.min(100));
            let p = (i / 100) % per_service;
            let ip = ip_of((1 + s * per_service + p) as u32);
            (format!("hs-{s}-{p}.hs-{s}.ns-{}.svc.cluster.local.", s % 100), ip)
        })
        .collect();
    for (name, ip) in &probes {
        let (m, _) = udp_message(server.dns, &query(name, RecordType::A, None)).await;
        assert_eq!(addresses(&m), vec![ip.clone()], "{name} before the relist");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (stop, dns) = (stop.clone(), server.dns);
        tokio::spawn(async move {
            let (mut asked, mut wrong) = (0usize, 0usize);
            while !stop.load(Ordering::Acquire) {
                let (name, ip) = &probes[asked % probes.len()];
                let (m, _) = udp_message(dns, &query(name, RecordType::A, None)).await;
                if addresses(&m) != [ip.clone()] {
                    wrong += 1;
                }
                asked += 1;
            }
            (asked, wrong)
        })
    };
    let before = tokio::task::block_in_place(|| lists_done(server));
    let sampler = RssSampler::start(server.pid());
    let started = Instant::now();
    // Every watch's last version must be older than the compaction: the watches are held off
    // (500s) while a change moves the version on and history is forgotten, as across an API
    // server restart.
    api.fail_requests(Some(500));
    api.disconnect_watches();
    api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "relist-marker"}}));
    api.compact();
    api.fail_requests(None);
    let deadline = started + Duration::from_secs(300);
    loop {
        let now = tokio::task::block_in_place(|| lists_done(server));
        let done = before.iter().all(|(kind, n)| now.iter().any(|(k, m)| k == kind && m > n));
        if done || Instant::now() > deadline {
            assert!(done, "every kind relisted within 300 s: {before:?} -> {now:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    let peak_kib = sampler.stop();
    stop.store(true, Ordering::Release);
    let (asked, wrong) = prober.await.expect("prober");
    println!(
        "relist of every kind ({} kinds) while serving: {:.2} s; RSS peak {:.1} MiB = {:.2}x steady {:.1} MiB; \
         unchanged names asked {asked} times during it, wrong or missing answers: {wrong}",
        before.len(),
        took.as_secs_f64(),
        peak_kib as f64 / 1024.0,
        peak_kib as f64 / steady_kib as f64,
        steady_kib as f64 / 1024.0,
    );
    // Propagation right after: a pod recreated the moment the relist ended.
    let (ns, svc) = ("ns-0", "hs-0");
    let name = format!("{svc}-1");
    let new_ip = ip_of(*next_ip);
    *next_ip += 1;
    let sent = Instant::now();
    api.apply(pod(ns, &name, svc, Some(&new_ip), true));
    let qname = format!("{name}.{svc}.{ns}.svc.cluster.local.");
    loop {
        let (m, _) = udp_message(server.dns, &query(&qname, RecordType::A, None)).await;
        if addresses(&m) == [new_ip.clone()] {
            break;
        }
        assert!(sent.elapsed() < Duration::from_secs(10), "a change after the relist was never served");
    }
    println!(
        "relist: the first change after it was answered {:.3} ms after the API sent it",
        sent.elapsed().as_secs_f64() * 1000.0
    );
}

async fn propagation(api: &FakeApi, dns: SocketAddr, services: usize, recreations: usize, next_ip: &mut u32) {
    let mut latencies = Vec::with_capacity(recreations);
    let mut stale_answers = 0usize;
    let mut old_before_delete_applied = 0usize;
    let mut timeouts = 0usize;
    for i in 0..recreations {
        let s = i % services;
        let ns = format!("ns-{}", s % 100);
        let svc = format!("hs-{s}");
        let name = format!("{svc}-0");
        let qname = format!("{name}.{svc}.{ns}.svc.cluster.local.");
        let old = api.get("Pod", &ns, &name).and_then(|p| p["status"]["podIP"].as_str().map(str::to_owned));
        let new_ip = ip_of(*next_ip);
        *next_ip += 1;
        api.delete("Pod", &ns, &name);
        api.apply(pod(&ns, &name, &svc, None, false));
        api.apply(pod(&ns, &name, &svc, Some(&new_ip), false));
        let sent = Instant::now();
        api.apply(pod(&ns, &name, &svc, Some(&new_ip), true));
        let deadline = sent + Duration::from_secs(5);
        loop {
            let (m, _) = udp_message(dns, &query(&qname, RecordType::A, None)).await;
            let got = addresses(&m);
            if got == [new_ip.clone()] {
                latencies.push(sent.elapsed());
                break;
            }
            if m.metadata.response_code == ResponseCode::NoError && old.as_ref().is_some_and(|o| got.contains(o)) {
                // The DELETED event itself had not been applied yet when this query was answered.
                old_before_delete_applied += 1;
            }
            if Instant::now() > deadline {
                timeouts += 1;
                break;
            }
        }
        // Once the new IP is served, it is served from then on.
        for _ in 0..3 {
            let (m, _) = udp_message(dns, &query(&qname, RecordType::A, None)).await;
            if addresses(&m) != [new_ip.clone()] {
                stale_answers += 1;
            }
        }
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "propagation over {} recreations: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; answers older than one already served: {stale_answers}; not seen within 5 s: {timeouts}; \
         old IP answered while its DELETED event was still in flight: {old_before_delete_applied}",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
}
