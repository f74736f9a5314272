//! Micro-benchmarks of the answer path's parts: name parsing (the fast path's header and question
//! parse with a zone match), index lookup, and answer encoding (fast path vs general path), on a
//! 10,000-pod index. Run: `cargo bench --bench micro`.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use headless_dns::dns::fast;
use headless_dns::dns::general::{Responder, Transport};
use hickory_proto::op::Message;

#[path = "../tests/support/mod.rs"]
mod support;
use support::bench::{query, query_as, zones};

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
