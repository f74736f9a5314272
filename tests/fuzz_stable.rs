//! A stable-toolchain fuzzer in the normal test suite (issue 5, "Bad input"): deterministic,
//! seeded mutation fuzzing of the request path and of the manifests parser. No coverage
//! instrumentation (that is `fuzz/`, cargo-fuzz); instead an input that gives a new kind of
//! outcome (path, rcodes, flags, size class, section counts) joins the pool it mutates from.
//!
//! - Packets: the seeds are well-formed queries of many shapes and the regression corpus
//!   (`tests/corpus/mod.rs`); mutations are bit flips, byte sets, insertions, deletions,
//!   truncations, count-field, flag, type/class and label-length edits, compression-pointer
//!   injection, OPT records appended or altered, repeated questions, and splices of two inputs. Each input goes
//!   through the UDP loop's combination (fast path, else general path) and the TCP path, and
//!   must keep `corpus::check`'s invariants: no panic, a reply for every query and none for
//!   runts and responses, the query's ID, within the UDP size limit, decodable, OPT echoed,
//!   fast-path bytes equal to the general path's, the same rcode over UDP and TCP.
//! - Manifests: mutated YAML and JSON written to a file (sometimes a folder of two) and read with
//!   `manifests::load`: no panic, and every skipped document names its file and a line within it.
//!
//! Bounded by iterations and time, whichever comes first (200,000 packets or 20 s; 5,000
//! manifests or 10 s). `HEADLESS_DNS_FUZZ_SECS=600` runs each for that long instead (no
//! iteration bound); `HEADLESS_DNS_FUZZ_SEED` picks another seed. Every violation kind is
//! collected with its shortest input (hex) before the test fails. Run with `--nocapture` for the
//! figures:
//!
//! ```sh
//! cargo test --test fuzz_stable -- --nocapture
//! HEADLESS_DNS_FUZZ_SECS=300 cargo test --release --test fuzz_stable -- --nocapture
//! ```

#[path = "corpus/mod.rs"]
mod corpus;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Once;
use std::time::{Duration, Instant};

use corpus::{Fixture, rcode_of};

/// xorshift64* (Vigna): small, fast, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True one time in `n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// How long to run: `iterations` or `time`, whichever comes first.
struct Budget {
    iterations: u64,
    time: Duration,
}

impl Budget {
    fn from_env(iterations: u64, secs: u64) -> Budget {
        match std::env::var("HEADLESS_DNS_FUZZ_SECS").ok().and_then(|s| s.parse::<u64>().ok()) {
            Some(secs) => Budget { iterations: u64::MAX, time: Duration::from_secs(secs) },
            None => Budget { iterations, time: Duration::from_secs(secs) },
        }
    }
}

fn seed() -> u64 {
    std::env::var("HEADLESS_DNS_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_d00d_cafe_f00d)
}

// ---- Panics: caught per input and recorded, printed once at the end rather than per input. ----

thread_local! {
    static FUZZING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Installs (once) a panic hook that stays quiet on a fuzzing thread and remembers the message.
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if FUZZING.with(Cell::get) {
                let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = format!("panic{at}: {msg}"));
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `f` on `input`; a panic becomes an `Err` with its message and place.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    FUZZING.with(|c| c.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    FUZZING.with(|c| c.set(false));
    r.unwrap_or_else(|_| Err(LAST_PANIC.with(|p| p.borrow().clone())))
}

/// Violations by kind (the message with its numbers masked), each with a count and the shortest
/// input that showed it.
#[derive(Default)]
struct Violations(BTreeMap<String, (u64, String, Vec<u8>)>);

impl Violations {
    fn add(&mut self, message: String, input: &[u8]) {
        let kind: String = message.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
        let e = self.0.entry(kind).or_insert_with(|| (0, message.clone(), input.to_vec()));
        e.0 += 1;
        if input.len() < e.2.len() {
            e.1 = message;
            e.2 = input.to_vec();
        }
    }

    fn report(&self, show: impl Fn(&[u8]) -> String) -> String {
        self.0
            .values()
            .map(|(n, msg, input)| format!("{n} x {msg}\n    shortest input ({} octets): {}", input.len(), show(input)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---- Packet mutations. ----

/// Offsets of the question's label-length octets (following no pointers), up to the root or a
/// pointer.
fn label_offsets(p: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 12;
    while i < p.len() && out.len() < 128 {
        out.push(i);
        let len = p[i] as usize;
        if len == 0 || len & 0xc0 != 0 {
            break;
        }
        i += 1 + len;
    }
    out
}

/// The offset just after the question's name (where QTYPE starts), if the name is plain.
fn after_name(p: &[u8]) -> Option<usize> {
    let last = *label_offsets(p).last()?;
    match p[last] {
        0 => Some(last + 1),
        b if b & 0xc0 == 0xc0 => Some(last + 2),
        _ => None,
    }
}

const INTERESTING_U16: [u16; 12] = [0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x7fff, 0x8000, 0xffff];
const TYPES: [u16; 16] = [0, 1, 2, 5, 6, 12, 16, 28, 33, 41, 99, 250, 251, 252, 255, 65535];
const CLASSES: [u16; 7] = [0, 1, 3, 4, 254, 255, 65535];

fn set_u16(p: &mut [u8], at: usize, v: u16) {
    if at + 2 <= p.len() {
        p[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
}

fn random_u16(rng: &mut Rng) -> u16 {
    if rng.one_in(2) { *rng.pick(&INTERESTING_U16) } else { rng.next() as u16 }
}

/// A random OPT record: payload, version, DO bit, options (known codes, unknown ones, and
/// lengths that lie).
fn random_opt(rng: &mut Rng) -> Vec<u8> {
    let any = rng.next() as u16;
    let payload = *rng.pick(&[0, 1, 511, 512, 513, 1232, 1233, 4096, 65535, any]);
    let version = if rng.one_in(4) { rng.byte() } else { 0 };
    let mut options: Vec<(u16, Vec<u8>)> = Vec::new();
    for _ in 0..rng.below(4) {
        let any = rng.next() as u16;
        let code = *rng.pick(&[3, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 65001, any]);
        let most = if rng.one_in(4) { 40 } else { 9 };
        let len = rng.below(most);
        options.push((code, (0..len).map(|_| rng.byte()).collect()));
    }
    let refs: Vec<(u16, &[u8])> = options.iter().map(|(c, d)| (*c, d.as_slice())).collect();
    let mut o = corpus::opt(payload, version, &refs);
    if rng.one_in(3) {
        o[7] = rng.byte(); // DO bit and Z
    }
    if rng.one_in(6) {
        let l = o.len();
        let lie = (l - 11) as u16 ^ (1 << rng.below(6));
        set_u16(&mut o, 9, lie); // RDLENGTH that disagrees with the options
    }
    o
}

fn mutate_packet(rng: &mut Rng, p: &mut Vec<u8>, pool: &[Vec<u8>]) {
    match rng.below(15) {
        0 if !p.is_empty() => {
            let i = rng.below(p.len());
            p[i] ^= 1 << rng.below(8);
        }
        1 if !p.is_empty() => {
            let i = rng.below(p.len());
            let any = rng.byte();
            p[i] = *rng.pick(&[0, 1, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff, any]);
        }
        2 => {
            let at = rng.below(p.len() + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            p.splice(at..at, bytes);
        }
        3 if !p.is_empty() => {
            let at = rng.below(p.len());
            let n = 1 + rng.below((p.len() - at).min(16));
            p.drain(at..at + n);
        }
        4 => {
            let to = rng.below(p.len() + 1);
            p.truncate(to);
        }
        5 => {
            // QDCOUNT, ANCOUNT, NSCOUNT or ARCOUNT.
            let at = 4 + 2 * rng.below(4);
            let v = if rng.one_in(2) { *rng.pick(&[0, 1, 2, 3, 0xffff]) } else { random_u16(rng) };
            set_u16(p, at, v);
        }
        6 if p.len() >= 4 => {
            // Flags: opcode, QR, AA, TC, RD, RA, Z, AD, CD, rcode.
            if rng.one_in(2) {
                p[2] = (p[2] & 0x87) | (rng.below(16) as u8) << 3;
            } else {
                let i = 2 + rng.below(2);
                p[i] ^= 1 << rng.below(8);
            }
        }
        7 => {
            // A label length octet: zero, the limits, reserved and pointer types, off by one.
            let labels = label_offsets(p);
            if !labels.is_empty() {
                let i = *rng.pick(&labels);
                let old = p[i];
                p[i] = *rng.pick(&[0, 1, 62, 63, 64, 0x7f, 0x80, 0xbf, 0xc0, old.wrapping_add(1), old.wrapping_sub(1)]);
            }
        }
        8 if p.len() > 12 => {
            // A compression pointer: to itself, forward, backward, into the header, past the end.
            let labels = label_offsets(p);
            let at =
                if !labels.is_empty() && rng.one_in(2) { *rng.pick(&labels) } else { 12 + rng.below(p.len() - 12) };
            let target = match rng.below(6) {
                0 => at,
                1 => at + 2 + rng.below(8),
                2 => 12,
                3 => rng.below(12),
                4 => p.len() + rng.below(300),
                _ => rng.below(0x4000),
            } as u16;
            let ptr = 0xc000 | (target & 0x3fff);
            if at + 2 > p.len() {
                p.resize(at + 2, 0);
            }
            set_u16(p, at, ptr);
            if rng.one_in(2) {
                // Keep a type and class after it, so the pointer is what decides.
                p.truncate(at + 2);
                p.extend_from_slice(&[0, 1, 0, 1]);
            }
        }
        9 => {
            // QTYPE or QCLASS.
            if let Some(at) = after_name(p) {
                let (off, v) = if rng.one_in(2) { (0, *rng.pick(&TYPES)) } else { (2, *rng.pick(&CLASSES)) };
                set_u16(p, at + off, v);
            }
        }
        10 if p.len() >= 12 => {
            // Append an OPT (sometimes a second one) and count it.
            let ar = u16::from_be_bytes([p[10], p[11]]);
            p.extend(random_opt(rng));
            if !rng.one_in(8) {
                set_u16(p, 10, ar.wrapping_add(1));
            }
        }
        11 => {
            // Alter a field of an existing OPT: payload, ext-rcode, version, flags, RDLENGTH.
            if let Some(at) = p.windows(3).rposition(|w| w == [0, 0, 41]) {
                let field = at + 3 + 2 * rng.below(4);
                let v = random_u16(rng);
                set_u16(p, field, v);
            }
        }
        12 if !pool.is_empty() => {
            // Splice: our head, another input's tail.
            let other = rng.pick(pool);
            let head = rng.below(p.len() + 1);
            let tail = rng.below(other.len() + 1);
            p.truncate(head);
            p.extend_from_slice(&other[tail..]);
        }
        13 => {
            // Several questions: the question repeated, QDCOUNT set to match (or not).
            if let Some(end) = after_name(p).map(|a| a + 4).filter(|e| *e <= p.len()) {
                let q = p[12..end].to_vec();
                let n = 1 + rng.below(6);
                for _ in 0..n {
                    p.splice(end..end, q.iter().copied());
                }
                if !rng.one_in(4) {
                    set_u16(p, 4, n as u16 + 1);
                }
            }
        }
        _ if p.len() > 12 => {
            // Repeat a region (a second question, a doubled label).
            let a = 12 + rng.below(p.len() - 12);
            let b = a + 1 + rng.below((p.len() - a).min(64));
            let chunk = p[a..b].to_vec();
            let at = rng.below(p.len() + 1);
            p.splice(at..at, chunk);
        }
        _ => p.push(rng.byte()),
    }
    p.truncate(4096);
}

/// A coarse description of an outcome: a mutant with a new one joins the pool.
fn signature(
    f: &Fixture,
    raw: &[u8],
    replies: &(Option<hickory_proto::op::Message>, Option<hickory_proto::op::Message>),
) -> String {
    let fast = corpus::udp(f, raw).fast;
    let part = |m: &Option<hickory_proto::op::Message>| {
        m.as_ref().map_or("-".to_string(), |m| {
            format!(
                "{}/{}/{}{}/{}{}{}",
                rcode_of(m),
                m.metadata.op_code,
                u8::from(m.metadata.truncation),
                u8::from(m.edns.is_some()),
                m.answers.len().min(3),
                m.authorities.len().min(2),
                m.additionals.len().min(2),
            )
        })
    };
    format!("{fast} {} {} {}", part(&replies.0), part(&replies.1), raw.len() / 128)
}

#[test]
fn fuzz_the_request_path_udp_loop_and_tcp() {
    quiet_panics();
    let f = Fixture::new();
    let budget = Budget::from_env(200_000, 20);
    let seed = seed();
    let mut rng = Rng::new(seed);
    let mut pool: Vec<Vec<u8>> = corpus::valid_queries();
    pool.extend(corpus::cases().into_iter().map(|c| c.packet));
    pool.extend(corpus::bugs::all().into_iter().map(|c| c.packet));
    let seeds = pool.len();
    let mut seen: HashSet<String> = HashSet::new();
    let mut violations = Violations::default();

    // The seeds themselves first.
    for p in &pool {
        match guarded(|| corpus::check(&f, p)) {
            Ok(r) => {
                seen.insert(signature(&f, p, &r));
            }
            Err(e) => violations.add(e, p),
        }
    }

    let started = Instant::now();
    let mut execs: u64 = 0;
    let mut slowest = Duration::ZERO;
    while execs < budget.iterations && started.elapsed() < budget.time {
        let mut p = rng.pick(&pool).clone();
        for _ in 0..1 + rng.below(4) {
            mutate_packet(&mut rng, &mut p, &pool);
        }
        let t = Instant::now();
        let result = guarded(|| corpus::check(&f, &p));
        let took = t.elapsed();
        slowest = slowest.max(took);
        if took > Duration::from_secs(1) {
            violations.add(format!("one input took {took:?}"), &p);
        }
        execs += 1;
        match result {
            Ok(r) => {
                if pool.len() < 20_000 && seen.insert(signature(&f, &p, &r)) {
                    pool.push(p);
                }
            }
            Err(e) => violations.add(e, &p),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "packet fuzzer: seed {seed:#x}: {execs} executions in {secs:.1} s ({:.0}/s), {seeds} seeds, {} inputs in the \
         pool, {} distinct outcomes, slowest input {slowest:?}",
        execs as f64 / secs,
        pool.len(),
        seen.len()
    );
    assert!(execs >= 1_000 || budget.time < Duration::from_secs(1), "only {execs} executions");
    assert!(violations.0.is_empty(), "violations:\n{}", violations.report(hex));
}

// ---- Manifests. ----

/// Well-formed manifests of every shape the loader reads: the bundled example, every kind it
/// serves, a `List`, multi-document streams with `---` and `...`, JSON, anchors and aliases.
fn yaml_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<String> = Vec::new();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example");
    if let Ok(dir) = std::fs::read_dir(&example) {
        let mut files: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        seeds.extend(files.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
    }
    seeds.push(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: nginx-abc\n  namespace: default\n  \
         labels: {kubernetes.io/service-name: nginx}\n  annotations: {endpoints.kubernetes.io/last-change-trigger-time: \
         '2024-01-01T00:00:00Z'}\naddressType: IPv4\nports: [{name: web, port: 80, protocol: TCP}]\nendpoints:\n- \
         addresses: [10.244.1.5]\n  hostname: web-0\n  conditions: {ready: true}\n  targetRef: {kind: Pod, name: web-0}\n"
            .into(),
    );
    seeds.push("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n  labels: {dns: exposed}\n".into());
    seeds.push(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: db, namespace: \
         data}\n  spec: {type: ExternalName, externalName: db.example.com}\n- apiVersion: v1\n  kind: Pod\n  metadata: \
         &meta {name: db-0, namespace: data, labels: {app: db}}\n  status: {podIP: 'fd00::5', podIPs: [{ip: 'fd00::5'}]}\n\
         ...\n---\n# a comment\n---\n"
            .into(),
    );
    seeds.push(
        r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "default"},
 "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20", "fd00::20"], "ports": [{"name": "http", "port": 8080}]}}"#
            .into(),
    );
    seeds.push(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: &ns y, labels: &l {app: x}, annotations: *l}\n\
         spec: {hostname: x, subdomain: *ns, containers: [{name: c, image: x}]}\nstatus: {podIP: 10.0.0.9}\n"
            .into(),
    );
    seeds.into_iter().map(String::into_bytes).collect()
}

const YAML_TOKENS: [&str; 40] = [
    ":",
    ": ",
    "- ",
    "---\n",
    "...\n",
    "{",
    "}",
    "[",
    "]",
    "'",
    "\"",
    "&a ",
    "*a",
    "*b",
    "!!str ",
    "!!binary ",
    "!!map ",
    "!foo ",
    "\t",
    "\n",
    "#",
    "|\n",
    ">-\n",
    "? ",
    "%YAML 1.2\n",
    "kind: List\nitems:\n",
    "kind: Pod\n",
    "kind: Service\n",
    "null",
    "~",
    "0x1F",
    "1e400",
    "\u{feff}",
    "\r\n",
    "\r",
    "\u{0}",
    "\u{85}",
    "<<: ",
    ",",
    "\\",
];

const YAML_VALUES: [&str; 16] = [
    "",
    "[]",
    "{}",
    "null",
    "-1",
    "99999999999999999999",
    "'10.0.0.1'",
    "300.1.1.1",
    "fd00::1",
    "\"\\u0000\"",
    "True",
    "[{}]",
    "&x [*x]",
    "!!binary aGk=",
    "2024-13-45T99:99:99Z",
    "\"\\xff\\ud800\"",
];

fn mutate_yaml(rng: &mut Rng, t: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let lines = |t: &[u8]| -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        let mut start = 0;
        for (i, b) in t.iter().enumerate() {
            if *b == b'\n' {
                v.push((start, i + 1));
                start = i + 1;
            }
        }
        if start < t.len() {
            v.push((start, t.len()));
        }
        v
    };
    match rng.below(11) {
        0 if !t.is_empty() => {
            let i = rng.below(t.len());
            t[i] ^= 1 << rng.below(7); // ASCII stays ASCII, mostly
        }
        1 => {
            let at = rng.below(t.len() + 1);
            t.splice(at..at, rng.pick(&YAML_TOKENS).bytes());
        }
        2 if !t.is_empty() => {
            let at = rng.below(t.len());
            let n = 1 + rng.below((t.len() - at).min(32));
            t.drain(at..at + n);
        }
        3 => {
            let to = rng.below(t.len() + 1);
            t.truncate(to);
        }
        4 => {
            // Duplicate, delete or move a line.
            let ls = lines(t);
            if !ls.is_empty() {
                let (a, b) = *rng.pick(&ls);
                let line = t[a..b].to_vec();
                match rng.below(3) {
                    0 => {
                        t.splice(a..a, line);
                    }
                    1 => {
                        t.drain(a..b);
                    }
                    _ => {
                        t.drain(a..b);
                        let ls = lines(t);
                        let at = ls.get(rng.below(ls.len() + 1)).map_or(t.len(), |l| l.0);
                        t.splice(at..at, line);
                    }
                }
            }
        }
        5 => {
            // Indent or dedent a line.
            let ls = lines(t);
            if !ls.is_empty() {
                let (a, _) = *rng.pick(&ls);
                if rng.one_in(2) {
                    t.splice(a..a, b"  ".iter().copied());
                } else if t.get(a) == Some(&b' ') {
                    t.remove(a);
                }
            }
        }
        6 => {
            // Replace the value after a `: ` with an odd one.
            let colons: Vec<usize> = t.windows(2).enumerate().filter(|(_, w)| w == b": ").map(|(i, _)| i + 2).collect();
            if !colons.is_empty() {
                let at = *rng.pick(&colons);
                let end =
                    t[at..].iter().position(|b| matches!(b, b'\n' | b',' | b'}' | b']')).map_or(t.len(), |n| at + n);
                t.splice(at..end, rng.pick(&YAML_VALUES).bytes());
            }
        }
        7 if !pool.is_empty() => {
            let other = rng.pick(pool);
            let head = rng.below(t.len() + 1);
            let tail = rng.below(other.len() + 1);
            t.truncate(head);
            t.extend_from_slice(&other[tail..]);
        }
        8 => {
            // Deep nesting.
            let depth = 1 + rng.below(200);
            let at = rng.below(t.len() + 1);
            let open = if rng.one_in(2) { "[" } else { "{a: " };
            t.splice(at..at, open.repeat(depth).into_bytes());
        }
        9 if !t.is_empty() => {
            // A byte that is not UTF-8 (the file cannot be read as text).
            let i = rng.below(t.len());
            t[i] = *rng.pick(&[0x80, 0xc3, 0xff, 0xfe]);
        }
        _ => {
            let at = rng.below(t.len() + 1);
            t.splice(at..at, (0..1 + rng.below(4)).map(|_| rng.byte() & 0x7f));
        }
    }
    t.truncate(64 * 1024);
}

#[test]
fn fuzz_the_manifests_loader() {
    quiet_panics();
    let budget = Budget::from_env(5_000, 10);
    let seed = seed() ^ 0x7961_6d6c;
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("a.yaml"), dir.path().join("b.json"));
    let pool = yaml_seeds();
    let mut violations = Violations::default();

    // Every seed loads cleanly: the fuzzer starts from valid input.
    for s in &pool {
        std::fs::write(&one, s).unwrap();
        let (found, errors) = corpus::check_manifests(&one, &[(&one, s)]).unwrap();
        assert!(found > 0 && errors == 0, "seed does not load cleanly: {}", String::from_utf8_lossy(s));
    }

    let started = Instant::now();
    let (mut execs, mut with_errors, mut objects) = (0u64, 0u64, 0usize);
    while execs < budget.iterations && started.elapsed() < budget.time {
        let mut a = rng.pick(&pool).clone();
        for _ in 0..1 + rng.below(4) {
            mutate_yaml(&mut rng, &mut a, &pool);
        }
        std::fs::write(&one, &a).unwrap();
        // One time in eight, a folder of two files.
        let folder = rng.one_in(8);
        let mut b = Vec::new();
        if folder {
            b = rng.pick(&pool).clone();
            mutate_yaml(&mut rng, &mut b, &pool);
            std::fs::write(&two, &b).unwrap();
        }
        let result = if folder {
            guarded(|| corpus::check_manifests(dir.path(), &[(&one, &a), (&two, &b)]))
        } else {
            guarded(|| corpus::check_manifests(&one, &[(&one, &a)]))
        };
        if folder {
            std::fs::remove_file(&two).unwrap();
        }
        execs += 1;
        match result {
            Ok((found, errors)) => {
                objects += found;
                with_errors += u64::from(errors > 0);
            }
            Err(e) => {
                let mut input = a.clone();
                if folder {
                    input.extend_from_slice(b"\n#### b.json ####\n");
                    input.extend_from_slice(&b);
                }
                violations.add(e, &input);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "manifests fuzzer: seed {seed:#x}: {execs} executions in {secs:.1} s ({:.0}/s), {with_errors} with skipped \
         documents, {objects} objects read",
        execs as f64 / secs
    );
    assert!(execs >= 100, "only {execs} executions");
    assert!(
        violations.0.is_empty(),
        "violations:\n{}",
        violations.report(|b| format!("{:?}", String::from_utf8_lossy(b)))
    );
}

/// A generator, not a test: writes the seed corpora for the cargo-fuzz targets into the folder
/// `HEADLESS_DNS_FUZZ_SEEDS` names (`fuzz/README.md`): `<folder>/packet/` and
/// `<folder>/manifests/`. Ignored, so the suite never runs it; run it by name:
/// `HEADLESS_DNS_FUZZ_SEEDS=DIR cargo test --test fuzz_stable -- --ignored write_seed_corpora_for_cargo_fuzz`.
#[test]
#[ignore = "a generator of cargo-fuzz seed corpora, run by hand (fuzz/README.md)"]
fn write_seed_corpora_for_cargo_fuzz() {
    let root = std::env::var_os("HEADLESS_DNS_FUZZ_SEEDS")
        .expect("HEADLESS_DNS_FUZZ_SEEDS must name the folder to write the seed corpora to");
    let root = Path::new(&root);
    let mut packets = corpus::valid_queries();
    packets.extend(corpus::cases().into_iter().map(|c| c.packet));
    packets.extend(corpus::bugs::all().into_iter().map(|c| c.packet));
    for (kind, inputs) in [("packet", packets), ("manifests", yaml_seeds())] {
        let dir = root.join(kind);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, input) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:04}")), input).unwrap();
        }
        println!("wrote {} seeds to {}", inputs.len(), dir.display());
    }
}
