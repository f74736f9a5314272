//! How the UDP answer path scales with threads: each thread does what a UDP worker does per
//! datagram ([`server::answer_datagram`] and its [`server::UdpRecorder`]), without the socket, on
//! one shared 10,000-pod index, and the CPU time per answer is compared between 1 thread and
//! more. The kernel's share of a real query (the socket, the loopback) is left out on purpose:
//! this isolates what the workers share in user space (the index's map, reference counts,
//! metrics), where cache lines bouncing between cores would show as a cost per answer that grows
//! with the thread count.
//!
//! Run: `cargo bench --bench cores`. Environment: `CORES_THREADS` (comma-separated counts,
//! default `1,2`, each capped at the CPUs present), `CORES_QUERIES` (answers per thread per run,
//! default 2,000,000), `CORES_REPS` (runs per count; the quickest is kept, as other tenants of the
//! machine only ever add time, default 5), `CORES_MIXES` (default `pods,nx20,svc10,resolver,expected`).
//!
//! Each thread's CPU time is read from `/proc/thread-self/schedstat` (nanoseconds on the CPU), so
//! a thread that waits for a CPU is not charged for it; the machine should be otherwise idle.

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};

use headless_dns::dns::answer::Zones;
use headless_dns::dns::general::Responder;
use headless_dns::dns::server::{self, UdpRecorder};

#[path = "../tests/support/mod.rs"]
mod support;
use support::bench::{env, query_as, zones};

/// Nanoseconds this thread has run on a CPU.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("/proc/thread-self/schedstat (Linux with schedstats)")
}

/// A deterministic stream of numbers (xorshift64), so every run asks the same names.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The mixes of `bench/run.sh`, on this zone: `pods` (pod names, all hits), `nx20` (80% pod
/// names, 20% NXDOMAIN: half unknown ordinals, half search-path junk), `svc10` (service names,
/// 10 addresses each), `resolver` (nx20 with the DO bit and a client COOKIE); and `expected`
/// (not a harness mix): names StatefulSets expect and whose pods are missing, every answer an
/// NXDOMAIN with `expected-negative-ttl`, as clients see while a pod is recreated.
fn mix(name: &str, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed | 1);
    (0..4096)
        .map(|_| {
            let (s, p) = (rng.below(1000), rng.below(10));
            let nx = matches!(name, "nx20" | "resolver") && rng.below(5) == 0;
            let q = match (name, nx) {
                ("svc10", _) => format!("svc-{s}.default.svc.cluster.local."),
                ("expected", _) => format!("db-{s}-{p}.svc-{s}.default.svc.cluster.local."),
                (_, true) if rng.below(2) == 0 => format!("web-{}.svc-{s}.default.svc.cluster.local.", 10 + p),
                (_, true) => format!("web-{p}.svc-{s}.default.svc.cluster.local.default.svc.cluster.local."),
                _ => format!("web-{p}.svc-{s}.default.svc.cluster.local."),
            };
            query_as(&q, name == "resolver")
        })
        .collect()
}

/// One run: `threads` threads answering `count` queries each from `queries`; the mean CPU
/// nanoseconds per answer over the threads.
fn run(responder: &Arc<Responder>, queries: &Arc<Vec<Vec<u8>>>, threads: usize, count: usize) -> f64 {
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (responder, queries, start) = (responder.clone(), queries.clone(), start.clone());
            std::thread::spawn(move || {
                let src: SocketAddr = format!("127.0.0.{}:{}", t + 1, 40000 + t).parse().unwrap();
                let mut out = Vec::with_capacity(1232);
                let mut recorder = UdpRecorder::new();
                let mut answered = 0usize;
                start.wait();
                let before = thread_cpu_ns();
                // Each thread starts at its own offset, as workers see different traffic.
                for i in 0..count {
                    let raw = &queries[(i + t * 997) % queries.len()];
                    let began = recorder.start();
                    if let Some((rcode, qtype)) = server::answer_datagram(&responder, raw, src, &mut out) {
                        recorder.record(qtype, rcode, began);
                        answered += 1;
                    }
                }
                let spent = thread_cpu_ns() - before;
                assert_eq!(answered, count, "every query is answered");
                spent as f64 / count as f64
            })
        })
        .collect();
    let per: Vec<f64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    per.iter().sum::<f64>() / per.len() as f64
}

fn main() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let counts: Vec<usize> = std::env::var("CORES_THREADS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .map(|c: usize| c.clamp(1, cpus))
        .collect();
    let (count, reps) = (env("CORES_QUERIES", 2_000_000), env("CORES_REPS", 5).max(1));
    let zones: Zones = zones();
    let responder = Arc::new(Responder::new(zones));
    println!("cores: {count} answers per thread per run, the quickest of {reps} runs, {cpus} CPUs present");
    println!("| mix | threads | CPU ns/answer | x 1 thread |");
    println!("|---|---|---|---|");
    let mixes = std::env::var("CORES_MIXES").unwrap_or_else(|_| "pods,nx20,svc10,resolver,expected".into());
    for name in mixes.split(',').map(str::trim) {
        let queries = Arc::new(mix(name, 0x9e37_79b9_7f4a_7c15));
        // The counts take turns, run by run, so that a slow spell of the machine falls on all
        // of them alike.
        let mut best = vec![f64::INFINITY; counts.len()];
        for _ in 0..reps {
            for (i, &threads) in counts.iter().enumerate() {
                best[i] = best[i].min(run(&responder, &queries, threads, count));
            }
        }
        for (&threads, &ns) in counts.iter().zip(&best) {
            println!("| {name} | {threads} | {ns:.0} | {:.2} |", ns / best[0]);
        }
    }
}
