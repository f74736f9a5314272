//! End to end through the real binary serving from a folder of YAML, queried with dig and with
//! hickory over UDP and TCP on loopback.

mod support;

use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use support::dns::{Proto, addresses, dig, hickory, query, tcp_messages, udp_message, udp_raw, zone_lines};
use support::server::{ServerProcess, eventually, run_to_exit};
use support::yaml::{headless_service, pod, write};

const WAIT: Duration = Duration::from_secs(10);

fn start(dir: &Path) -> ServerProcess {
    let s = ServerProcess::start(&["--manifests", dir.to_str().unwrap()]);
    s.wait_for_log("first full sync complete", WAIT);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_example_answers_with_dig_and_hickory_over_udp_and_tcp() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml");
    let s = ServerProcess::start(&["--config", config]);
    s.wait_for_log("first full sync complete", WAIT);

    let r = dig(s.dns, &["web-0.nginx.default.svc.cluster.local", "A"]);
    assert_eq!(r.status, "NOERROR");
    assert!(r.has_flag("aa"), "{}", r.raw);
    assert_eq!(r.answer, ["web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.1.5"]);
    assert_eq!(dig(s.dns, &["nginx.default.svc.cluster.local"]).addresses(), ["10.244.1.5", "10.244.2.7"]);
    assert_eq!(dig(s.dns, &["+tcp", "web-1.nginx.default.svc.cluster.local"]).addresses(), ["10.244.2.7"]);
    assert_eq!(dig(s.dns, &["api.default.svc.cluster.local"]).addresses(), ["10.96.0.20"]);

    for proto in [Proto::Udp, Proto::Tcp] {
        let m = hickory(s.dns, "web-0.nginx.default.svc.cluster.local.", RecordType::A, proto).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative);
        assert_eq!(zone_lines(&m.answers), ["web-0.nginx.default.svc.cluster.local. 5 IN A 10.244.1.5"]);
        let m = hickory(s.dns, "nginx.default.svc.cluster.local.", RecordType::A, proto).await;
        assert_eq!(addresses(&m), ["10.244.1.5", "10.244.2.7"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_answers_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &[headless_service("nginx"), pod("web-0", "nginx", "10.0.0.1", true)]);
    let s = start(dir.path());

    // NXDOMAIN with the SOA (RFC 2308), for a missing pod, service and namespace.
    for name in ["web-9.nginx.default.svc.cluster.local", "nope.default.svc.cluster.local", "x.nons.svc.cluster.local"]
    {
        let r = dig(s.dns, &[name]);
        assert_eq!(r.status, "NXDOMAIN", "{name}");
        assert!(r.has_flag("aa"));
        assert_eq!(r.authority.len(), 1);
        assert!(r.authority[0].starts_with("cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. "));
        assert!(r.authority[0].ends_with(" 7200 1800 86400 5"), "SOA minimum is the TTL: {}", r.authority[0]);
    }
    // NODATA: an existing name without the type, and the empty non-terminals.
    for (name, t) in [
        ("web-0.nginx.default.svc.cluster.local", "AAAA"),
        ("web-0.nginx.default.svc.cluster.local", "TXT"),
        ("default.svc.cluster.local", "A"),
        ("svc.cluster.local", "A"),
        ("cluster.local", "A"),
    ] {
        let r = dig(s.dns, &[name, t]);
        assert_eq!((r.status.as_str(), r.answer.len()), ("NOERROR", 0), "{name} {t}");
        assert!(r.authority[0].contains(" IN SOA "), "{name} {t}");
    }
    // Apex SOA and NS.
    assert!(
        dig(s.dns, &["cluster.local", "SOA"]).answer[0].starts_with("cluster.local. 5 IN SOA ns.dns.cluster.local.")
    );
    assert_eq!(dig(s.dns, &["cluster.local", "NS"]).answer, ["cluster.local. 5 IN NS ns.dns.cluster.local."]);
    // REFUSED outside the zone, including CoreDNS forward's health probe `. NS`.
    for (name, t) in [(".", "NS"), ("example.com", "A"), ("local", "SOA")] {
        let r = dig(s.dns, &[name, t]);
        assert_eq!(r.status, "REFUSED", "{name}");
        assert!(!r.has_flag("aa"));
    }
    assert_eq!(dig(s.dns, &["-c", "CH", "version.bind", "TXT"]).status, "REFUSED");
    // Zone transfers are not offered.
    let axfr = tcp_messages(s.dns, &[query("cluster.local.", RecordType::AXFR, None)]).await;
    assert_eq!(axfr[0].metadata.response_code, ResponseCode::Refused);

    // The question's case is echoed exactly (resolvers using 0x20 check it).
    let (m, _) = udp_message(s.dns, &query("wEb-0.NgInX.default.SVC.cluster.LOCAL.", RecordType::A, None)).await;
    assert_eq!(m.queries[0].name().to_string(), "wEb-0.NgInX.default.SVC.cluster.LOCAL.");
    assert_eq!(addresses(&m), ["10.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_file_moves_the_answer_to_the_new_ip_and_never_back() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &[headless_service("nginx"), pod("web-0", "nginx", "10.0.0.1", true)]);
    let s = start(dir.path());
    let name = "web-0.nginx.default.svc.cluster.local";
    assert_eq!(dig(s.dns, &[name]).addresses(), ["10.0.0.1"]);

    write(dir.path(), "a.yaml", &[headless_service("nginx"), pod("web-0", "nginx", "10.0.0.2", true)]);
    eventually("new IP served", WAIT, || async { (dig(s.dns, &[name]).addresses() == ["10.0.0.2"]).then_some(()) })
        .await;
    for _ in 0..20 {
        let m = hickory(s.dns, &format!("{name}."), RecordType::A, Proto::Udp).await;
        assert_eq!(addresses(&m), ["10.0.0.2"], "once the new IP is served, the old one never returns");
    }

    // Not ready: the pod name goes away (NXDOMAIN, the service has no ready endpoint either).
    write(dir.path(), "a.yaml", &[headless_service("nginx"), pod("web-0", "nginx", "10.0.0.2", false)]);
    eventually("unready pod withdrawn", WAIT, || async { (dig(s.dns, &[name]).status == "NXDOMAIN").then_some(()) })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_added_and_removed_change_what_is_served_and_broken_yaml_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &[headless_service("nginx"), pod("web-0", "nginx", "10.0.0.1", true)]);
    let s = start(dir.path());

    write(dir.path(), "b.yaml", &[headless_service("db"), pod("db-0", "db", "10.0.1.1", true)]);
    eventually("db added", WAIT, || async {
        (dig(s.dns, &["db-0.db.default.svc.cluster.local"]).addresses() == ["10.0.1.1"]).then_some(())
    })
    .await;

    // A broken document in a file (db-0's, rewritten with a typo): reported with file and line;
    // the rest of the file and the other files keep serving, and so does what the file held at
    // its last good read.
    write(
        dir.path(),
        "b.yaml",
        &[headless_service("db"), "kind: Pod\nmetadata: {name: [db-0\n".into(), pod("db-1", "db", "10.0.1.2", true)],
    );
    eventually("db-1 added next to a broken document", WAIT, || async {
        (dig(s.dns, &["db.default.svc.cluster.local"]).addresses() == ["10.0.1.1", "10.0.1.2"]).then_some(())
    })
    .await;
    let line = s.wait_for_log("skipping manifest document", WAIT);
    assert!(line.contains("b.yaml") && line.contains("\"line\":"), "{line}");
    assert_eq!(dig(s.dns, &["web-0.nginx.default.svc.cluster.local"]).addresses(), ["10.0.0.1"]);

    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    eventually("db removed", WAIT, || async {
        (dig(s.dns, &["db.default.svc.cluster.local"]).status == "NXDOMAIN").then_some(())
    })
    .await;
    assert_eq!(dig(s.dns, &["web-0.nginx.default.svc.cluster.local"]).addresses(), ["10.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_120_endpoint_service_truncates_over_udp_and_arrives_whole_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let mut docs = vec![headless_service("big")];
    for i in 0..120 {
        docs.push(pod(&format!("big-{i}"), "big", &format!("10.1.{}.{}", i / 100, i % 100 + 1), true));
    }
    write(dir.path(), "big.yaml", &docs);
    let s = start(dir.path());
    let name = "big.default.svc.cluster.local.";

    // Without EDNS: at most 512 octets; with EDNS the client's size, capped at 1232.
    for (edns, limit) in [(None, 512), (Some(4096), 1232), (Some(1232), 1232), (Some(600), 600), (Some(100), 512)] {
        let (m, size) = udp_message(s.dns, &query(name, RecordType::A, edns)).await;
        assert!(size <= limit, "{size} > {limit} with EDNS {edns:?}");
        assert!(m.metadata.truncation, "TC=1 expected with EDNS {edns:?}");
        assert_eq!(m.queries.len(), 1, "the question is kept");
        assert_eq!(m.edns.is_some(), edns.is_some(), "OPT answers OPT");
    }
    let r = dig(s.dns, &["+ignore", name]);
    assert!(r.has_flag("tc"), "{}", r.raw);
    // dig retries over TCP by itself on TC=1, and +tcp asks over TCP directly.
    assert_eq!(dig(s.dns, &[name]).addresses().len(), 120);
    assert_eq!(dig(s.dns, &["+tcp", name]).addresses().len(), 120);
    let m = hickory(s.dns, name, RecordType::A, Proto::Tcp).await;
    assert_eq!(addresses(&m).len(), 120);
    assert!(!m.metadata.truncation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_queries_on_one_tcp_connection_are_answered_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.yaml",
        &[headless_service("nginx"), pod("web-0", "nginx", "10.0.0.1", true), pod("web-1", "nginx", "10.0.0.2", true)],
    );
    let s = start(dir.path());
    let qs: Vec<Message> = ["web-0", "web-1", "web-2", "web-0"]
        .iter()
        .map(|h| query(&format!("{h}.nginx.default.svc.cluster.local."), RecordType::A, None))
        .collect();
    let replies = tcp_messages(s.dns, &qs).await;
    let got: Vec<(u16, Vec<String>)> = replies.iter().map(|m| (m.metadata.id, addresses(m))).collect();
    let want: Vec<(u16, Vec<String>)> = qs
        .iter()
        .zip([vec!["10.0.0.1"], vec!["10.0.0.2"], vec![], vec!["10.0.0.1"]])
        .map(|(q, a)| (q.metadata.id, a.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(replies[2].metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unusual_packets_get_errors_and_the_server_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &[headless_service("nginx"), pod("web-0", "nginx", "10.0.0.1", true)]);
    let s = start(dir.path());
    let short = Duration::from_millis(300);

    // Garbage shorter than a header: dropped.
    assert_eq!(udp_raw(s.dns, &[1, 2, 3], short).await, None);
    // A response (QR=1) is never answered (no reflection).
    let mut resp = query("web-0.nginx.default.svc.cluster.local.", RecordType::A, None);
    resp.metadata.message_type = hickory_proto::op::MessageType::Response;
    assert_eq!(udp_raw(s.dns, &resp.to_vec().unwrap(), short).await, None);
    // Two questions: FORMERR.
    let mut two = query("web-0.nginx.default.svc.cluster.local.", RecordType::A, None);
    two.add_query(two.queries[0].clone());
    assert_eq!(udp_message(s.dns, &two).await.0.metadata.response_code, ResponseCode::FormErr);
    // A truncated question: FORMERR.
    let bytes = query("web-0.nginx.default.svc.cluster.local.", RecordType::A, None).to_vec().unwrap();
    let reply = udp_raw(s.dns, &bytes[..20], Duration::from_secs(3)).await.expect("a FORMERR reply");
    assert_eq!(reply[3] & 0x0f, 1, "FORMERR");
    // An unknown opcode: NOTIMP.
    let mut notify = query("cluster.local.", RecordType::SOA, None);
    notify.metadata.op_code = hickory_proto::op::OpCode::Status;
    assert_eq!(udp_message(s.dns, &notify).await.0.metadata.response_code, ResponseCode::NotImp);
    // EDNS version 1: BADVERS (RFC 6891 section 6.1.3).
    let mut v1 = query("web-0.nginx.default.svc.cluster.local.", RecordType::A, Some(1232));
    v1.edns.as_mut().unwrap().set_version(1);
    let (m, _) = udp_message(s.dns, &v1).await;
    assert_eq!(m.metadata.response_code.high(), ResponseCode::BADVERS.high());
    assert_eq!(m.edns.as_ref().map(|e| e.rcode_high()), Some(ResponseCode::BADVERS.high()));

    // Still answering normally.
    assert_eq!(dig(s.dns, &["web-0.nginx.default.svc.cluster.local"]).addresses(), ["10.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_report_readiness() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &[headless_service("nginx")]);
    let s = start(dir.path());
    assert_eq!(s.http_get("/healthz").0, 200);
    let (code, body) = s.http_get("/readyz");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("services: synced"), "{body}");

    for _ in 0..3 {
        dig(s.dns, &["nginx.default.svc.cluster.local"]);
    }
    dig(s.dns, &["+tcp", "nope.default.svc.cluster.local", "AAAA"]);
    let (code, text) = s.http_get("/metrics");
    assert_eq!(code, 200);
    let value = |series: &str| -> f64 {
        support::server::metric_in(&text, series).unwrap_or_else(|| panic!("no metric {series}:\n{text}"))
    };
    // The service has no ready endpoint: NXDOMAIN, three times over UDP.
    assert_eq!(value(r#"headless_dns_requests_total{qtype="A",rcode="NXDOMAIN",transport="udp"}"#), 3.0);
    assert_eq!(value(r#"headless_dns_requests_total{qtype="AAAA",rcode="NXDOMAIN",transport="tcp"}"#), 1.0);
    // UDP latency is sampled (the first request of every eight per worker); TCP is always timed.
    let sampled = value(r#"headless_dns_request_duration_seconds_count{transport="udp"}"#);
    assert!((1.0..=3.0).contains(&sampled), "{sampled}");
    assert_eq!(value(r#"headless_dns_request_duration_seconds_count{transport="tcp"}"#), 1.0);
    assert!(value(r#"headless_dns_index_names{record="empty_non_terminal"}"#) >= 1.0);
    assert!(text.contains("# TYPE headless_dns_watch_events counter"), "{text}");
}

#[test]
fn bad_configuration_names_the_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "zone = \"cluster.local\"\nlisten-on = [\"127.0.0.1:53\"]\n").unwrap();
    let (code, err) = run_to_exit(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml") && err.contains("listen-on"), "{err}");

    std::fs::write(&cfg, "ttl = 7200\n").unwrap();
    let (code, err) = run_to_exit(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml") && err.contains("`ttl`") && err.contains("3600"), "{err}");

    std::fs::write(&cfg, "listen = [\"localhost\"]\n").unwrap();
    let (code, err) = run_to_exit(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`listen`") && err.contains("localhost"), "{err}");

    let (code, err) = run_to_exit(&["--listen", "nowhere"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--listen"), "{err}");
    let (code, err) = run_to_exit(&["--no-such-flag"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--no-such-flag"), "{err}");

    let (code, err) = run_to_exit(&["--manifests", "/nonexistent/manifests", "--listen", "127.0.0.1:0"]);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/manifests"), "{err}");
}

#[test]
fn a_flag_beats_its_environment_variable_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", &[headless_service("nginx"), pod("web-0", "nginx", "10.244.1.5", true)]);
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, format!("manifests = \"{}\"\nttl = 30\n", dir.path().display())).unwrap();
    let ttl = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["--config", cfg.to_str().unwrap()];
        all.extend_from_slice(args);
        let s = ServerProcess::start_with_env(&all, env);
        s.wait_for_log("first full sync complete", WAIT);
        let r = dig(s.dns, &["web-0.nginx.default.svc.cluster.local"]);
        r.answer[0].split(' ').nth(1).unwrap().to_owned()
    };
    assert_eq!(ttl(&[], &[]), "30", "the file");
    assert_eq!(ttl(&[], &[("HEADLESS_DNS_TTL", "20")]), "20", "the variable over the file");
    assert_eq!(ttl(&["--ttl", "10"], &[("HEADLESS_DNS_TTL", "20")]), "10", "the flag over the variable");
    let (code, err) = {
        let out = std::process::Command::new(support::server::binary())
            .args(["--config", cfg.to_str().unwrap()])
            .env("HEADLESS_DNS_TTL", "7200")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--ttl") && err.contains("0..=3600"), "a bad variable names its flag: {err}");
}
