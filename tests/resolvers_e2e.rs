//! Real recursive resolvers in front of the real binary: unbound, dnsmasq, BIND, Knot Resolver and
//! PowerDNS Recursor, each from Debian, each forwarding `cluster.local` to headless-dns serving a
//! folder of YAML, each queried with `dig` (recursion desired) as a pod would query it.
//!
//! Every resolver runs hermetically, as `nobody`, on a free loopback port with its configuration
//! in a temporary folder (see shared/resolvers.md): its root is pinned to loopback or everything
//! outside the forwarded zone is refused, so no packet leaves the machine. A counting proxy sits
//! between the resolver and headless-dns, so the tests can see what the resolver did on the wire
//! (a truncated UDP reply, then a query over TCP; QNAME-minimised intermediate names).
//!
//! A missing resolver binary fails its test with the package to install (`bash .ci/run` installs
//! them all); it never passes silently.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::dns::{DigReply, dig};
use support::resolvers::{Kind, Proxy, Resolver};
use support::server::ServerProcess;
use support::yaml::{headless_service, pod, write};

/// The answer TTL headless-dns is started with: short, so the freshness check is fast.
const TTL: Duration = Duration::from_secs(1);
/// Resolvers keep time in whole seconds, so an entry can outlive its TTL by up to one second.
const CLOCK_GRAIN: Duration = Duration::from_secs(1);
/// Time for one poll round (a `dig` process) on a busy two-core machine.
const POLL_SLACK: Duration = Duration::from_millis(500);
const WAIT: Duration = Duration::from_secs(20);
const POD: &str = "web-0.nginx.default.svc.cluster.local";

fn nginx(web0_ip: &str) -> Vec<String> {
    vec![headless_service("nginx"), pod("web-0", "nginx", web0_ip, true), pod("web-1", "nginx", "10.0.0.2", true)]
}

fn big_ips() -> Vec<String> {
    (0..120).map(|i| format!("10.1.{}.{}", i / 100, i % 100 + 1)).collect()
}

fn big() -> Vec<String> {
    let mut docs = vec![headless_service("big")];
    docs.extend(big_ips().iter().enumerate().map(|(i, ip)| pod(&format!("big-{i}"), "big", ip, true)));
    docs
}

// --- polling ---

/// Polls `check` until it returns `Some` or `timeout` passes (then panics with `what`).
fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `dig` through a resolver: recursion desired, a generous timeout (the resolver may itself be
/// retrying over TCP upstream).
fn ask(resolver: SocketAddr, args: &[&str]) -> DigReply {
    let mut all = vec!["+rec", "+time=5", "+tries=2"];
    all.extend_from_slice(args);
    dig(resolver, &all)
}

// --- the checks, the same for every resolver ---

fn through(kind: Kind) {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "nginx.yaml", &nginx("10.0.0.1"));
    write(dir.path(), "big.yaml", &big());
    let ttl = TTL.as_secs().to_string();
    let hd = ServerProcess::start(&["--manifests", dir.path().to_str().unwrap(), "--ttl", &ttl]);
    hd.wait_for_log("first full sync complete", WAIT);
    let proxy = Proxy::start(hd.dns);
    let r = Resolver::start(kind, proxy.addr);
    let via = r.addr;

    // Empty non-terminals are NODATA through the resolver, before anything else is cached. A
    // resolver may still be warming up its forwarder for a moment: wait out SERVFAIL only.
    let first = wait_for("a first answer through the resolver", WAIT, || {
        let reply = ask(via, &["default.svc.cluster.local", "A"]);
        (reply.status != "SERVFAIL").then_some(reply)
    });
    assert_eq!((first.status.as_str(), first.answer.len()), ("NOERROR", 0), "{kind:?}: NODATA expected\n{}", first.raw);
    let svc = ask(via, &["svc.cluster.local", "A"]);
    assert_eq!((svc.status.as_str(), svc.answer.len()), ("NOERROR", 0), "{kind:?}\n{}", svc.raw);

    // A pod name resolves, after the intermediate names were seen as NODATA (with unbound's
    // harden-below-nxdomain an NXDOMAIN there would have hidden it).
    let web0 = ask(via, &[POD, "A"]);
    assert_eq!(web0.status, "NOERROR", "{kind:?}\n{}", web0.raw);
    assert_eq!(web0.addresses(), ["10.0.0.1"], "{kind:?}");
    if matches!(kind, Kind::Unbound | Kind::PdnsRecursor) {
        // These two minimise QNAMEs toward a forwarded zone: prove it happened, so the NODATA
        // answers mattered. Nothing has asked for the service name itself yet.
        let seen = proxy.wire.qnames.lock().unwrap().clone();
        assert!(
            seen.iter().any(|n| n == "nginx.default.svc.cluster.local."),
            "{kind:?} asked one label at a time on its way to the pod name: {seen:?}"
        );
    }
    assert_eq!(ask(via, &["web-1.nginx.default.svc.cluster.local"]).addresses(), ["10.0.0.2"], "{kind:?}");
    assert_eq!(ask(via, &["nginx.default.svc.cluster.local"]).addresses(), ["10.0.0.1", "10.0.0.2"], "{kind:?}");

    // NXDOMAIN passes through.
    for name in ["web-9.nginx.default.svc.cluster.local", "nope.default.svc.cluster.local"] {
        let reply = ask(via, &[name, "A"]);
        assert_eq!(reply.status, "NXDOMAIN", "{kind:?} {name}\n{}", reply.raw);
    }

    // A 120-endpoint headless service arrives whole: headless-dns truncated its UDP reply and the
    // resolver (or dig through dnsmasq, which relays TC) retried over TCP.
    let (_, tc_before, tcp_before) = proxy.wire.counts();
    let whole = ask(via, &["big.default.svc.cluster.local", "A"]);
    let mut want = big_ips();
    want.sort();
    assert_eq!(whole.addresses(), want, "{kind:?}: all 120 records\n{}", whole.raw);
    let (_, tc_after, tcp_after) = proxy.wire.counts();
    assert!(tc_after > tc_before, "{kind:?}: headless-dns sent a truncated UDP reply");
    assert!(tcp_after > tcp_before, "{kind:?}: the resolver retried over TCP");

    // A recreated pod: its new IP reaches clients of the resolver within the TTL of the moment
    // headless-dns serves it. Cache the old answer first, so the resolver has something to expire.
    assert_eq!(ask(via, &[POD]).addresses(), ["10.0.0.1"], "{kind:?}");
    write(dir.path(), "nginx.yaml", &nginx("10.0.0.11"));
    wait_for("headless-dns serves the new IP", WAIT, || {
        (dig(hd.dns, &[POD]).addresses() == ["10.0.0.11"]).then_some(())
    });
    let served = Instant::now();
    let limit = TTL + CLOCK_GRAIN + POLL_SLACK;
    wait_for("the resolver serves the new IP", limit, || (ask(via, &[POD]).addresses() == ["10.0.0.11"]).then_some(()));
    let lag = served.elapsed();
    for _ in 0..5 {
        assert_eq!(
            ask(via, &[POD]).addresses(),
            ["10.0.0.11"],
            "{kind:?}: once the new IP is out, the old one never returns"
        );
    }
    let (udp, tc, tcp) = proxy.wire.counts();
    eprintln!(
        "{kind:?}: new IP through the resolver {lag:?} after headless-dns served it (TTL {TTL:?}); \
         upstream: {udp} UDP queries ({tc} truncated), {tcp} TCP queries; test took {:?}",
        started.elapsed()
    );
}

#[test]
fn unbound_with_qname_minimisation_forwards_the_zone_faithfully() {
    through(Kind::Unbound);
}

#[test]
fn dnsmasq_forwards_the_zone_faithfully() {
    through(Kind::Dnsmasq);
}

#[test]
fn bind_forwards_the_zone_faithfully() {
    through(Kind::Bind);
}

#[test]
fn knot_resolver_forwards_the_zone_faithfully() {
    through(Kind::Kresd);
}

#[test]
fn pdns_recursor_forwards_the_zone_faithfully() {
    through(Kind::PdnsRecursor);
}
