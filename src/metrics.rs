//! Prometheus metrics, served as text at `/metrics` by [`crate::admin`].
//!
//! One process-wide [`Metrics`] (see [`metrics`]); the DNS handler, the sources and the reconciler
//! record into it. Gauges that describe state (index size, seconds since a watch's last event)
//! are computed when scraped, by [`Metrics::encode`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::health::Health;
use crate::index::Index;

/// Labels of a DNS request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Query type (`A`, `AAAA`, `SRV`, ...; `other` for rare types, bounding cardinality).
    pub qtype: &'static str,
    /// Response code (`NOERROR`, `NXDOMAIN`, ...).
    pub rcode: &'static str,
    /// `udp` or `tcp`.
    pub transport: &'static str,
}

/// A transport label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    /// `udp` or `tcp`.
    pub transport: &'static str,
}

/// A watch (object kind) label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `services`, `pods`, `endpointslices`, `namespaces`.
    pub kind: &'static str,
}

/// A watch event label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchEventLabels {
    /// The watch.
    pub kind: &'static str,
    /// `apply`, `delete` or `list` (a full list or relist).
    pub event: &'static str,
}

/// Where the endpoints of a programmed Service came from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProgrammingLabels {
    /// `pods` (Services with a selector in pods mode) or `endpointslices`.
    pub source: &'static str,
}

/// Index entries by record kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordKindLabels {
    /// `a`, `aaaa`, `srv`, `cname`, `empty_non_terminal`, `ptr`.
    pub record: &'static str,
}

/// Labels of a zone transfer served.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransferLabels {
    /// `axfr`, `ixfr` (incremental), `ixfr_full` (an IXFR answered with the whole zone) or
    /// `ixfr_current` (the client was up to date: one SOA).
    pub kind: &'static str,
    /// The zone's apex.
    pub zone: String,
    /// `ok`, `refused`, `notauth` (bad or missing TSIG), `servfail` (before the first sync) or
    /// `aborted` (the client went away).
    pub outcome: &'static str,
}

/// A zone label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabels {
    /// The zone's apex.
    pub zone: String,
}

/// Labels of a NOTIFY.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyLabels {
    /// The secondary, `ADDR:PORT`.
    pub target: String,
    /// `sent` (each try), `acked`, `failed` (given up after every retry) or `superseded` (a
    /// newer serial replaced it before it was acknowledged).
    pub outcome: &'static str,
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests answered and their sampled latencies (`requests_total`,
    /// `request_duration_seconds`): every writer's [`RequestTally`], summed at scrape.
    requests: Arc<RequestTallies>,
    /// Truncated replies and expected negatives (`truncated_replies_total`,
    /// `expected_negatives_total`): every answering thread's own counts, summed at scrape.
    answers: Arc<AnswerCounts>,
    /// Index entries by record kind (computed at scrape).
    pub index_names: Family<RecordKindLabels, Gauge>,
    /// Names skipped as malformed (computed at scrape).
    pub skipped_names: Gauge,
    /// Watch events received.
    pub watch_events: Family<WatchEventLabels, Counter>,
    /// Watch errors (each is retried).
    pub watch_errors: Family<KindLabels, Counter>,
    /// Watch restarts: relists after the first list.
    pub watch_restarts: Family<KindLabels, Counter>,
    /// Watches that fell back from streaming lists to paged lists (the API server does not
    /// offer them).
    pub streaming_list_fallbacks: Family<KindLabels, Counter>,
    /// Seconds since each watch's last event (computed at scrape).
    pub watch_last_event_age: Family<KindLabels, Gauge<f64, AtomicU64>>,
    /// DNS programming latency: from the object's change time in the API (a pod's condition
    /// transition, an EndpointSlice's `last-change-trigger-time`) to the new answer being served.
    pub programming_latency: Family<ProgrammingLabels, Histogram>,
    /// Manifest documents that could not be used (each reload counts each bad document again).
    pub manifest_errors: Counter,
    /// Names StatefulSets expect that have no address now (computed at scrape).
    pub expected_missing: Gauge,
    /// Zone transfers served.
    pub transfers: Family<TransferLabels, Counter>,
    /// Octets of zone transfer messages sent, by zone.
    pub transfer_bytes: Family<ZoneLabels, Counter>,
    /// The SOA serial of each transferable zone (set as serials are published).
    pub zone_serial: Family<ZoneLabels, Gauge>,
    /// Differences held in the transfer journal.
    pub journal_entries: Gauge,
    /// Octets the transfer journal holds (estimated).
    pub journal_bytes: Gauge,
    /// The oldest serial an incremental transfer can start from (the journal's reach).
    pub journal_oldest_serial: Gauge,
    /// NOTIFY messages, by secondary and outcome.
    pub notifies: Family<NotifyLabels, Counter>,
}

/// Upper bounds of the request latency buckets in nanoseconds: 10 us doubling to ~82 ms (the
/// last bucket, +Inf, takes the rest).
const LATENCY_BOUNDS_NS: [u64; 14] = {
    let mut b = [0u64; 14];
    let mut i = 0;
    while i < b.len() {
        b[i] = 10_000 << i;
        i += 1;
    }
    b
};

/// One writer's request counts, by (qtype, rcode), and its sampled latencies: a UDP worker's own
/// (each worker takes one from [`Metrics::request_tally`]), or the one every TCP connection
/// shares. Summed over all writers at scrape, so that workers on different cores never write a
/// shared cache line per request: a shared counter did, and at two threads its one locked
/// increment took about an eighth of the answer path's samples (`perf record` on
/// `cargo bench --bench cores`). Aligned so that two tallies never share a line.
#[derive(Debug)]
#[repr(align(128))]
pub struct RequestTally {
    tcp: bool,
    counts: [AtomicU64; QTYPES.len() * RCODES.len()],
    /// Observations per latency bucket (not cumulative); the last is +Inf. Their sum is the
    /// count, so a scrape's count always equals its +Inf bucket.
    buckets: [AtomicU64; LATENCY_BOUNDS_NS.len() + 1],
    latency_sum_ns: AtomicU64,
}

impl RequestTally {
    fn new(tcp: bool) -> Self {
        RequestTally {
            tcp,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one answered request; `elapsed` when its latency was measured (the UDP path
    /// samples one request in [`LATENCY_SAMPLE`] to keep clock reads off the hot path).
    pub fn observe(
        &self,
        qtype: Option<hickory_proto::rr::RecordType>,
        rcode: hickory_proto::op::ResponseCode,
        elapsed: Option<Duration>,
    ) {
        let (q, r) = (qtype.map_or(QTYPES.len() - 1, qtype_index), rcode_index(rcode));
        // Relaxed: each value is a monotone count read only at scrape.
        self.counts[q * RCODES.len() + r].fetch_add(1, Ordering::Relaxed);
        if let Some(elapsed) = elapsed {
            let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            let bucket = LATENCY_BOUNDS_NS.iter().position(|&b| ns <= b).unwrap_or(LATENCY_BOUNDS_NS.len());
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
            self.latency_sum_ns.fetch_add(ns, Ordering::Relaxed);
        }
    }
}

/// Every [`RequestTally`]: the collector of `requests_total` and `request_duration_seconds`.
#[derive(Debug)]
struct RequestTallies {
    /// The tally every TCP connection shares.
    tcp: RequestTally,
    /// One per UDP worker.
    workers: Mutex<Vec<Arc<RequestTally>>>,
}

impl Collector for RequestTallies {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let workers = self.workers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let all: Vec<&RequestTally> = std::iter::once(&self.tcp).chain(workers.iter().map(|t| &**t)).collect();
        let transport = |tcp: bool| if tcp { "tcp" } else { "udp" };
        let mut counts = encoder.encode_descriptor(
            "requests",
            "DNS requests answered, by query type, rcode and transport",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for tcp in [false, true] {
            for (slot, (q, r)) in (0..QTYPES.len()).flat_map(|q| (0..RCODES.len()).map(move |r| (q, r))).enumerate() {
                let n: u64 = all.iter().filter(|t| t.tcp == tcp).map(|t| t.counts[slot].load(Ordering::Relaxed)).sum();
                // A label set appears once a request had it, as a counter family's would.
                if n > 0 {
                    let labels = RequestLabels { qtype: QTYPES[q].1, rcode: RCODES[r].1, transport: transport(tcp) };
                    counts.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
                }
            }
        }
        let mut durations = encoder.encode_descriptor(
            "request_duration_seconds",
            "Time to answer a DNS request, from parsed request to reply sent",
            None,
            prometheus_client::metrics::MetricType::Histogram,
        )?;
        for tcp in [false, true] {
            let mine: Vec<&RequestTally> = all.iter().copied().filter(|t| t.tcp == tcp).collect();
            let buckets: Vec<(f64, u64)> = (0..=LATENCY_BOUNDS_NS.len())
                .map(|i| {
                    let bound = LATENCY_BOUNDS_NS.get(i).map_or(f64::INFINITY, |&ns| ns as f64 / 1e9);
                    (bound, mine.iter().map(|t| t.buckets[i].load(Ordering::Relaxed)).sum())
                })
                .collect();
            let count: u64 = buckets.iter().map(|(_, n)| n).sum();
            if count == 0 {
                continue;
            }
            let sum_ns: u64 = mine.iter().map(|t| t.latency_sum_ns.load(Ordering::Relaxed)).sum();
            durations.encode_family(&TransportLabels { transport: transport(tcp) })?.encode_histogram::<NoLabelSet>(
                sum_ns as f64 / 1e9,
                count,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}

fn programming_histogram() -> Histogram {
    // 1 ms .. ~65 s: API timestamps have one-second resolution, so most values land near 1 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("headless_dns");
        let requests = Arc::new(RequestTallies { tcp: RequestTally::new(true), workers: Mutex::default() });
        registry.register_collector(Box::new(requests.clone()));
        let answers = Arc::new(AnswerCounts::default());
        registry.register_collector(Box::new(answers.clone()));
        let index_names = Family::<RecordKindLabels, Gauge>::default();
        registry.register("index_names", "Names held in the index, by record kind", index_names.clone());
        let skipped_names = Gauge::default();
        registry.register(
            "skipped_names",
            "Names never served because a label exceeds 63 or a name 253 octets",
            skipped_names.clone(),
        );
        let watch_events = Family::<WatchEventLabels, Counter>::default();
        registry.register("watch_events", "Watch events received, by kind and event", watch_events.clone());
        let watch_errors = Family::<KindLabels, Counter>::default();
        registry.register("watch_errors", "Watch errors (each is retried with backoff)", watch_errors.clone());
        let watch_restarts = Family::<KindLabels, Counter>::default();
        registry.register("watch_restarts", "Relists after the first full list", watch_restarts.clone());
        let streaming_list_fallbacks = Family::<KindLabels, Counter>::default();
        registry.register(
            "streaming_list_fallbacks",
            "Watches that fell back to paged lists because the API server does not offer streaming lists",
            streaming_list_fallbacks.clone(),
        );
        let watch_last_event_age = Family::<KindLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "watch_last_event_age_seconds",
            "Seconds since each watch last received an event",
            watch_last_event_age.clone(),
        );
        let programming_latency =
            Family::<ProgrammingLabels, Histogram>::new_with_constructor(programming_histogram as fn() -> Histogram);
        registry.register(
            "programming_latency_seconds",
            "From an object's change time in the API to the changed answer being served",
            programming_latency.clone(),
        );
        let manifest_errors = Counter::default();
        registry.register(
            "manifest_errors",
            "Manifest documents that could not be used, counted at every reload that reads them; the \
             file's last good objects keep serving",
            manifest_errors.clone(),
        );
        let expected_missing = Gauge::default();
        registry.register(
            "expected_names_missing",
            "Pod names StatefulSets expect that have no address now",
            expected_missing.clone(),
        );
        let transfers = Family::<TransferLabels, Counter>::default();
        registry.register("transfers", "Zone transfers served, by kind, zone and outcome", transfers.clone());
        let transfer_bytes = Family::<ZoneLabels, Counter>::default();
        registry.register("transfer_bytes", "Octets of zone transfer messages sent, by zone", transfer_bytes.clone());
        let zone_serial = Family::<ZoneLabels, Gauge>::default();
        registry.register("zone_serial", "The SOA serial of each transferable zone", zone_serial.clone());
        let journal_entries = Gauge::default();
        registry.register("journal_entries", "Differences held in the zone transfer journal", journal_entries.clone());
        let journal_bytes = Gauge::default();
        registry.register("journal_bytes", "Octets the zone transfer journal holds (estimated)", journal_bytes.clone());
        let journal_oldest_serial = Gauge::default();
        registry.register(
            "journal_oldest_serial",
            "The oldest serial an incremental zone transfer (IXFR) can start from",
            journal_oldest_serial.clone(),
        );
        let notifies = Family::<NotifyLabels, Counter>::default();
        registry.register("notifies", "NOTIFY messages, by secondary and outcome", notifies.clone());
        Self {
            registry,
            transfers,
            transfer_bytes,
            zone_serial,
            journal_entries,
            journal_bytes,
            journal_oldest_serial,
            notifies,
            requests,
            index_names,
            skipped_names,
            watch_events,
            watch_errors,
            watch_restarts,
            streaming_list_fallbacks,
            watch_last_event_age,
            programming_latency,
            answers,
            manifest_errors,
            expected_missing,
        }
    }

    /// Records one request answered over TCP, in the tally every TCP connection shares (UDP
    /// workers count into tallies of their own, from [`Metrics::request_tally`]).
    pub fn observe_tcp_request(
        &self,
        qtype: Option<hickory_proto::rr::RecordType>,
        rcode: hickory_proto::op::ResponseCode,
        elapsed: Duration,
    ) {
        self.requests.tcp.observe(qtype, rcode, Some(elapsed));
    }

    /// A UDP request tally of the caller's own, counted at every scrape from now on: a UDP
    /// worker takes one as it starts and records into it alone.
    pub fn request_tally(&self) -> Arc<RequestTally> {
        let tally = Arc::new(RequestTally::new(false));
        self.requests.workers.lock().unwrap_or_else(|e| e.into_inner()).push(tally.clone());
        tally
    }

    /// The Prometheus text exposition, with state gauges refreshed from `index` and `health`.
    pub fn encode(&self, index: &Index, health: &Health) -> String {
        for (record, count) in index.counts_by_kind() {
            self.index_names.get_or_create(&RecordKindLabels { record }).set(count as i64);
        }
        self.skipped_names.set(index.skipped() as i64);
        self.expected_missing.set(index.missing_expected(|_| {}) as i64);
        for (kind, w) in health.snapshot() {
            if let Some(at) = w.last_event {
                self.watch_last_event_age.get_or_create(&KindLabels { kind }).set(at.elapsed().as_secs_f64());
            }
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// One thread's counts of replies that go with TC=1 (by transport: UDP, TCP) and of negative
/// answers for names a StatefulSet expects. Written by its thread alone (relaxed adds on a line of
/// its own), read at scrape: a shared counter, and a counter family's lock, are cache lines every
/// UDP worker would write, as the request counts were before [`RequestTally`].
#[derive(Debug, Default)]
#[repr(align(128))]
struct ThreadCounts {
    truncated: [AtomicU64; 2],
    expected_negatives: AtomicU64,
}

/// Every answering thread's [`ThreadCounts`]: the collector of `truncated_replies_total` and
/// `expected_negatives_total`.
#[derive(Debug, Default)]
struct AnswerCounts {
    /// The counts of the threads alive, and the totals of those that have exited (truncated by
    /// transport, expected negatives): under one lock, so that a scrape never sees a thread's
    /// counts twice or not at all while it exits, and a counter never goes back.
    threads: Mutex<(Vec<Arc<ThreadCounts>>, [u64; 3])>,
}

impl AnswerCounts {
    /// New counts for a thread, summed at every scrape from now on.
    fn register(&self) -> Arc<ThreadCounts> {
        let counts = Arc::new(ThreadCounts::default());
        self.threads.lock().unwrap_or_else(|e| e.into_inner()).0.push(counts.clone());
        counts
    }

    /// Folds an exiting thread's counts into the totals of exited threads.
    fn retire(&self, counts: &Arc<ThreadCounts>) {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let (live, retired) = &mut *threads;
        live.retain(|c| !Arc::ptr_eq(c, counts));
        for (total, n) in retired.iter_mut().zip(counts.values()) {
            *total += n;
        }
    }

    /// Truncated replies over UDP and TCP, and expected negatives, over every thread.
    fn totals(&self) -> [u64; 3] {
        let threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let (live, mut sum) = (&threads.0, threads.1);
        for counts in live {
            for (total, n) in sum.iter_mut().zip(counts.values()) {
                *total += n;
            }
        }
        sum
    }
}

impl ThreadCounts {
    /// Truncated over UDP, over TCP, expected negatives.
    fn values(&self) -> [u64; 3] {
        let [udp, tcp] = &self.truncated;
        [udp, tcp, &self.expected_negatives].map(|c| c.load(Ordering::Relaxed))
    }
}

impl Collector for AnswerCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let [udp, tcp, expected] = self.totals();
        let mut truncated = encoder.encode_descriptor(
            "truncated_replies",
            "Replies sent with TC=1 because the answer did not fit (UDP: the client retries over TCP; \
             TCP: over 65,535 octets, as many whole records as fit)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        // A transport appears once a reply over it was truncated, as a counter family's would.
        for (transport, n) in [("udp", udp), ("tcp", tcp)] {
            if n > 0 {
                truncated
                    .encode_family(&TransportLabels { transport })?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        encoder
            .encode_descriptor(
                "expected_negatives",
                "Negative answers for names a StatefulSet expects (pod missing, Pending, not Ready or \
                 terminating), sent with expected-negative-ttl",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&expected, None)?;
        Ok(())
    }
}

/// This thread's [`ThreadCounts`] in the process-wide metrics, folded into the exited threads'
/// totals as the thread exits.
struct LocalCounts(Arc<ThreadCounts>);

impl Drop for LocalCounts {
    fn drop(&mut self) {
        metrics().answers.retire(&self.0);
    }
}

thread_local! {
    static LOCAL_COUNTS: LocalCounts = LocalCounts(metrics().answers.register());
}

/// Adds one to the counter `which` (0: truncated over UDP, 1: over TCP, 2: expected negatives)
/// of the calling thread's [`ThreadCounts`], or, while the thread exits, straight to the exited
/// threads' totals.
#[inline]
fn count_here(which: usize, counter: fn(&ThreadCounts) -> &AtomicU64) {
    let counted = LOCAL_COUNTS.try_with(|local| counter(&local.0).fetch_add(1, Ordering::Relaxed));
    if counted.is_err() {
        metrics().answers.threads.lock().unwrap_or_else(|e| e.into_inner()).1[which] += 1;
    }
}

/// Counts a reply sent with TC=1 because the answer did not fit, over TCP or UDP, in the calling
/// thread's own counts (`truncated_replies_total`).
pub fn count_truncated(over_tcp: bool) {
    if over_tcp {
        count_here(1, |c| &c.truncated[1]);
    } else {
        count_here(0, |c| &c.truncated[0]);
    }
}

/// Counts a negative answer for a name a StatefulSet expects, in the calling thread's own counts
/// (`expected_negatives_total`).
pub fn count_expected_negative() {
    count_here(2, |c| &c.expected_negatives);
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// One UDP request in this many has its latency measured.
pub const LATENCY_SAMPLE: u64 = 8;

/// Query types with their own label; the last entry stands for every other type.
const QTYPES: [(Option<hickory_proto::rr::RecordType>, &str); 16] = {
    use hickory_proto::rr::RecordType as T;
    [
        (Some(T::A), "A"),
        (Some(T::AAAA), "AAAA"),
        (Some(T::SRV), "SRV"),
        (Some(T::PTR), "PTR"),
        (Some(T::SOA), "SOA"),
        (Some(T::NS), "NS"),
        (Some(T::TXT), "TXT"),
        (Some(T::CNAME), "CNAME"),
        (Some(T::ANY), "ANY"),
        (Some(T::AXFR), "AXFR"),
        (Some(T::IXFR), "IXFR"),
        (Some(T::HTTPS), "HTTPS"),
        (Some(T::SVCB), "SVCB"),
        (Some(T::MX), "MX"),
        (Some(T::CAA), "CAA"),
        (None, "other"),
    ]
};

/// Response codes with their own label; the last entry stands for every other code.
const RCODES: [(Option<hickory_proto::op::ResponseCode>, &str); 8] = {
    use hickory_proto::op::ResponseCode as R;
    [
        (Some(R::NoError), "NOERROR"),
        (Some(R::FormErr), "FORMERR"),
        (Some(R::ServFail), "SERVFAIL"),
        (Some(R::NXDomain), "NXDOMAIN"),
        (Some(R::NotImp), "NOTIMP"),
        (Some(R::Refused), "REFUSED"),
        (Some(R::BADVERS), "BADVERS"),
        (None, "other"),
    ]
};

fn qtype_index(t: hickory_proto::rr::RecordType) -> usize {
    QTYPES.iter().position(|(q, _)| *q == Some(t)).unwrap_or(QTYPES.len() - 1)
}

fn rcode_index(r: hickory_proto::op::ResponseCode) -> usize {
    RCODES.iter().position(|(c, _)| *c == Some(r)).unwrap_or(RCODES.len() - 1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RecordType;

    use super::*;

    /// The value of the exposition line that starts with `series` (labels included).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn truncations_and_expected_negatives_are_summed_over_threads_alive_and_exited() {
        let m = Metrics::new();
        let (a, b) = (m.answers.register(), m.answers.register());
        let text = m.encode(&Index::new(), &Health::default());
        // Nothing truncated yet: no series; no expected negative yet: zero.
        assert_eq!(value(&text, r#"headless_dns_truncated_replies_total{transport="udp"}"#), None, "{text}");
        assert_eq!(value(&text, "headless_dns_expected_negatives_total"), Some(0.0), "{text}");
        a.truncated[0].fetch_add(2, Ordering::Relaxed);
        b.truncated[0].fetch_add(1, Ordering::Relaxed);
        b.truncated[1].fetch_add(4, Ordering::Relaxed);
        a.expected_negatives.fetch_add(5, Ordering::Relaxed);
        b.expected_negatives.fetch_add(6, Ordering::Relaxed);
        let scrape = |m: &Metrics| {
            let text = m.encode(&Index::new(), &Health::default());
            ["udp", "tcp"]
                .map(|t| value(&text, &format!(r#"headless_dns_truncated_replies_total{{transport="{t}"}}"#)))
                .into_iter()
                .chain([value(&text, "headless_dns_expected_negatives_total")])
                .collect::<Vec<_>>()
        };
        assert_eq!(scrape(&m), [Some(3.0), Some(4.0), Some(11.0)]);
        // A thread that exits keeps what it counted, once.
        m.answers.retire(&b);
        assert_eq!(scrape(&m), [Some(3.0), Some(4.0), Some(11.0)]);
        assert_eq!(m.answers.threads.lock().unwrap().0.len(), 1, "the exited thread's counts are let go");
        a.expected_negatives.fetch_add(1, Ordering::Relaxed);
        assert_eq!(scrape(&m), [Some(3.0), Some(4.0), Some(12.0)]);
    }

    #[test]
    fn each_thread_counts_into_its_own_counts_and_they_outlive_it() {
        // The process-wide metrics, which other tests count into meanwhile (a few each): what
        // these threads count must all be there, once, after they have exited.
        const N: u64 = 1_000_000;
        let before = metrics().answers.totals();
        let both = Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let both = both.clone();
                std::thread::spawn(move || {
                    for _ in 0..N {
                        count_expected_negative();
                    }
                    count_truncated(true);
                    let mine = LOCAL_COUNTS.with(|c| Arc::as_ptr(&c.0) as usize);
                    // Both threads are alive here: their counts cannot share an address.
                    both.wait();
                    mine
                })
            })
            .collect();
        let mine: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_ne!(mine[0], mine[1], "each thread has counts of its own");
        let after = metrics().answers.totals();
        let added = after[2] - before[2];
        assert!((2 * N..2 * N + 10_000).contains(&added), "expected negatives added once each: {added}");
        assert!(after[1] - before[1] >= 2, "TCP truncations");
    }

    #[test]
    fn request_tallies_are_summed_over_workers_and_kept_apart_by_transport() {
        let m = Metrics::new();
        let (w1, w2) = (m.request_tally(), m.request_tally());
        w1.observe(Some(RecordType::A), ResponseCode::NoError, Some(Duration::from_micros(5)));
        w2.observe(Some(RecordType::A), ResponseCode::NoError, None);
        w2.observe(Some(RecordType::A), ResponseCode::NoError, Some(Duration::from_micros(30)));
        w2.observe(Some(RecordType::CDS), ResponseCode::NXDomain, None);
        m.observe_tcp_request(Some(RecordType::A), ResponseCode::NoError, Duration::from_secs(1));
        let text = m.encode(&Index::new(), &Health::default());

        let req = |labels: &str| value(&text, &format!("headless_dns_requests_total{{{labels}}}"));
        assert_eq!(req(r#"qtype="A",rcode="NOERROR",transport="udp""#), Some(3.0), "{text}");
        assert_eq!(req(r#"qtype="other",rcode="NXDOMAIN",transport="udp""#), Some(1.0));
        assert_eq!(req(r#"qtype="A",rcode="NOERROR",transport="tcp""#), Some(1.0));
        // A label set nothing was counted under is not exported.
        assert_eq!(req(r#"qtype="AAAA",rcode="NOERROR",transport="udp""#), None);

        let dur = |suffix: &str, labels: &str| {
            value(&text, &format!("headless_dns_request_duration_seconds_{suffix}{{{labels}}}"))
        };
        assert_eq!(dur("count", r#"transport="udp""#), Some(2.0));
        assert!((dur("sum", r#"transport="udp""#).unwrap() - 35e-6).abs() < 1e-12);
        // Buckets are cumulative: 5 us falls in the first (10 us), 30 us in the third (40 us).
        assert_eq!(dur("bucket", r#"le="0.00001",transport="udp""#), Some(1.0), "{text}");
        assert_eq!(dur("bucket", r#"le="0.00002",transport="udp""#), Some(1.0));
        assert_eq!(dur("bucket", r#"le="0.00004",transport="udp""#), Some(2.0));
        assert_eq!(dur("bucket", r#"le="+Inf",transport="udp""#), Some(2.0));
        // One second is past the last bound (81.92 ms): +Inf only.
        assert_eq!(dur("bucket", r#"le="0.08192",transport="tcp""#), Some(0.0));
        assert_eq!(dur("bucket", r#"le="+Inf",transport="tcp""#), Some(1.0));
        assert_eq!(dur("count", r#"transport="tcp""#), Some(1.0));
    }
}
