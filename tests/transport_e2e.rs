//! Transport limits and lifecycle through the real binary: TCP connection limits with 2,000
//! idle and half-open connections held, the slowloris read deadline, the idle timeout, a
//! graceful SIGTERM (readiness fails first, in-flight answers complete, exit 0), and a UDP answer
//! over the link's MTU (TC=1, never IP fragments).

mod support;

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use support::dns::{Proto, addresses, dig, hickory, query, tcp_messages};
use support::server::{ServerProcess, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);
const WEB0: &str = "web-0.nginx.default.svc.cluster.local.";

fn manifests() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: nginx, namespace: default}\nspec: {clusterIP: None, selector: {app: nginx}}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: default, labels: {app: nginx}}\n\
         spec: {hostname: web-0, subdomain: nginx, containers: [{name: c, image: x}]}\n\
         status: {phase: Running, podIP: 10.244.1.5, conditions: [{type: Ready, status: 'True'}]}\n",
    )
    .unwrap();
    dir
}

fn start(dir: &tempfile::TempDir, extra: &[&str]) -> ServerProcess {
    let mut args = vec!["--manifests", dir.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    let s = ServerProcess::start(&args);
    s.wait_for_log("first full sync complete", WAIT);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_and_half_open_tcp_connections_do_not_block_fresh_queries() {
    let dir = manifests();
    let s = tokio::task::block_in_place(|| start(&dir, &["--tcp-max-connections", "1000", "--tcp-idle-timeout", "60"]));
    let mut held = Vec::new();
    for i in 0..2000 {
        let mut c = TcpStream::connect(s.dns).await.expect("connect");
        if i % 2 == 1 {
            // Half-open message: a length prefix and part of a message, then nothing.
            c.write_all(&[0, 40, 1, 2, 3]).await.unwrap();
        }
        held.push(c);
    }
    // Fresh queries over both transports still answer while the 2,000 are held.
    let m = hickory(s.dns, WEB0, RecordType::A, Proto::Udp).await;
    assert_eq!(addresses(&m), ["10.244.1.5"]);
    let replies = tcp_messages(s.dns, &[query(WEB0, RecordType::A, None)]).await;
    assert_eq!(addresses(&replies[0]), ["10.244.1.5"]);
    // The limit closed the oldest connections: the first ones read EOF.
    let mut first = held.remove(0);
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), first.read(&mut byte)).await.expect("closed, not hanging");
    assert!(matches!(n, Ok(0) | Err(_)), "the oldest connection was closed");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_message_must_complete_within_the_read_deadline() {
    let dir = manifests();
    let s = tokio::task::block_in_place(|| start(&dir, &["--tcp-read-timeout", "1", "--tcp-idle-timeout", "30"]));
    let mut slow = TcpStream::connect(s.dns).await.unwrap();
    slow.write_all(&[0, 60, 0x12]).await.unwrap();
    let started = Instant::now();
    let mut byte = [0u8; 1];
    // Closed well before the 30 s idle timeout would close it (the read deadline did it), however
    // busy the machine.
    let n = tokio::time::timeout(Duration::from_secs(25), slow.read(&mut byte)).await.expect("closed by the server");
    assert!(matches!(n, Ok(0) | Err(_)));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "closed after the 1 s deadline, not before: {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tcp_connections_are_closed_after_the_idle_timeout() {
    let dir = manifests();
    let s = tokio::task::block_in_place(|| start(&dir, &["--tcp-idle-timeout", "1"]));
    let mut c = TcpStream::connect(s.dns).await.unwrap();
    // One query answered, then silence.
    let q = query(WEB0, RecordType::A, None).to_vec().unwrap();
    c.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
    c.write_all(&q).await.unwrap();
    let len = c.read_u16().await.unwrap();
    let mut reply = vec![0u8; len as usize];
    c.read_exact(&mut reply).await.unwrap();
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut byte)).await.expect("closed when idle");
    assert!(matches!(n, Ok(0) | Err(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_fails_readiness_first_keeps_answering_then_exits_zero() {
    let dir = manifests();
    let mut s = tokio::task::block_in_place(|| start(&dir, &["--shutdown-delay", "2"]));
    assert_eq!(s.http_get("/readyz").0, 200);
    let started = Instant::now();
    // SIGTERM without waiting, then watch readiness flip while DNS still answers.
    let term = std::process::Command::new("kill").args(["-TERM", &s.pid().to_string()]).status().unwrap();
    assert!(term.success());
    let http = s.http;
    eventually("readiness fails", WAIT, || async move {
        let (code, body) = tokio::task::block_in_place(|| support::server::http_get(http, "/readyz"));
        (code == 503 && body.contains("shutting down")).then_some(())
    })
    .await;
    let r = tokio::task::block_in_place(|| dig(s.dns, &[WEB0]));
    assert_eq!(r.addresses(), ["10.244.1.5"], "still answering during the lame-duck delay");
    let status = tokio::task::block_in_place(|| s.terminate(Duration::from_secs(15))).expect("exited in time");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() >= Duration::from_secs(2), "the lame-duck delay was honoured");
    assert!(s.logs().iter().any(|l| l.contains("stopped")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_safe_keys_and_rejects_a_bad_config_while_serving() {
    let dir = manifests();
    let cfg = dir.path().join("c.toml");
    let write_cfg = |text: &str| std::fs::write(&cfg, text).unwrap();
    write_cfg("ttl = 5\n");
    let s = tokio::task::block_in_place(|| start(&dir, &["--config", cfg.to_str().unwrap()]));
    let ttl = |s: &ServerProcess| {
        let r = tokio::task::block_in_place(|| dig(s.dns, &[WEB0]));
        r.answer[0].split(' ').nth(1).unwrap().to_owned()
    };
    assert_eq!(ttl(&s), "5");
    let hup =
        || assert!(std::process::Command::new("kill").args(["-HUP", &s.pid().to_string()]).status().unwrap().success());

    // A valid change of a safe key applies.
    write_cfg("ttl = 42\n");
    hup();
    eventually("new TTL served", WAIT, || async { (ttl(&s) == "42").then_some(()) }).await;

    // A bad file is rejected, loudly, and the running configuration keeps serving.
    write_cfg("ttl = 42\nbogus-key = 1\n");
    hup();
    tokio::task::block_in_place(|| s.wait_for_log("configuration reload rejected", WAIT));
    assert_eq!(ttl(&s), "42");

    // A key that cannot change while running is reported, not applied.
    write_cfg("ttl = 7\nendpoints-from = \"endpointslices\"\n");
    hup();
    tokio::task::block_in_place(|| s.wait_for_log("need a restart", WAIT));
    eventually("safe key still applied", WAIT, || async { (ttl(&s) == "7").then_some(()) }).await;
}

/// Never fragmented: in a network namespace of its own (loopback only) whose `lo` has an MTU of
/// 1,000 octets, an answer of 65 addresses (1,098 octets, under the 1,232 that EDNS allows)
/// cannot go as one datagram. The server sends TC=1 instead of IP fragments, and dig, as a
/// resolver would, asks again over TCP and gets all 65. Needs root for the namespace (`unshare
/// -n`) and `ip` (iproute2), as `bash .ci/run` has.
#[test]
fn an_answer_over_the_link_mtu_goes_as_tc_and_whole_over_tcp_never_as_fragments() {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: default}\nspec: {clusterIP: None, selector: {app: big}}\n",
    );
    for i in 1..=65 {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: big-{i}, namespace: default, labels: {{app: big}}}}\n\
             spec: {{containers: [{{name: c, image: x}}]}}\n\
             status: {{phase: Running, podIP: 10.244.0.{i}, conditions: [{{type: Ready, status: 'True'}}]}}\n"
        ));
    }
    std::fs::write(dir.path().join("big.yaml"), yaml).unwrap();
    // The whole scenario runs inside the namespace; the server is ended by its PID.
    let script = r#"
        set -u
        ip link set lo mtu 1000 up || exit 3
        "$1" --manifests "$2" --listen 127.0.0.1:5300 --zone cluster.local >"$2/server.log" 2>&1 &
        pid=$!
        q="-p 5300 @127.0.0.1 big.default.svc.cluster.local A +nocookie +time=2 +tries=1"
        for i in $(seq 1 100); do
            dig +short $q | grep -q '^10\.244\.0\.' && break
            sleep 0.2
        done
        echo "== udp"; dig +ignore $q
        echo "== retried"; dig $q
        kill $pid; wait $pid
    "#;
    let out = std::process::Command::new("unshare")
        .args(["-n", "bash", "-c", script, "mtu", support::server::binary(), dir.path().to_str().unwrap()])
        .output()
        .expect("run unshare (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code() != Some(3) && !text.is_empty(),
        "a network namespace with its own loopback is needed (root, and ip from iproute2; bash .ci/run has both): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (udp, retried) = text.split_once("== retried").expect("both digs ran");
    // The datagram: TC=1 and no records, where the kernel would otherwise have sent fragments.
    assert!(udp.contains(";; flags: qr aa tc rd;") && udp.contains("ANSWER: 0,"), "{text}");
    // dig took the TC and got the whole answer over TCP.
    assert!(retried.contains("Truncated, retrying in TCP mode"), "{text}");
    assert!(retried.contains("ANSWER: 65,") && retried.contains("(TCP)"), "{text}");
    assert!(retried.contains("10.244.0.65"), "{text}");
}
