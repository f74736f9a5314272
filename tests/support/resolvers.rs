//! Real recursive resolvers from Debian (unbound, dnsmasq, BIND, Knot Resolver, PowerDNS
//! Recursor), each started hermetically as `nobody` on a free loopback port, forwarding
//! `cluster.local` to headless-dns, and a counting proxy between them (see shared/resolvers.md).
//! Used by `tests/resolvers_e2e.rs` and `benches/freshness.rs`. A missing resolver binary fails
//! with the package to install; it never passes silently.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a resolver may take to start listening.
const WAIT: Duration = Duration::from_secs(20);

// --- a counting DNS proxy between the resolver and headless-dns ---

/// What the proxy saw.
#[derive(Default)]
pub struct Wire {
    pub udp_queries: AtomicUsize,
    pub udp_truncated_replies: AtomicUsize,
    pub tcp_queries: AtomicUsize,
    /// Lower-cased question names, in arrival order.
    pub qnames: Mutex<Vec<String>>,
}

impl Wire {
    pub fn record(&self, query: &[u8]) {
        if let Some(name) = qname(query) {
            self.qnames.lock().unwrap().push(name);
        }
    }

    /// (UDP queries, truncated UDP replies, TCP queries).
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.udp_queries.load(Ordering::SeqCst),
            self.udp_truncated_replies.load(Ordering::SeqCst),
            self.tcp_queries.load(Ordering::SeqCst),
        )
    }
}

/// The question name of a DNS message (queries carry no compression pointers).
pub fn qname(msg: &[u8]) -> Option<String> {
    let mut at = 12;
    let mut name = String::new();
    loop {
        let len = *msg.get(at)? as usize;
        if len == 0 {
            return Some(if name.is_empty() { ".".into() } else { name.to_ascii_lowercase() });
        }
        if len & 0xc0 != 0 {
            return None;
        }
        name.push_str(&String::from_utf8_lossy(msg.get(at + 1..at + 1 + len)?));
        name.push('.');
        at += 1 + len;
    }
}

/// A transparent UDP + TCP DNS relay on one loopback port, counting what passes. Threads, not
/// tasks: the tests block on `dig` processes, and the relay must keep running meanwhile.
pub struct Proxy {
    /// Where resolvers send (UDP and TCP, one port).
    pub addr: SocketAddr,
    /// What passed.
    pub wire: Arc<Wire>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Relays to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        // The same port for UDP and TCP, as resolvers expect of one upstream address.
        let (tcp, udp) = loop {
            let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            if let Ok(udp) = UdpSocket::bind(tcp.local_addr().unwrap()) {
                break (tcp, udp);
            }
        };
        let addr = tcp.local_addr().unwrap();
        let wire = Arc::new(Wire::default());
        let stop = Arc::new(AtomicBool::new(false));

        let udp = Arc::new(udp);
        udp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let (w, s) = (wire.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 65535];
            while !s.load(Ordering::SeqCst) {
                let Ok((n, client)) = udp.recv_from(&mut buf) else { continue };
                let query = buf[..n].to_vec();
                let (udp, w) = (udp.clone(), w.clone());
                std::thread::spawn(move || {
                    w.udp_queries.fetch_add(1, Ordering::SeqCst);
                    w.record(&query);
                    let up = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
                    up.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                    up.send_to(&query, upstream).unwrap();
                    let mut reply = [0u8; 65535];
                    if let Ok(n) = up.recv(&mut reply) {
                        if n > 2 && reply[2] & 0x02 != 0 {
                            w.udp_truncated_replies.fetch_add(1, Ordering::SeqCst);
                        }
                        let _ = udp.send_to(&reply[..n], client);
                    }
                });
            }
        });

        let (w, s) = (wire.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in tcp.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let w = w.clone();
                std::thread::spawn(move || relay_tcp(conn, upstream, &w));
            }
        });
        Proxy { addr, wire, stop }
    }
}

/// Relays length-prefixed DNS messages over one TCP connection, one query then one reply.
fn relay_tcp(mut client: TcpStream, upstream: SocketAddr, wire: &Wire) {
    let Ok(mut up) = TcpStream::connect(upstream) else { return };
    for s in [&client, &up] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let read_msg = |s: &mut TcpStream| -> Option<Vec<u8>> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).ok()?;
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut msg).ok()?;
        Some(msg)
    };
    while let Some(query) = read_msg(&mut client) {
        wire.tcp_queries.fetch_add(1, Ordering::SeqCst);
        wire.record(&query);
        let framed = |m: &[u8]| [&(m.len() as u16).to_be_bytes()[..], m].concat();
        if up.write_all(&framed(&query)).is_err() {
            return;
        }
        let Some(reply) = read_msg(&mut up) else { return };
        if client.write_all(&framed(&reply)).is_err() {
            return;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag; the UDP loop wakes on its read timeout.
        let _ = TcpStream::connect(self.addr);
    }
}

// --- the resolvers ---

/// The resolvers the tests and benchmarks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unbound,
    Dnsmasq,
    Bind,
    Kresd,
    PdnsRecursor,
}

/// Root hints whose only root server is loopback: a resolver that ever iterates from the root
/// asks 127.0.0.1 and nothing else.
const LOOPBACK_ROOT_HINT: &str = ".                        3600000  NS  a.root-servers.lab.\n\
                                  a.root-servers.lab.      3600000  A   127.0.0.1\n";

impl Kind {
    /// Its name, as its users write it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Unbound => "unbound",
            Kind::Dnsmasq => "dnsmasq",
            Kind::Bind => "BIND",
            Kind::Kresd => "Knot Resolver",
            Kind::PdnsRecursor => "PowerDNS Recursor",
        }
    }

    /// Its executable.
    pub fn binary(self) -> &'static str {
        match self {
            Kind::Unbound => "unbound",
            Kind::Dnsmasq => "dnsmasq",
            Kind::Bind => "named",
            Kind::Kresd => "kresd",
            Kind::PdnsRecursor => "pdns_recursor",
        }
    }

    /// The Debian package that has it.
    pub fn package(self) -> &'static str {
        match self {
            Kind::Unbound => "unbound",
            Kind::Dnsmasq => "dnsmasq-base",
            Kind::Bind => "bind9",
            Kind::Kresd => "knot-resolver",
            Kind::PdnsRecursor => "pdns-recursor",
        }
    }

    /// Writes the configuration into `dir` and returns the command-line arguments.
    pub fn configure(self, dir: &Path, port: u16, upstream: SocketAddr) -> Vec<String> {
        let d = dir.display();
        let up_port = upstream.port();
        let file = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        match self {
            Kind::Unbound => {
                let hints = file("root.hint", LOOPBACK_ROOT_HINT.into());
                // QNAME minimisation and harden-below-nxdomain on (their defaults, stated): an
                // NXDOMAIN for an empty non-terminal would hide every pod name below it.
                let conf = file(
                    "unbound.conf",
                    format!(
                        "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  username: \"\"\n  chroot: \"\"\n  \
                         directory: \"{d}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n  \
                         num-threads: 1\n  module-config: \"iterator\"\n  root-hints: \"{hints}\"\n  \
                         do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n  \
                         qname-minimisation: yes\n  harden-below-nxdomain: yes\n  \
                         local-zone: \".\" refuse\n  local-zone: \"cluster.local.\" transparent\n\
                         stub-zone:\n  name: \"cluster.local\"\n  stub-addr: 127.0.0.1@{up_port}\n  stub-prime: no\n"
                    ),
                );
                vec!["-d".into(), "-c".into(), conf]
            }
            Kind::Dnsmasq => {
                // No upstream but headless-dns: other names get REFUSED. Comments must sit on
                // their own lines in dnsmasq's format, so there are none.
                let conf = file(
                    "dnsmasq.conf",
                    format!(
                        "port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n\
                         server=/cluster.local/127.0.0.1#{up_port}\npid-file=\nlog-facility=-\n"
                    ),
                );
                vec!["-k".into(), "-C".into(), conf]
            }
            Kind::Bind => {
                file("root.hint", LOOPBACK_ROOT_HINT.into());
                // BIND 9.18.28+ answers SERVFAIL for a set of more than 100 records unless
                // max-records-per-type is lifted; a 120-pod service needs it.
                let conf = file(
                    "named.conf",
                    format!(
                        "options {{\n  directory \"{d}\";\n  pid-file none;\n  listen-on port {port} {{ 127.0.0.1; }};\n  \
                         listen-on-v6 {{ none; }};\n  recursion yes;\n  allow-query {{ 127.0.0.0/8; }};\n  \
                         allow-recursion {{ 127.0.0.0/8; }};\n  dnssec-validation no;\n  max-records-per-type 0;\n  \
                         notify no;\n}};\ncontrols {{ }};\n\
                         zone \".\" {{ type hint; file \"root.hint\"; }};\n\
                         zone \"cluster.local\" {{ type forward; forward only; forwarders {{ 127.0.0.1 port {up_port}; }}; }};\n"
                    ),
                );
                vec!["-g".into(), "-n".into(), "1".into(), "-c".into(), conf]
            }
            Kind::Kresd => {
                // cache.min_ttl defaults to 5 s, longer than our TTL: honour the TTL as served.
                let conf = file(
                    "kresd.conf",
                    format!(
                        "net.listen('127.0.0.1', {port}, {{ kind = 'dns' }})\n\
                         modules.unload('priming')\ntrust_anchors.remove('.')\n\
                         cache.size = 10 * MB\ncache.min_ttl(0)\n\
                         policy.add(policy.suffix(policy.STUB({{'127.0.0.1@{up_port}'}}), {{todname('cluster.local.')}}))\n\
                         policy.add(policy.all(policy.REFUSE))\n"
                    ),
                );
                vec!["-n".into(), "-c".into(), conf, d.to_string()]
            }
            Kind::PdnsRecursor => {
                let hints = file("root.hint", LOOPBACK_ROOT_HINT.into());
                file(
                    "recursor.conf",
                    format!(
                        "local-address=127.0.0.1\nlocal-port={port}\nallow-from=127.0.0.0/8\n\
                         forward-zones=cluster.local=127.0.0.1:{up_port}\nhint-file={hints}\n\
                         socket-dir={d}\ndaemon=no\nwrite-pid=no\ndisable-syslog=yes\ndnssec=off\nthreads=1\n"
                    ),
                );
                vec![format!("--config-dir={d}")]
            }
        }
    }
}

/// Finds a resolver binary on PATH or in the sbin folders, or fails the test saying what to
/// install.
pub fn find_binary(kind: Kind) -> PathBuf {
    find_binary_named(kind.binary()).unwrap_or_else(|| {
        panic!(
            "resolver `{}` is not installed (looked on PATH and in /usr/sbin, /sbin, /usr/local/sbin): \
             install the Debian package `{}` (bash .ci/run does)",
            kind.binary(),
            kind.package()
        )
    })
}

/// The path of executable `name` on PATH or in the sbin folders.
pub fn find_binary_named(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The effective user id of this process (from /proc, to need no libc binding).
pub fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// The uid and gid of `nobody` / `nogroup`, from the system's databases.
pub fn nobody_ids() -> (u32, u32) {
    let field = |file: &str, name: &str| -> u32 {
        let text = std::fs::read_to_string(file).unwrap();
        let line =
            text.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap_or_else(|| panic!("{name} in {file}"));
        line.split(':').nth(2).unwrap().parse().unwrap()
    };
    (field("/etc/passwd", "nobody"), field("/etc/group", "nogroup"))
}

/// Ports handed out by this process, so that two tests running at once never pick the same one.
static PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback port free for UDP and TCP now (the resolver binds it moments later; a lost race
/// shows as the resolver exiting, and [`Resolver::start`] then tries another port).
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
            continue;
        }
        if PORTS.lock().unwrap().get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// A server process started by [`start_daemon`]: its process, its folder (`log` there holds its
/// output) and the loopback address it answers on.
pub struct Daemon {
    /// The process (setpriv execs the server, so its PID is the server's).
    pub child: Child,
    /// Its folder.
    pub dir: tempfile::TempDir,
    /// Where it answers, UDP and TCP.
    pub addr: SocketAddr,
}

/// Starts `binary` in a fresh folder (as `nobody` when root, the folder then owned by it) with the
/// arguments `configure(folder, port)` returns after writing what it needs there, on a free
/// loopback port, and waits until it accepts TCP there (DNS servers bind UDP and TCP together at
/// start-up). A lost port race shows as an early exit: three tries. `what` names it in failures.
pub fn start_daemon(what: &str, binary: &Path, mut configure: impl FnMut(&Path, u16) -> Vec<String>) -> Daemon {
    let mut last_log = String::new();
    for _attempt in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let root = euid() == 0;
        if root {
            let (uid, gid) = nobody_ids();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let port = free_port();
        let args = configure(dir.path(), port);
        let log = File::create(dir.path().join("log")).unwrap();
        let mut cmd = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]).arg(binary);
            c
        } else {
            Command::new(binary)
        };
        cmd.args(&args).current_dir(dir.path()).stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let read_log = |dir: &tempfile::TempDir| std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        let deadline = Instant::now() + WAIT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Daemon { child, dir, addr };
            }
            if let Ok(Some(status)) = child.try_wait() {
                last_log = format!("{what} exited with {status}:\n{}", read_log(&dir));
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not listen on {addr}:\n{}", read_log(&dir));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("{what} failed to start three times; last attempt: {last_log}");
}

/// A running resolver; killed by its PID when dropped.
pub struct Resolver {
    /// Which one.
    pub kind: Kind,
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Resolver {
    /// Starts `kind` as `nobody` on a free loopback port, forwarding `cluster.local` to
    /// `upstream`, and waits until it accepts connections.
    pub fn start(kind: Kind, upstream: SocketAddr) -> Resolver {
        let binary = find_binary(kind);
        let d = start_daemon(&format!("{kind:?}"), &binary, |dir, port| kind.configure(dir, port, upstream));
        Resolver { kind, addr: d.addr, child: d.child, dir: d.dir }
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        // setpriv execs the resolver, so the child's PID is the resolver's.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {:?} log ---\n{}", self.kind, self.log());
        }
    }
}
