//! Micro-benchmarks of the answer path's parts: name parsing (the fast path's header and question
//! parse with a zone match), index lookup, and answer encoding (fast path vs general path), on a
//! 10,000-pod index. Run: `cargo bench --bench micro`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use headless_dns::dns::answer::Zones;
use headless_dns::dns::fast;
use headless_dns::dns::general::{Responder, Transport};
use headless_dns::dns::zone::{PodsMode, PtrMode, Ttls, ZoneSettings, ZoneSpec};
use headless_dns::index::{Index, NameData, Owner, Published};
use headless_dns::model::ObjectKey;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, RecordType};

/// 1,000 headless services of 10 pods each, as the benchmark zones are shaped.
fn zones() -> Zones {
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

fn query(name: &str) -> Vec<u8> {
    query_as(name, false)
}

/// With `resolver`, as BIND forwards: the DO bit and an 8-octet client COOKIE (RFC 7873).
fn query_as(name: &str, resolver: bool) -> Vec<u8> {
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

fn benches(c: &mut Criterion) {
    let z = zones();
    let general = Responder::new(z.clone());
    let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let hit = query("web-3.svc-500.default.svc.cluster.local.");
    let service = query("svc-500.default.svc.cluster.local.");
    let miss = query("api.example.com.default.svc.cluster.local.");
    let resolver_miss = query_as("api.example.com.default.svc.cluster.local.", true);
    let mut out = Vec::with_capacity(1232);

    c.bench_function("parse: hickory Message::from_vec (reference)", |b| {
        b.iter(|| black_box(Message::from_vec(black_box(&hit)).unwrap()))
    });
    c.bench_function("index lookup (hit)", |b| {
        b.iter(|| black_box(z.index().lookup(black_box("web-3.svc-500.default.svc"))))
    });
    c.bench_function("index lookup (miss)", |b| {
        b.iter(|| black_box(z.index().lookup(black_box("api.example.com.default.svc"))))
    });
    c.bench_function("fast path: pod name hit (parse + lookup + encode)", |b| {
        b.iter(|| black_box(fast::answer(&z, black_box(&hit), src.ip(), &mut out)))
    });
    c.bench_function("fast path: service name, 10 addresses", |b| {
        b.iter(|| black_box(fast::answer(&z, black_box(&service), src.ip(), &mut out)))
    });
    c.bench_function("fast path: NXDOMAIN with SOA", |b| {
        b.iter(|| black_box(fast::answer(&z, black_box(&miss), src.ip(), &mut out)))
    });
    c.bench_function("fast path: NXDOMAIN, DO bit and a client COOKIE (resolver)", |b| {
        b.iter(|| black_box(fast::answer(&z, black_box(&resolver_miss), src.ip(), &mut out)))
    });
    c.bench_function("cookie: a server cookie (clock + SipHash-2-4)", |b| {
        let client = [0x2f, 0x8a, 0x6c, 0x31, 0xd0, 0xb4, 0x7e, 0x95];
        b.iter(|| black_box(z.cookies().reply_option(black_box(&client), src.ip())))
    });
    c.bench_function("general path: pod name hit", |b| {
        b.iter(|| black_box(general.respond(black_box(&hit), src, Transport::Udp)))
    });
    c.bench_function("general path: NXDOMAIN with SOA", |b| {
        b.iter(|| black_box(general.respond(black_box(&miss), src, Transport::Udp)))
    });
}

criterion_group!(micro, benches);
criterion_main!(micro);
