//! Helpers the benchmarks under `benches/` share (they include this support folder by path).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The environment variable `name` as a number, else `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The `n`th address of 10.0.0.0/8.
pub fn ip_of(n: u32) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// The `p` quantile (0..=1) of `sorted`, nearest rank; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Samples a process's RSS every 20 ms (for at most 300 s) and keeps the peak.
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling process `pid`.
    pub fn start(pid: u32) -> RssSampler {
        let peak = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let status_path = format!("/proc/{pid}/status");
        let thread = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(300);
                while !done.load(Ordering::Acquire) && Instant::now() < deadline {
                    let kib = std::fs::read_to_string(&status_path)
                        .ok()
                        .and_then(|s| {
                            s.lines()
                                .find_map(|l| l.strip_prefix("VmRSS:"))
                                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                        })
                        .unwrap_or(0);
                    peak.fetch_max(kib, Ordering::AcqRel);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        RssSampler { peak, done, thread }
    }

    /// Stops sampling; the peak in KiB.
    pub fn stop(self) -> u64 {
        self.done.store(true, Ordering::Release);
        let _ = self.thread.join();
        self.peak.load(Ordering::Acquire)
    }
}

/// The answer-path benchmarks' zone (`micro`, `cores`): `cluster.local` with 1,000 headless
/// services of 10 pods each, `web-<p>.svc-<s>.default.svc`, pod `p` of service `s` at
/// 10.<s/256>.<s%256>.<p+1>. Each service also governs a StatefulSet `db-<s>` of 10 replicas
/// that has no pod yet: `db-<s>-<p>.svc-<s>.default.svc` is a name it expects (a negative
/// answer with `expected-negative-ttl`), and every other negative is checked against them.
pub fn zones() -> headless_dns::dns::answer::Zones {
    use headless_dns::dns::answer::Zones;
    use headless_dns::dns::zone::{PodsMode, PtrMode, Ttls, ZoneSettings, ZoneSpec};
    use headless_dns::index::{Index, NameData, Owner, Published};
    use headless_dns::model::ObjectKey;
    use hickory_proto::rr::Name;

    let index = Arc::new(Index::new());
    for s in 0..1000u32 {
        let mut names = Vec::new();
        let mut all = NameData::default();
        for p in 0..10u32 {
            let ip = std::net::Ipv4Addr::new(10, (s >> 8) as u8, (s & 0xff) as u8, p as u8 + 1);
            all.v4.push(ip);
            names.push((
                format!("web-{p}.svc-{s}.default.svc").into(),
                NameData { v4: [ip].into_iter().collect(), ..Default::default() },
            ));
        }
        names.push((format!("svc-{s}.default.svc").into(), all));
        index
            .publish(&Owner::Service(ObjectKey::new("default", format!("svc-{s}"))), Published { names, ptrs: vec![] });
        index.set_expected("default", &format!("db-{s}"), Some((format!("svc-{s}.default.svc").into(), 0..10)));
    }
    index.set_synced(true);
    Zones::new(
        index,
        ZoneSettings {
            zones: vec![ZoneSpec::Forward(Name::from_ascii("cluster.local.").unwrap())],
            ttls: Ttls { record: 5, soa: 5, soa_minimum: 5, expected_negative: 0 },
            pods: PodsMode::Disabled,
            ptr: PtrMode::First,
            namespaces: vec![],
            zonal: false,
            multicluster: vec![],
            transfer: Default::default(),
            keys: Default::default(),
        },
    )
}

/// An A query for `name` with a plain EDNS OPT (payload 1232).
pub fn query(name: &str) -> Vec<u8> {
    query_as(name, false)
}

/// An A query for `name`; with `resolver`, as BIND forwards it: the DO bit and an 8-octet client
/// COOKIE (RFC 7873).
pub fn query_as(name: &str, resolver: bool) -> Vec<u8> {
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::opt::EdnsOption;
    use hickory_proto::rr::{Name, RecordType};

    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    if resolver {
        e.set_dnssec_ok(true);
        e.options_mut().insert(EdnsOption::Unknown(10, vec![0x2f, 0x8a, 0x6c, 0x31, 0xd0, 0xb4, 0x7e, 0x95]));
    }
    m.set_edns(e);
    m.to_vec().unwrap()
}
