//! Zone transfers at scale, with Knot DNS and BIND as real secondaries of headless-dns.
//!
//! The fake Kubernetes API holds `TRANSFER_SERVICES` (default 20,000) headless Services and
//! `TRANSFER_PODS` (default 150,000) Ready pods spread over them. headless-dns watches it with
//! transfers allowed from loopback and NOTIFY to both secondaries. Reported:
//! - **AXFR** of `cluster.local` (a client on loopback reading every message): records, octets,
//!   messages, time, and the RSS the server added meanwhile; and the same AXFR from Knot, which
//!   then holds the same zone, as the peer in the same run;
//! - **freshness**: over `TRANSFER_RECREATIONS` (default 100) pod recreations through the API,
//!   from the Ready event to each secondary answering the new IP (p50, p99), polled every 2 ms;
//! - **octets on the wire** for one pod's change (the IXFR) against the whole zone;
//! - **churn**: `TRANSFER_CHURN_RATE` pod changes a second (default 200) for
//!   `TRANSFER_CHURN_SECS` (default 60): serials published, NOTIFY sent and acknowledged, the
//!   journal's largest size (entries, octets) against its bounds, and whether each secondary
//!   ends with exactly our zone (every record compared).
//!
//! Run: `cargo bench --bench transfer`. Needs `knotd` and `named` (`bash .ci/run` installs
//! them). Loopback only; every loop is bounded in count and time.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::json;
use support::bench::{RssSampler, env, ip_of, percentile};
use support::dns::{addresses, query, udp_message};
use support::fake_api::FakeApi;
use support::objects::statefulset_pod as pod;
use support::secondaries::{Kind, Primary, Secondary};
use support::server::{ServerProcess, metric_in};

const ZONE: &str = "cluster.local.";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(run());
}

/// What one transfer brought.
struct Transferred {
    records: Vec<Record>,
    octets: usize,
    messages: usize,
    took: Duration,
}

/// A transfer of `zone` from `server` over TCP (AXFR, or IXFR from `serial`), read to its last
/// message (the SOA that closes it).
fn transfer(server: SocketAddr, zone: &str, ixfr_from: Option<u32>) -> Transferred {
    let name = Name::from_ascii(zone).unwrap();
    let mut q = Message::query();
    q.metadata.id = 0x5151;
    q.add_query(Query::query(name.clone(), if ixfr_from.is_some() { RecordType::IXFR } else { RecordType::AXFR }));
    if let Some(serial) = ixfr_from {
        q.add_authority(Record::from_rdata(
            name.clone(),
            0,
            RData::SOA(SOA::new(name.clone(), name, serial, 0, 0, 0, 0)),
        ));
    }
    let start = Instant::now();
    let mut stream = TcpStream::connect(server).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let bytes = q.to_vec().unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).unwrap();
    let (mut records, mut octets, mut messages, mut soas) = (Vec::new(), 0, 0, 0);
    let mut first_serial = None;
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).unwrap();
        octets += buf.len() + 2;
        messages += 1;
        let m = Message::from_vec(&buf).unwrap();
        for r in m.answers {
            if let RData::SOA(soa) = &r.data {
                soas += 1;
                match first_serial {
                    None => first_serial = Some(soa.serial),
                    // The transfer ends with the SOA it began with (after at least one other record).
                    Some(s) if s == soa.serial && records.len() > 1 => {
                        records.push(r);
                        return Transferred { records, octets, messages, took: start.elapsed() };
                    }
                    _ => {}
                }
            }
            records.push(r);
        }
        if soas == 1 && records.len() == 1 && ixfr_from.is_some() && messages == 1 {
            // Up to date: the SOA alone.
            return Transferred { records, octets, messages, took: start.elapsed() };
        }
    }
}

/// The zone's records as comparable lines (one SOA; the closing copy left out).
fn lines(records: &[Record]) -> BTreeSet<String> {
    records.iter().map(|r| r.to_string().to_ascii_lowercase()).collect()
}

fn serial_of(server: SocketAddr) -> Option<u32> {
    let m = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(udp_message(server, &query(ZONE, RecordType::SOA, None)))
    })
    .0;
    m.answers.iter().find_map(|r| match &r.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

fn metric(server: &ServerProcess, series: &str) -> f64 {
    metric_in(&server.http_get("/metrics").1, series).unwrap_or(0.0)
}

async fn run() {
    let services = env("TRANSFER_SERVICES", 20_000);
    let pods = env("TRANSFER_PODS", 150_000);
    let recreations = env("TRANSFER_RECREATIONS", 100);
    let churn_rate = env("TRANSFER_CHURN_RATE", 200);
    let churn_secs = env("TRANSFER_CHURN_SECS", 60);
    let api = FakeApi::start().await;
    let build = Instant::now();
    for n in 0..100 {
        api.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{n}")}}));
    }
    for s in 0..services {
        api.apply(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("hs-{s}"), "namespace": format!("ns-{}", s % 100)},
            "spec": {"clusterIP": "None", "selector": {"app": format!("hs-{s}")}, "ports": [{"name": "web", "port": 80}]}}));
    }
    let placement = |p: usize| {
        let s = p % services;
        (format!("ns-{}", s % 100), format!("hs-{s}"), format!("hs-{s}-{}", p / services))
    };
    for p in 0..pods {
        let (ns, svc, name) = placement(p);
        api.apply(pod(&ns, &name, &svc, Some(&ip_of(p as u32 + 1)), true));
    }
    api.compact();
    println!("fake API: {services} headless services, {pods} pods (built in {:.1} s)", build.elapsed().as_secs_f64());

    // The secondaries first (they retry until the primary answers); then the primary, with
    // NOTIFY to both.
    let port = support::resolvers::free_port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let primary = Primary { addr, source: Ipv4Addr::LOCALHOST, key: None };
    let knot = Secondary::start(Kind::Knot, &primary, &[ZONE]);
    let bind = Secondary::start(Kind::Bind, &primary, &[ZONE]);
    let listen = format!("127.0.0.1:{port}");
    let (n1, n2) = (knot.addr.to_string(), bind.addr.to_string());
    let server = tokio::task::block_in_place(|| {
        ServerProcess::watching(
            &api,
            &[
                "--udp-workers",
                "1",
                "--listen",
                &listen,
                "--allow-transfer",
                "127.0.0.1",
                "--notify",
                &n1,
                "--notify",
                &n2,
            ],
            &[("RUST_LOG", "info,hickory_server=warn")],
        )
    });
    tokio::task::block_in_place(|| server.wait_for_log("first full sync complete", Duration::from_secs(300)));
    let wait = |what: &str, limit: Duration, mut check: Box<dyn FnMut() -> bool + '_>| {
        let start = Instant::now();
        while !check() {
            assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        start.elapsed()
    };
    let ours = tokio::task::block_in_place(|| {
        wait(
            "the first serial",
            Duration::from_secs(60),
            Box::new(|| metric(&server, "headless_dns_zone_serial{zone=\"cluster.local.\"}") > 0.0),
        );
        serial_of(addr).unwrap()
    });
    for s in [&knot, &bind] {
        let took = tokio::task::block_in_place(|| {
            wait(
                &format!("{:?} loads the zone", s.kind),
                Duration::from_secs(300),
                Box::new(|| serial_of(s.addr) == Some(ours)),
            )
        });
        println!("{:?} loaded the zone {:.2} s after its NOTIFY", s.kind, took.as_secs_f64());
    }
    tokio::time::sleep(Duration::from_secs(12)).await; // settle (jemalloc returns freed pages)

    // AXFR: ours, with the RSS it adds, then Knot's of the same zone.
    let rss_before = server.rss_kib();
    let sampler = RssSampler::start(server.pid());
    let mut mine = tokio::task::block_in_place(|| transfer(addr, ZONE, None));
    let peak = sampler.stop();
    let mut theirs = tokio::task::block_in_place(|| transfer(knot.addr, ZONE, None));
    let same = lines(&mine.records) == lines(&theirs.records);
    // Times: the median of three each, alternating (one transfer's time is noisy).
    let (mut ours_ms, mut knots_ms) = (vec![mine.took], vec![theirs.took]);
    for _ in 0..2 {
        ours_ms.push(tokio::task::block_in_place(|| transfer(addr, ZONE, None)).took);
        knots_ms.push(tokio::task::block_in_place(|| transfer(knot.addr, ZONE, None)).took);
    }
    ours_ms.sort();
    knots_ms.sort();
    (mine.took, theirs.took) = (ours_ms[1], knots_ms[1]);
    println!(
        "AXFR of {ZONE}: headless-dns {} records, {} octets in {} messages, {:.0} ms (median of 3), RSS +{:.1} MiB (from {:.1} MiB); \
         Knot (serving the copy it took from us) {} records, {} octets in {} messages, {:.0} ms; time ratio {:.2}x; same zone: {same}",
        mine.records.len(),
        mine.octets,
        mine.messages,
        mine.took.as_secs_f64() * 1000.0,
        peak.saturating_sub(rss_before) as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        theirs.records.len(),
        theirs.octets,
        theirs.messages,
        theirs.took.as_secs_f64() * 1000.0,
        mine.took.as_secs_f64() / theirs.took.as_secs_f64()
    );

    // One pod's change: the IXFR's octets against the whole zone's.
    let before = serial_of(addr).unwrap();
    let (ns, svc, name) = placement(0);
    api.apply(pod(&ns, &name, &svc, Some(&ip_of(0x0200_0000)), true));
    tokio::task::block_in_place(|| {
        wait("the change is published", Duration::from_secs(10), Box::new(|| serial_of(addr) != Some(before)))
    });
    let one = tokio::task::block_in_place(|| transfer(addr, ZONE, Some(before)));
    println!(
        "one pod changed: IXFR {} octets ({} records, {} message), the whole zone {} octets: {:.5}x",
        one.octets,
        one.records.len(),
        one.messages,
        mine.octets,
        one.octets as f64 / mine.octets as f64
    );

    // Freshness through NOTIFY and IXFR, per secondary.
    let notifies = |outcome: &str| {
        [&n1, &n2]
            .iter()
            .map(|t| metric(&server, &format!("headless_dns_notifies_total{{target=\"{t}\",outcome=\"{outcome}\"}}")))
            .collect::<Vec<f64>>()
    };
    let (sent0, acked0) = (notifies("sent"), notifies("acked"));
    let mut lat: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut misses = 0;
    for i in 0..recreations {
        let (ns, svc, name) = placement(i + 1);
        let qname = format!("{name}.{svc}.{ns}.svc.{ZONE}");
        let ip = ip_of(0x0300_0000 + i as u32);
        api.delete("Pod", &ns, &name);
        api.apply(pod(&ns, &name, &svc, None, false));
        let ready = Instant::now();
        api.apply(pod(&ns, &name, &svc, Some(&ip), true));
        let mut done = [false; 2];
        while done.iter().any(|d| !d) && ready.elapsed() < Duration::from_secs(10) {
            for (k, s) in [&knot, &bind].iter().enumerate() {
                if !done[k]
                    && addresses(&udp_message(s.addr, &query(&qname, RecordType::A, None)).await.0) == [ip.clone()]
                {
                    done[k] = true;
                    lat[k].push(ready.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        misses += done.iter().filter(|d| !**d).count();
    }
    for (k, kind) in ["Knot", "BIND"].iter().enumerate() {
        lat[k].sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "freshness over {} recreations, {kind}: Ready event to the secondary's new answer p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            lat[k].len(),
            ms(percentile(&lat[k], 0.5)),
            ms(percentile(&lat[k], 0.99)),
            ms(lat[k].last().copied().unwrap_or_default())
        );
    }
    let (sent1, acked1) = (notifies("sent"), notifies("acked"));
    println!(
        "freshness: {misses} answers not seen within 10 s; NOTIFY sent/acknowledged: Knot {}/{}, BIND {}/{}",
        sent1[0] - sent0[0],
        acked1[0] - acked0[0],
        sent1[1] - sent0[1],
        acked1[1] - acked0[1]
    );

    // Churn: paced pod changes; the journal's size sampled each second.
    let total_of = |v: Vec<f64>| v.iter().sum::<f64>();
    let (sent_before, acked_before) = (total_of(notifies("sent")), total_of(notifies("acked")));
    let serial_start = serial_of(addr).unwrap();
    let start = Instant::now();
    let (mut changes, mut max_entries, mut max_bytes, mut next_sample) = (0usize, 0.0f64, 0.0f64, Duration::ZERO);
    let total = churn_rate * churn_secs;
    while changes < total && start.elapsed() < Duration::from_secs(churn_secs as u64 + 30) {
        let due = Duration::from_secs_f64(changes as f64 / churn_rate as f64);
        if start.elapsed() < due {
            tokio::time::sleep(due - start.elapsed()).await;
        }
        let (ns, svc, name) = placement((changes * 7919) % pods);
        api.apply(pod(&ns, &name, &svc, Some(&ip_of(0x0400_0000 + changes as u32)), true));
        changes += 1;
        if start.elapsed() >= next_sample {
            next_sample += Duration::from_secs(1);
            let text = tokio::task::block_in_place(|| server.http_get("/metrics").1);
            max_entries = max_entries.max(metric_in(&text, "headless_dns_journal_entries").unwrap_or(0.0));
            max_bytes = max_bytes.max(metric_in(&text, "headless_dns_journal_bytes").unwrap_or(0.0));
        }
    }
    let churned = start.elapsed();
    let ours = tokio::task::block_in_place(|| {
        std::thread::sleep(Duration::from_millis(500));
        serial_of(addr).unwrap()
    });
    let published = ours.wrapping_sub(serial_start);
    let mut converged = Vec::new();
    for s in [&knot, &bind] {
        let took = tokio::task::block_in_place(|| {
            wait(
                &format!("{:?} converges", s.kind),
                Duration::from_secs(120),
                Box::new(|| serial_of(s.addr) == Some(ours)),
            )
        });
        let (a, b) = tokio::task::block_in_place(|| (transfer(s.addr, ZONE, None), transfer(addr, ZONE, None)));
        converged.push(format!(
            "{:?} reached our serial {:.2} s after the churn ended, zone equal to ours: {}",
            s.kind,
            took.as_secs_f64(),
            lines(&a.records) == lines(&b.records)
        ));
    }
    println!(
        "churn: {changes} pod changes in {:.1} s ({:.0}/s); the serial advanced {published} hundredths of a second; \
         NOTIFY sent {}, acknowledged {}; journal at most {max_entries} entries and {:.1} MiB (bounds 1000 entries, 16 MiB)",
        churned.as_secs_f64(),
        changes as f64 / churned.as_secs_f64(),
        total_of(notifies("sent")) - sent_before,
        total_of(notifies("acked")) - acked_before,
        max_bytes / 1048576.0,
    );
    for c in converged {
        println!("churn: {c}");
    }
    if env("TRANSFER_SHOW_LOGS", 0) != 0 {
        for s in [&knot, &bind] {
            let log = s.log();
            let lines: Vec<&str> = log.lines().collect();
            println!(
                "--- {:?} log (last 60 lines) ---\n{}",
                s.kind,
                lines[lines.len().saturating_sub(60)..].join("\n")
            );
        }
    }
}
