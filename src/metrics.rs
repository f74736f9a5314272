//! Prometheus metrics, served as text at `/metrics` by [`crate::admin`].
//!
//! One process-wide [`Metrics`] (see [`metrics`]); the DNS handler, the sources and the reconciler
//! record into it. Gauges that describe state (index size, seconds since a watch's last event)
//! are computed when scraped, by [`Metrics::encode`].

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
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
    /// Requests answered.
    pub requests: Family<RequestLabels, Counter>,
    /// Time from a parsed request to its reply being handed to the socket.
    pub request_duration: Family<TransportLabels, Histogram>,
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
    /// Replies sent with TC=1 because the answer did not fit.
    pub truncated: Family<TransportLabels, Counter>,
    /// Manifest documents that could not be used (each reload counts each bad document again).
    pub manifest_errors: Counter,
    /// Negative answers for names a StatefulSet expects (sent with the short negative TTL).
    pub expected_negatives: Counter,
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
    /// Counter handles per (qtype, rcode, transport), so the answer path does not hash labels.
    request_cache: Vec<OnceLock<Counter>>,
}

fn latency_histogram() -> Histogram {
    // 10 us .. ~80 ms.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 14))
}

fn programming_histogram() -> Histogram {
    // 1 ms .. ~65 s: API timestamps have one-second resolution, so most values land near 1 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("headless_dns");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "DNS requests answered, by query type, rcode and transport", requests.clone());
        let request_duration =
            Family::<TransportLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "request_duration_seconds",
            "Time to answer a DNS request, from parsed request to reply sent",
            request_duration.clone(),
        );
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
        let truncated = Family::<TransportLabels, Counter>::default();
        registry.register(
            "truncated_replies",
            "Replies sent with TC=1 because the answer did not fit (UDP: the client retries over TCP; \
             TCP: over 65,535 octets, as many whole records as fit)",
            truncated.clone(),
        );
        let manifest_errors = Counter::default();
        registry.register(
            "manifest_errors",
            "Manifest documents that could not be used, counted at every reload that reads them; the \
             file's last good objects keep serving",
            manifest_errors.clone(),
        );
        let expected_negatives = Counter::default();
        registry.register(
            "expected_negatives",
            "Negative answers for names a StatefulSet expects (pod missing, Pending, not Ready or terminating), \
             sent with expected-negative-ttl",
            expected_negatives.clone(),
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
            request_duration,
            index_names,
            skipped_names,
            watch_events,
            watch_errors,
            watch_restarts,
            streaming_list_fallbacks,
            watch_last_event_age,
            programming_latency,
            truncated,
            manifest_errors,
            expected_negatives,
            expected_missing,
            request_cache: (0..QTYPES.len() * RCODES.len() * 2).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Records one answered request; `elapsed` when its latency was measured (the UDP path
    /// samples one request in [`LATENCY_SAMPLE`] to keep clock reads off the hot path).
    pub fn observe_request(
        &self,
        qtype: Option<hickory_proto::rr::RecordType>,
        rcode: hickory_proto::op::ResponseCode,
        tcp: bool,
        elapsed: Option<Duration>,
    ) {
        let (q, r) = (qtype.map_or(QTYPES.len() - 1, qtype_index), rcode_index(rcode));
        let t = usize::from(tcp);
        let slot = (q * RCODES.len() + r) * 2 + t;
        let transport = if tcp { "tcp" } else { "udp" };
        self.request_cache[slot]
            .get_or_init(|| {
                let labels = RequestLabels { qtype: QTYPES[q].1, rcode: RCODES[r].1, transport };
                self.requests.get_or_create(&labels).clone()
            })
            .inc();
        if let Some(elapsed) = elapsed {
            self.request_duration.get_or_create(&TransportLabels { transport }).observe(elapsed.as_secs_f64());
        }
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
