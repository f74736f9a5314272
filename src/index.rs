//! The served names: one concurrent map from a lower-cased name *relative to the zone*
//! (`web-0.nginx.default.svc`) to the data that answers it, and one from an address to the names
//! its PTR records point at. This is the only thing the DNS side reads; keys are zone-relative so
//! that every configured zone serves the same records.
//!
//! Writers (the reconciler, fed by either source) publish whole owners (a Service, or a Pod for
//! verified pod records) with [`Index::publish`] and [`Index::withdraw`]; each name is replaced
//! atomically, so a name whose data did not change is never absent, not even for an instant.
//! Empty non-terminals (`svc`, `<ns>.svc`, `<ns>.pod`, `_tcp.<svc>.<ns>.svc`) are entries with no
//! data so that they answer NODATA, never NXDOMAIN (RFC 8020 section 2: NXDOMAIN means nothing
//! exists at or below the name).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use foldhash::fast::RandomState;
use hickory_proto::rr::Name;
use ipnet::IpNet;
use smallvec::SmallVec;

use crate::model::ObjectKey;

/// One SRV record, its target relative to the zone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SrvData {
    /// Priority (RFC 2782).
    pub priority: u16,
    /// Weight (RFC 2782).
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target name relative to the zone (`web-0.nginx.default.svc`), shared with the name's key.
    pub target: Arc<str>,
}

/// A name's SRV records, sorted. Shared: a Service with one named port has the same records at
/// its own name and at `_<port>._<proto>`, held once. Empty costs no allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SrvList(Option<Arc<[SrvData]>>);

impl std::ops::Deref for SrvList {
    type Target = [SrvData];

    fn deref(&self) -> &[SrvData] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl From<Vec<SrvData>> for SrvList {
    fn from(list: Vec<SrvData>) -> Self {
        Self((!list.is_empty()).then(|| list.into()))
    }
}

/// What one name answers. All empty: the name exists but has no data (an empty non-terminal).
/// The address lists hold up to two addresses inline, so that a pod's name (one address per
/// family) is rebuilt from its compact index entry without an allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameData {
    /// A records, in a stable order, without duplicates.
    pub v4: SmallVec<[Ipv4Addr; 2]>,
    /// AAAA records, in a stable order, without duplicates.
    pub v6: SmallVec<[Ipv6Addr; 1]>,
    /// A CNAME target (ExternalName Services, absolute); when set, no other data is held. Boxed:
    /// a `Name` is large and almost every entry has none.
    pub cname: Option<Box<Name>>,
    /// SRV records.
    pub srv: SrvList,
    /// The topology zone of each record, on the name of a headless Service when the `zonal`
    /// option is on (and only there: its presence marks a Service that has zone-pinned names).
    pub zones: Option<Arc<ZoneTags>>,
}

impl NameData {
    /// True when the name holds no record at all.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty() && self.cname.is_none() && self.srv.is_empty()
    }

    /// The records in topology zone `zone` (CoreDNS `zonal`: `<zone>.pin._zone.<svc>`), their SRV
    /// weight shared out again among those left; `None` when no record is in that zone or the
    /// records carry no zones.
    pub fn in_zone(&self, zone: &str) -> Option<NameData> {
        let tags = self.zones.as_deref()?;
        let want = u8::try_from(tags.zones.binary_search_by(|z| (**z).cmp(zone)).ok()?).ok()?;
        let (of_v4, rest) = tags.of.split_at(self.v4.len().min(tags.of.len()));
        let (of_v6, of_srv) = rest.split_at(self.v6.len().min(rest.len()));
        let pick = |of: &[u8], i: usize| of.get(i) == Some(&want);
        let mut srv: Vec<SrvData> =
            self.srv.iter().enumerate().filter(|(i, _)| pick(of_srv, *i)).map(|(_, r)| r.clone()).collect();
        spread_weight(&mut srv);
        Some(NameData {
            v4: self.v4.iter().enumerate().filter(|(i, _)| pick(of_v4, *i)).map(|(_, ip)| *ip).collect(),
            v6: self.v6.iter().enumerate().filter(|(i, _)| pick(of_v6, *i)).map(|(_, ip)| *ip).collect(),
            srv: srv.into(),
            ..Default::default()
        })
    }
}

/// Gives each record of an SRV set the same share of weight, as CoreDNS does (`weight = 100 / n`,
/// at least 1; RFC 2782 allows any split).
pub fn spread_weight(srv: &mut [SrvData]) {
    let weight = (100 / srv.len().max(1)).max(1) as u16;
    for r in srv.iter_mut() {
        r.weight = weight;
    }
}

/// The topology zones of a headless Service's records, for the `zonal` option (CoreDNS's
/// `zonal`, PR #8388). `<zone>.pin._zone.<svc>.<ns>.svc` answers the subset of the Service's
/// records in one zone; that subset is derived at query time from these tags
/// ([`NameData::in_zone`]) rather than held as names of its own: one small allocation per Service
/// instead of a name and its data per zone (which cost 17 MiB at 150,000 pods in three zones).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZoneTags {
    /// The distinct zones, sorted (at most 255; records in further zones count as in none).
    zones: Box<[Arc<str>]>,
    /// The position in `zones` of the zone of each A record, then of each AAAA record, then of
    /// each SRV record, in the order [`NameData`] holds them; `u8::MAX`: no zone.
    of: Box<[u8]>,
}

impl ZoneTags {
    /// Tags the records of `data`: `of_ip` gives an address's zone, `of_target` an SRV target's.
    pub fn new<'a>(
        data: &NameData,
        of_ip: impl Fn(IpAddr) -> Option<&'a Arc<str>>,
        of_target: impl Fn(&str) -> Option<&'a Arc<str>>,
    ) -> Self {
        let v4 = data.v4.iter().map(|ip| of_ip(IpAddr::V4(*ip)));
        let v6 = data.v6.iter().map(|ip| of_ip(IpAddr::V6(*ip)));
        let each: Vec<Option<&Arc<str>>> = v4.chain(v6).chain(data.srv.iter().map(|r| of_target(&r.target))).collect();
        let mut zones: Vec<Arc<str>> = each.iter().flatten().map(|z| Arc::clone(z)).collect();
        zones.sort_unstable();
        zones.dedup();
        zones.truncate(usize::from(u8::MAX));
        let of = each
            .iter()
            .map(|z| z.and_then(|z| zones.binary_search(z).ok()).and_then(|i| u8::try_from(i).ok()).unwrap_or(u8::MAX))
            .collect();
        Self { zones: zones.into(), of }
    }

    /// Whether `zone` names some zone's ancestor below the directive: the empty non-terminals of
    /// dotted zones (`b` of zone `a.b`).
    pub fn has_below(&self, zone: &str) -> bool {
        self.zones.iter().any(|z| z.strip_suffix(zone).is_some_and(|head| head.ends_with('.')))
    }
}

/// A name's data as the index holds it: most names are a pod's, holding one IPv4 address, or
/// empty non-terminals; those are held in the map's entry, without an allocation of their own. The
/// zone-transfer journal keeps these values as they are (cheap to clone, compared by content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// No data (an empty non-terminal).
    Empty,
    /// One A record and nothing else.
    A(Ipv4Addr),
    /// Anything else.
    Data(Arc<NameData>),
}

impl Stored {
    fn new(data: NameData) -> Self {
        if data.is_empty() {
            Stored::Empty
        } else if data.v4.len() == 1
            && data.v6.is_empty()
            && data.srv.is_empty()
            && data.cname.is_none()
            && data.zones.is_none()
        {
            Stored::A(data.v4[0])
        } else {
            Stored::Data(Arc::new(data))
        }
    }

    /// The data, shared or rebuilt without an allocation.
    pub fn found(&self) -> Found {
        match self {
            Stored::Empty => Found::Owned(NameData::default()),
            Stored::A(ip) => {
                let mut v4 = SmallVec::new();
                v4.push(*ip); // inline: no allocation
                Found::Owned(NameData { v4, ..Default::default() })
            }
            Stored::Data(d) => Found::Shared(Arc::clone(d)),
        }
    }

    /// Whether the name holds no record (an empty non-terminal).
    pub fn is_empty(&self) -> bool {
        matches!(self, Stored::Empty)
    }

    /// The name's IPv4 addresses, borrowed.
    pub fn v4(&self) -> &[Ipv4Addr] {
        match self {
            Stored::Empty => &[],
            Stored::A(ip) => std::slice::from_ref(ip),
            Stored::Data(d) => &d.v4,
        }
    }

    /// The name's IPv6 addresses, borrowed.
    pub fn v6(&self) -> &[Ipv6Addr] {
        match self {
            Stored::Data(d) => &d.v6,
            _ => &[],
        }
    }

    /// Whether the name is a CNAME.
    pub fn is_cname(&self) -> bool {
        matches!(self, Stored::Data(d) if d.cname.is_some())
    }

    fn same_as(&self, data: &NameData) -> bool {
        match self {
            Stored::Empty => data.is_empty(),
            Stored::A(ip) => {
                *data.v4 == [*ip]
                    && data.v6.is_empty()
                    && data.srv.is_empty()
                    && data.cname.is_none()
                    && data.zones.is_none()
            }
            Stored::Data(d) => **d == *data,
        }
    }
}

/// A looked-up name's data: shared with the index, or rebuilt (on the stack, without an
/// allocation) from a compact entry. Dereferences to [`NameData`].
#[derive(Debug, Clone)]
pub enum Found {
    /// Held by the index.
    Shared(Arc<NameData>),
    /// Rebuilt from a compact entry, or computed rather than stored.
    Owned(NameData),
}

impl std::ops::Deref for Found {
    type Target = NameData;

    fn deref(&self) -> &NameData {
        match self {
            Found::Shared(d) => d,
            Found::Owned(d) => d,
        }
    }
}

impl From<NameData> for Found {
    fn from(data: NameData) -> Self {
        Found::Owned(data)
    }
}

/// One PTR claim: `ip` points at the zone-relative `name`; lower `rank` sorts first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PtrEntry {
    /// The address.
    pub ip: IpAddr,
    /// 0: a headless endpoint's own hostname; 1: another endpoint name; 2: a Service name.
    pub rank: u8,
    /// The zone-relative name, shared with the name's key.
    pub name: Arc<str>,
}

/// The zone-relative names an address points at, best (lowest rank, then smallest name) first;
/// one entry per claim, so a name two owners claim appears twice, side by side.
pub type PtrTargets = Arc<[(u8, Arc<str>)]>;

/// Everything one owner publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Names and their data (zone-relative keys).
    pub names: Vec<(Arc<str>, NameData)>,
    /// PTR claims.
    pub ptrs: Vec<PtrEntry>,
}

/// Who published a set of names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A Service's names live under `<ns>.svc`.
    Service(ObjectKey),
    /// A Pod's verified record lives under `<ns>.pod`.
    Pod(ObjectKey),
}

impl Owner {
    fn namespace_key(&self) -> String {
        match self {
            Owner::Service(k) => format!("{}.svc", k.namespace),
            Owner::Pod(k) => format!("{}.pod", k.namespace),
        }
    }
}

/// The concurrent index of served names. Shared (`Arc`) between the writer and the DNS servers.
#[derive(Debug)]
pub struct Index {
    /// Keys are shared (`Arc<str>`) with the owners' bookkeeping, SRV targets and PTR lists, so
    /// each name's text is held once. Every query reads this map, from every UDP worker at once,
    /// so its reads write nothing shared: a lock-free map (papaya) whose readers only mark their
    /// own thread's slot, where a locked shard would have every reader write the shard lock's
    /// cache line and pull it from the core that read last. Hashed with foldhash (seeded at
    /// random per map), a fraction of SipHash's cost on these short keys.
    names: papaya::HashMap<Arc<str>, Stored, RandomState>,
    ptrs: DashMap<IpAddr, PtrTargets>,
    /// Reverse-tree networks (octet/nibble aligned) with at least one PTR address below them:
    /// the empty non-terminals of the reverse zones.
    reverse_ents: DashMap<IpNet, usize>,
    /// Pod names StatefulSets expect, by the zone-relative name of the governing headless Service
    /// (`nginx.default.svc`): each StatefulSet's name and ordinal range. Held per StatefulSet, not
    /// per pod, so that a thousand-replica StatefulSet costs one entry.
    /// Negative answers read it (as they read `names`), so it is lock-free too; the single writer
    /// replaces a Service's list whole.
    expected: papaya::HashMap<Arc<str>, SmallVec<[Expected; 1]>, RandomState>,
    /// StatefulSets in `expected`: zero lets negative answers skip the lookup.
    expected_sets: AtomicUsize,
    /// Namespaces that exist and are served (the `namespaces` and `namespace-labels` options).
    exposed_namespaces: DashMap<String, ()>,
    /// Writer-side bookkeeping; only the single writer touches it, never readers.
    owners: Mutex<Owners>,
    serial: AtomicU32,
    /// Served data changed since the last [`Index::take_changes`].
    changed: AtomicBool,
    /// The names and addresses written since the last [`Index::take_changes`], kept only once
    /// [`Index::track_changes`] was called (a zone-transfer journal reads them).
    dirty: Mutex<Option<Dirty>>,
    /// Whether `dirty` is kept (spares writers the lock when no journal reads it).
    tracking: AtomicBool,
    synced: AtomicBool,
    skipped: AtomicU64,
}

/// The names and addresses written since the journal last read them.
#[derive(Debug, Default)]
struct Dirty {
    names: HashSet<Arc<str>>,
    ptrs: HashSet<IpAddr>,
}

/// What changed since the last [`Index::take_changes`]: each written name and address with what
/// it holds now (`None`: gone, or an empty non-terminal).
#[derive(Debug, Default, Clone)]
pub struct Changes {
    /// Names and their data now.
    pub names: Vec<(Arc<str>, Option<Stored>)>,
    /// Addresses and their PTR targets now.
    pub ptrs: Vec<(IpAddr, Option<PtrTargets>)>,
}

/// The SOA serial the clock gives now: hundredths of a second since the Unix epoch, modulo 2^32
/// (RFC 1982 serial arithmetic makes the wrap harmless: serials compare correctly within 2^31
/// hundredths, 248 days). Read from the clock, it grows across restarts without state on disk
/// and is comparable between replicas; one serial per publication window of at least 10 ms
/// never runs ahead of it.
pub fn clock_serial() -> u32 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (now.as_millis() / 10) as u32
}

/// RFC 1982 section 3.2: `a` is greater than `b` in 32-bit serial number arithmetic.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// The serial after `previous` when the clock reads `now`: the clock's value, or one more than
/// `previous` if the clock has not moved past it (RFC 1982: never backwards).
pub fn next_serial(previous: u32, now: u32) -> u32 {
    if serial_gt(now, previous) { now } else { previous.wrapping_add(1) }
}

/// What one owner holds: its name keys (sorted) and its PTR claims.
type Claims = (Box<[Arc<str>]>, Box<[PtrEntry]>);

/// One claimant of a shared name and the data it claims; `None` is the claimant that held the
/// name alone before a second one arrived (owners are not recorded per name, so that a name
/// costs no more than its map entry); it takes its owner's name when that owner republishes.
type Claim = (Option<Owner>, NameData);

/// The pods one StatefulSet expects under its governing Service: `<set>-<i>` for `i` in
/// `ordinals`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The StatefulSet's name.
    pub set: Arc<str>,
    /// The ordinals it expects pods for.
    pub ordinals: std::ops::Range<u32>,
}

#[derive(Debug, Default)]
struct Owners {
    /// The governing Service's key each StatefulSet (namespace, name) expects pods under.
    expected_by_set: HashMap<(Arc<str>, Arc<str>), Arc<str>>,
    by_owner: HashMap<Owner, Claims>,
    per_namespace: HashMap<String, usize>,
    /// Names claimed by more than one owner (two `hostNetwork` pods with one IP share their pod
    /// name): every claim. A name claimed once has no entry here.
    shared: HashMap<Arc<str>, Vec<Claim>>,
}

/// Records `owner`'s claim on a shared name (`mine`: it claimed the name before this publish).
fn claim(claims: &mut Vec<Claim>, owner: &Owner, mine: bool, data: NameData) {
    if let Some(c) = claims.iter_mut().find(|(o, _)| o.as_ref() == Some(owner)) {
        c.1 = data;
    } else if let (true, Some(c)) = (mine, claims.iter_mut().find(|(o, _)| o.is_none())) {
        *c = (Some(owner.clone()), data);
    } else {
        claims.push((Some(owner.clone()), data));
    }
}

/// What a name claimed by several owners serves: every address and SRV record any of them
/// claims, and the first CNAME claimed.
fn merged(claims: &[Claim]) -> NameData {
    // Zone tags are not merged: only a headless Service's own name carries them, and that name
    // has one claimant.
    let mut out = NameData::default();
    for (_, d) in claims {
        out.v4.extend(d.v4.iter().copied());
        out.v6.extend(d.v6.iter().copied());
        if out.cname.is_none() {
            out.cname.clone_from(&d.cname);
        }
    }
    out.v4.sort_unstable();
    out.v4.dedup();
    out.v6.sort_unstable();
    out.v6.dedup();
    if out.cname.is_some() {
        // RFC 1034 section 3.6.2: a CNAME stands alone.
        out.v4.clear();
        out.v6.clear();
        return out;
    }
    let mut srv: Vec<SrvData> = claims.iter().flat_map(|(_, d)| d.srv.iter().cloned()).collect();
    srv.sort();
    srv.dedup();
    out.srv = match claims.iter().find(|(_, d)| *d.srv == *srv) {
        Some((_, d)) => d.srv.clone(), // one claimant's list as it is: keep it shared
        None => srv.into(),
    };
    out
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

impl Index {
    /// An empty, not yet synced index. The SOA serial starts at the clock's ([`clock_serial`]).
    pub fn new() -> Self {
        let names = papaya::HashMap::with_hasher(RandomState::default());
        names.pin().insert("svc".into(), Stored::Empty);
        let now = clock_serial();
        Self {
            names,
            ptrs: DashMap::new(),
            reverse_ents: DashMap::new(),
            expected: papaya::HashMap::with_hasher(RandomState::default()),
            expected_sets: AtomicUsize::new(0),
            exposed_namespaces: DashMap::new(),
            owners: Mutex::new(Owners::default()),
            serial: AtomicU32::new(now),
            changed: AtomicBool::new(false),
            dirty: Mutex::new(None),
            tracking: AtomicBool::new(false),
            synced: AtomicBool::new(false),
            skipped: AtomicU64::new(0),
        }
    }

    /// Calls `f` with what a zone-relative key holds, borrowed in place: nothing is copied and no
    /// reference count is written (the fast path writes its reply from it). A value replaced
    /// meanwhile is freed only once `f` returns, so `f` should be short.
    pub fn with_name<R>(&self, key: &str, f: impl FnOnce(Option<&Stored>) -> R) -> R {
        f(self.names.pin().get(key))
    }

    /// Looks a zone-relative key up. The value is copied out (an `Arc`, or the compact data
    /// itself), so no lock is held after this returns.
    pub fn lookup(&self, key: &str) -> Option<Found> {
        self.names.pin().get(key).map(Stored::found)
    }

    /// The zone-relative names `ip` points at, best first.
    pub fn ptr(&self, ip: &IpAddr) -> Option<PtrTargets> {
        self.ptrs.get(ip).map(|r| Arc::clone(r.value()))
    }

    /// Whether some PTR address lies strictly below `net` (a reverse empty non-terminal).
    pub fn has_addresses_under(&self, net: &IpNet) -> bool {
        self.reverse_ents.contains_key(net)
    }

    /// Whether `namespace` is exposed under the `namespace-labels` option (always true when the
    /// option is off).
    pub fn namespace_exposed(&self, namespace: &str) -> bool {
        self.exposed_namespaces.contains_key(namespace)
    }

    /// Whether a StatefulSet expects a pod of this zone-relative name (`web-0.nginx.default.svc`):
    /// its first label is `<set>-<ordinal>` with the ordinal in the set's range, and the rest is
    /// the set's governing headless Service.
    pub fn is_expected(&self, key: &str) -> bool {
        if self.expected_sets.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let Some((label, service)) = key.split_once('.') else { return false };
        let Some((set, ordinal)) = label.rsplit_once('-') else { return false };
        // The controller writes ordinals in decimal without leading zeros.
        if ordinal.is_empty() || (ordinal.len() > 1 && ordinal.starts_with('0')) {
            return false;
        }
        let Ok(ordinal) = ordinal.parse::<u32>() else { return false };
        self.expected
            .pin()
            .get(service)
            .is_some_and(|sets| sets.iter().any(|e| &*e.set == set && e.ordinals.contains(&ordinal)))
    }

    /// Every expectation: the governing Service's key and what each StatefulSet expects under
    /// it (walks them all: for metrics and explanations, not for answers).
    pub fn expectations(&self) -> Vec<(Arc<str>, Expected)> {
        let mut out: Vec<(Arc<str>, Expected)> = self
            .expected
            .pin()
            .iter()
            .flat_map(|(service, sets)| sets.iter().map(|x| (service.clone(), x.clone())))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1.set).cmp(&(&b.0, &b.1.set)));
        out
    }

    /// Calls `f` with every expected name (zone-relative) that has no data now, and returns how
    /// many there were. Walks every expected ordinal: for metrics and explanations.
    pub fn missing_expected(&self, mut f: impl FnMut(&str)) -> usize {
        let names = self.names.pin();
        let mut name = String::new();
        let mut count = 0;
        for (service, e) in self.expectations() {
            for i in e.ordinals {
                name.clear();
                use std::fmt::Write as _;
                let _ = write!(name, "{}-{i}.{service}", e.set);
                if !names.contains_key(name.as_str()) {
                    count += 1;
                    f(&name);
                }
            }
        }
        count
    }

    /// Sets what StatefulSet `namespace/set` expects: pods under the governing Service whose
    /// zone-relative name is `service` (`nginx.default.svc`), or nothing (`None`: scaled to
    /// zero, no headless Service, a namespace not served, deleted). Returns whether it changed.
    pub fn set_expected(&self, namespace: &str, set: &str, expect: Option<(Arc<str>, std::ops::Range<u32>)>) -> bool {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let id: (Arc<str>, Arc<str>) = (namespace.into(), set.into());
        let old_service = owners.expected_by_set.get(&id).cloned();
        let expected = self.expected.pin();
        let old = old_service.as_ref().and_then(|svc| {
            expected
                .get(&**svc)
                .and_then(|v| v.iter().find(|e| &*e.set == set).map(|e| (svc.clone(), e.ordinals.clone())))
        });
        if old == expect {
            return false;
        }
        // Readers hold a Service's list while they read it: the writer replaces it whole.
        if let Some(svc) = old_service {
            if let Some(list) = expected.get(&*svc) {
                let rest: SmallVec<[Expected; 1]> = list.iter().filter(|e| &*e.set != set).cloned().collect();
                if rest.is_empty() {
                    expected.remove(&*svc);
                } else {
                    expected.insert(svc.clone(), rest);
                }
            }
            owners.expected_by_set.remove(&id);
            self.expected_sets.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some((svc, ordinals)) = expect {
            let mut list = expected.get(&*svc).cloned().unwrap_or_default();
            list.push(Expected { set: id.1.clone(), ordinals });
            expected.insert(svc.clone(), list);
            owners.expected_by_set.insert(id, svc);
            self.expected_sets.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Records whether `namespace` is exposed (writer side).
    /// An exposed namespace's `<ns>.svc` is an empty non-terminal even without a Service, as
    /// CoreDNS answers it (NODATA, never NXDOMAIN: RFC 8020 resolvers would otherwise hide the
    /// first Service created there for the negative TTL).
    pub fn set_namespace_exposed(&self, namespace: &str, exposed: bool) {
        let was = self.exposed_namespaces.contains_key(namespace);
        if was == exposed {
            return;
        }
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let ent = format!("{namespace}.svc");
        if exposed {
            self.exposed_namespaces.insert(namespace.to_owned(), ());
            let count = owners.per_namespace.entry(ent.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                self.names.pin().insert(ent.into(), Stored::Empty);
            }
        } else {
            self.exposed_namespaces.remove(namespace);
            if let Some(count) = owners.per_namespace.get_mut(&ent) {
                *count -= 1;
                if *count == 0 {
                    owners.per_namespace.remove(&ent);
                    self.names.pin().remove(ent.as_str());
                }
            }
        }
        drop(owners);
        self.bump_serial();
    }

    /// Entries by record kind, for metrics: names holding A, AAAA, SRV or CNAME data, empty
    /// non-terminals, and addresses with PTR records. Walks the whole index: call at scrape time.
    pub fn counts_by_kind(&self) -> [(&'static str, usize); 6] {
        let (mut a, mut aaaa, mut srv, mut cname, mut ent) = (0, 0, 0, 0, 0);
        for (_, stored) in self.names.pin().iter() {
            let d = stored.found();
            a += usize::from(!d.v4.is_empty());
            aaaa += usize::from(!d.v6.is_empty());
            srv += usize::from(!d.srv.is_empty());
            cname += usize::from(d.cname.is_some());
            ent += usize::from(d.is_empty());
        }
        [
            ("a", a),
            ("aaaa", aaaa),
            ("srv", srv),
            ("cname", cname),
            ("empty_non_terminal", ent),
            ("ptr", self.ptrs.len()),
        ]
    }

    /// Number of names held (including empty non-terminals).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no name is held at all (never the case: `svc` always exists).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The SOA serial answers carry. It changes when the publication window closes on changed
    /// data ([`Index::set_serial`]), not at each write, so that changes close together share it.
    pub fn serial(&self) -> u32 {
        self.serial.load(Ordering::Acquire)
    }

    /// Publishes a new SOA serial (the publisher, once a window's changes are published).
    pub fn set_serial(&self, serial: u32) {
        self.serial.store(serial, Ordering::Release);
    }

    /// From now on, records every name and address written, for [`Index::take_changes`] (a
    /// zone-transfer journal). Everything already held counts as written.
    pub fn track_changes(&self) {
        let owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let mut dirty = Dirty::default();
        dirty.names.extend(self.names.pin().keys().cloned());
        dirty.ptrs.extend(self.ptrs.iter().map(|e| *e.key()));
        *self.dirty.lock().unwrap_or_else(|e| e.into_inner()) = Some(dirty);
        self.tracking.store(true, Ordering::Relaxed);
        self.changed.store(true, Ordering::Release);
        drop(owners);
    }

    /// Whether served data changed since the last call, and (with [`Index::track_changes`]) what
    /// each written name and address holds now. Taken under the writer's lock, so the result is
    /// the index as it stood between two publishes, never in the middle of one.
    pub fn take_changes(&self) -> Option<Changes> {
        let owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        if !self.changed.swap(false, Ordering::AcqRel) {
            return None;
        }
        let mut out = Changes::default();
        if let Some(dirty) = self.dirty.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let names = self.names.pin();
            out.names = std::mem::take(&mut dirty.names)
                .into_iter()
                .map(|k| {
                    let now = names.get(&*k).cloned().filter(|s| !s.is_empty());
                    (k, now)
                })
                .collect();
            out.ptrs = std::mem::take(&mut dirty.ptrs)
                .into_iter()
                .map(|ip| (ip, self.ptrs.get(&ip).map(|e| Arc::clone(e.value()))))
                .collect();
        }
        drop(owners);
        Some(out)
    }

    /// Notes a written name for the journal (writers hold the owners' lock).
    fn touch(&self, key: &Arc<str>) {
        if !self.tracking.load(Ordering::Relaxed) {
            return;
        }
        if let Some(d) = self.dirty.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            d.names.insert(key.clone());
        }
    }

    /// Notes a written address for the journal.
    fn touch_ip(&self, ip: IpAddr) {
        if !self.tracking.load(Ordering::Relaxed) {
            return;
        }
        if let Some(d) = self.dirty.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            d.ptrs.insert(ip);
        }
    }

    /// Whether every source has completed its first full sync. Until then the DNS side answers
    /// SERVFAIL rather than a premature NXDOMAIN.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Marks the index as synced (or not).
    pub fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::Release);
    }

    /// Counts a name skipped because it would be malformed (label over 63 or name over 253 octets).
    pub fn count_skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// How many names were skipped as malformed since start.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Replaces everything `owner` publishes. New and changed names are written first, then
    /// names no longer published are released: an unchanged name is never missing, and a name
    /// another owner still claims stays (with that owner's data). Returns whether anything
    /// changed.
    pub fn publish(&self, owner: &Owner, published: Published) -> bool {
        let Published { mut names, mut ptrs } = published;
        if names.is_empty() {
            return self.withdraw(owner);
        }
        // One claim per name and owner: a name listed twice keeps its last data.
        names.sort_by(|a, b| a.0.cmp(&b.0));
        names.reverse();
        names.dedup_by(|a, b| a.0 == b.0);
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let Owners { by_owner, per_namespace, shared, .. } = &mut *owners;
        let previous = by_owner.remove(owner);
        let held_before =
            |key: &str| previous.as_ref().is_some_and(|(keys, _)| keys.binary_search_by(|k| (**k).cmp(key)).is_ok());
        let mut changed = false;
        let mut keys: Vec<Arc<str>> = Vec::with_capacity(names.len());
        for (key, data) in names {
            let mine = held_before(&key);
            // One lookup: the key the map already holds (kept, so the text stays shared after a
            // republish) and whether it already serves `data`.
            let held = self.names.pin().get_key_value(&*key).map(|(k, old)| (k.clone(), old.same_as(&data)));
            let (key, same) = match held {
                Some((held_key, same)) => (held_key, Some(same)),
                None => (key, None),
            };
            if let Some(claims) = shared.get_mut(&key) {
                claim(claims, owner, mine, data);
                let serve = merged(claims);
                changed |= self.store(&key, serve);
            } else if !mine && same.is_some() {
                // A second claimant: record both, so that the name stays until both let go.
                let first = self.names.pin().get(&*key).map(|e| NameData::clone(&e.found())).unwrap_or_default();
                let claims = vec![(None, first), (Some(owner.clone()), data)];
                changed |= self.store(&key, merged(&claims));
                shared.insert(key.clone(), claims);
            } else if same != Some(true) {
                self.names.pin().insert(key.clone(), Stored::new(data));
                self.touch(&key);
                changed = true;
            }
            keys.push(key);
        }
        keys.reverse();
        ptrs.sort();
        ptrs.dedup();
        let old_ptrs = match previous {
            Some((old_keys, old_ptrs)) => {
                for key in old_keys.iter() {
                    if keys.binary_search(key).is_err() {
                        self.release(shared, key, owner);
                        changed = true;
                    }
                }
                old_ptrs
            }
            None => {
                let count = per_namespace.entry(owner.namespace_key()).or_insert(0);
                *count += 1;
                if *count == 1 {
                    self.names.pin().insert(owner.namespace_key().into(), Stored::Empty);
                }
                Box::default()
            }
        };
        let ptrs: Box<[PtrEntry]> = if *old_ptrs == *ptrs {
            old_ptrs // equal: keep the held (shared) texts
        } else {
            self.update_ptrs(&old_ptrs, &ptrs);
            changed = true;
            ptrs.into_boxed_slice()
        };
        by_owner.insert(owner.clone(), (keys.into_boxed_slice(), ptrs));
        if changed {
            self.bump_serial();
        }
        changed
    }

    /// Releases every name `owner` publishes (a name another owner claims stays). Returns
    /// whether anything changed.
    pub fn withdraw(&self, owner: &Owner) -> bool {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let Owners { by_owner, per_namespace, shared, .. } = &mut *owners;
        let Some((old, old_ptrs)) = by_owner.remove(owner) else {
            return false;
        };
        for key in old.iter() {
            self.release(shared, key, owner);
        }
        self.update_ptrs(&old_ptrs, &[]);
        let ns_key = owner.namespace_key();
        if let Some(count) = per_namespace.get_mut(&ns_key) {
            *count -= 1;
            if *count == 0 {
                per_namespace.remove(&ns_key);
                self.names.pin().remove(ns_key.as_str());
            }
        }
        self.bump_serial();
        true
    }

    /// Serves `data` at `key` unless it already does. Returns whether it changed.
    fn store(&self, key: &Arc<str>, data: NameData) -> bool {
        let names = self.names.pin();
        if names.get(&**key).is_some_and(|held| held.same_as(&data)) {
            return false;
        }
        names.insert(key.clone(), Stored::new(data));
        self.touch(key);
        true
    }

    /// `owner` no longer claims `key`: the name goes with its last claimant; while others remain
    /// it serves what they claim.
    fn release(&self, shared: &mut HashMap<Arc<str>, Vec<Claim>>, key: &Arc<str>, owner: &Owner) {
        let Some(claims) = shared.get_mut(key) else {
            self.names.pin().remove(&**key);
            self.touch(key);
            return;
        };
        // The owner's own claim, else the one that held the name alone before it was shared
        // (which can only be this owner's: it held the name, and is not recorded by name).
        let at = claims
            .iter()
            .position(|(o, _)| o.as_ref() == Some(owner))
            .or_else(|| claims.iter().position(|(o, _)| o.is_none()));
        if let Some(i) = at {
            claims.remove(i);
        }
        let serve = merged(claims);
        if claims.len() <= 1 {
            shared.remove(key);
        }
        self.store(key, serve);
    }

    /// Applies an owner's PTR changes: copy-on-write of each touched address's sorted list. The
    /// list holds one entry per claim, so an entry two owners claim stays until both release it.
    fn update_ptrs(&self, old: &[PtrEntry], new: &[PtrEntry]) {
        let old_set: HashSet<&PtrEntry> = old.iter().collect();
        let new_set: HashSet<&PtrEntry> = new.iter().collect();
        let mut per_ip: BTreeMap<IpAddr, (Vec<&PtrEntry>, Vec<&PtrEntry>)> = BTreeMap::new();
        for e in old_set.difference(&new_set) {
            per_ip.entry(e.ip).or_default().0.push(e);
        }
        for e in new_set.difference(&old_set) {
            per_ip.entry(e.ip).or_default().1.push(e);
        }
        for (ip, (removed, added)) in per_ip {
            self.touch_ip(ip);
            let existed = self.ptrs.get(&ip).map(|r| r.value().to_vec());
            let mut list = existed.clone().unwrap_or_default();
            for e in removed {
                if let Some(i) = list.iter().position(|(rank, name)| e.rank == *rank && *e.name == **name) {
                    list.remove(i);
                }
            }
            list.extend(added.iter().map(|e| (e.rank, e.name.clone())));
            list.sort();
            if list.is_empty() {
                if self.ptrs.remove(&ip).is_some() {
                    self.count_reverse_ancestors(ip, false);
                }
            } else {
                self.ptrs.insert(ip, list.into());
                if existed.is_none() {
                    self.count_reverse_ancestors(ip, true);
                }
            }
        }
    }

    /// Counts `ip` in (or out of) every octet/nibble-aligned network above it.
    fn count_reverse_ancestors(&self, ip: IpAddr, add: bool) {
        let (step, max) = match ip {
            IpAddr::V4(_) => (8u8, 32u8),
            IpAddr::V6(_) => (4u8, 128u8),
        };
        let mut prefix = step;
        while prefix < max {
            if let Ok(net) = IpNet::new(ip, prefix).map(|n| n.trunc()) {
                if add {
                    *self.reverse_ents.entry(net).or_insert(0) += 1;
                } else if let Some(mut count) = self.reverse_ents.get_mut(&net) {
                    *count -= 1;
                    let empty = *count == 0;
                    drop(count);
                    if empty {
                        self.reverse_ents.remove(&net);
                    }
                }
            }
            prefix += step;
        }
    }

    /// Marks served data as changed: the publisher gives it a new serial when its window closes.
    fn bump_serial(&self) {
        self.changed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_tags_pick_each_zones_records_and_share_srv_weight_among_them() {
        let srv = |t: &str| SrvData { priority: 0, weight: 33, port: 80, target: t.into() };
        let mut data = NameData {
            v4: ["10.0.0.1", "10.0.0.2", "10.0.0.3"].iter().map(|s| s.parse().unwrap()).collect(),
            v6: ["fd00::1".parse().unwrap()].into_iter().collect(),
            srv: vec![srv("a.h.ns.svc"), srv("b.h.ns.svc"), srv("c.h.ns.svc")].into(),
            ..Default::default()
        };
        let (east, west): (Arc<str>, Arc<str>) = ("us-east.1a".into(), "west".into());
        let of_ip = |ip: IpAddr| match ip.to_string().as_str() {
            "10.0.0.1" | "fd00::1" => Some(&east),
            "10.0.0.3" => Some(&west),
            _ => None,
        };
        let of_target = |t: &str| match t {
            "a.h.ns.svc" => Some(&east),
            "c.h.ns.svc" => Some(&west),
            _ => None,
        };
        data.zones = Some(Arc::new(ZoneTags::new(&data, of_ip, of_target)));
        let e = data.in_zone("us-east.1a").unwrap();
        assert_eq!((e.v4.as_slice(), e.v6.as_slice()), (&["10.0.0.1".parse().unwrap()][..], &data.v6[..]));
        assert_eq!(*e.srv, [SrvData { weight: 100, ..srv("a.h.ns.svc") }]);
        let w = data.in_zone("west").unwrap();
        assert_eq!((w.v4.len(), w.v6.len(), w.srv[0].target.as_ref()), (1, 0, "c.h.ns.svc"));
        assert!(data.in_zone("east").is_none() && data.in_zone("").is_none());
        let tags = data.zones.as_deref().unwrap();
        assert!(tags.has_below("1a") && !tags.has_below("a") && !tags.has_below("west"));
        // Without tags (a Service that is not headless, or the option off): no zone at all.
        assert!(NameData { zones: None, ..data }.in_zone("west").is_none());
    }

    fn v4(ip: &str) -> NameData {
        NameData { v4: [ip.parse().unwrap()].into_iter().collect(), ..Default::default() }
    }

    fn svc(ns: &str, name: &str) -> Owner {
        Owner::Service(ObjectKey::new(ns, name))
    }

    fn names(list: &[(&str, &str)]) -> Published {
        Published { names: list.iter().map(|(k, ip)| ((*k).into(), v4(ip))).collect(), ptrs: vec![] }
    }

    #[test]
    fn publish_replaces_and_removes_names_and_bumps_serial() {
        let idx = Index::new();
        let s = svc("default", "nginx");
        assert!(idx.take_changes().is_none());
        assert!(idx.publish(&s, names(&[("a.nginx.default.svc", "10.0.0.1")])));
        assert!(idx.take_changes().is_some(), "a change marks the index changed");
        assert!(idx.lookup("default.svc").unwrap().is_empty());
        assert!(!idx.publish(&s, names(&[("a.nginx.default.svc", "10.0.0.1")])));
        assert!(idx.take_changes().is_none(), "no change, no new serial");
        assert!(idx.publish(&s, names(&[("b.nginx.default.svc", "10.0.0.2")])));
        assert!(idx.lookup("a.nginx.default.svc").is_none());
        assert_eq!(idx.lookup("b.nginx.default.svc").unwrap().v4[0].to_string(), "10.0.0.2");
    }

    #[test]
    fn compact_entries_read_back_as_published_and_compare_equal_on_republish() {
        let idx = Index::new();
        let s = svc("default", "nginx");
        let one = v4("10.0.0.1");
        let two =
            NameData { v4: ["10.0.0.1", "10.0.0.2"].iter().map(|ip| ip.parse().unwrap()).collect(), ..one.clone() };
        let dual = NameData { v6: ["fd00::1".parse().unwrap()].into_iter().collect(), ..one.clone() };
        let srv = NameData {
            srv: vec![SrvData { priority: 0, weight: 100, port: 80, target: "a.nginx.default.svc".into() }].into(),
            ..one.clone()
        };
        let all = [("a", one), ("b", two), ("c", dual), ("d", srv), ("e", NameData::default())];
        let published = || Published {
            names: all.iter().map(|(k, d)| (format!("{k}.nginx.default.svc").into(), d.clone())).collect(),
            ptrs: vec![],
        };
        assert!(idx.publish(&s, published()));
        for (k, d) in &all {
            assert_eq!(*idx.lookup(&format!("{k}.nginx.default.svc")).unwrap(), *d, "{k}");
        }
        assert!(matches!(idx.names.pin().get("a.nginx.default.svc").unwrap(), Stored::A(_)));
        assert!(matches!(idx.names.pin().get("e.nginx.default.svc").unwrap(), Stored::Empty));
        assert!(!idx.publish(&s, published()), "every entry compares equal to its data");
        let mut changed = published();
        changed.names[0].1 = v4("10.0.0.9");
        assert!(idx.publish(&s, changed));
        assert_eq!(idx.lookup("a.nginx.default.svc").unwrap().v4[..], ["10.0.0.9".parse::<Ipv4Addr>().unwrap()]);
    }

    #[test]
    fn withdrawing_the_last_owner_removes_the_namespace_non_terminal() {
        let idx = Index::new();
        idx.publish(&svc("ns1", "a"), names(&[("a.ns1.svc", "10.0.0.1")]));
        idx.publish(&svc("ns1", "b"), names(&[("b.ns1.svc", "10.0.0.2")]));
        idx.publish(&Owner::Pod(ObjectKey::new("ns1", "p")), names(&[("10-0-0-9.ns1.pod", "10.0.0.9")]));
        idx.withdraw(&svc("ns1", "a"));
        assert!(idx.lookup("ns1.svc").is_some());
        idx.publish(&svc("ns1", "b"), Published::default());
        assert!(idx.lookup("ns1.svc").is_none());
        assert!(idx.lookup("b.ns1.svc").is_none());
        assert!(idx.lookup("ns1.pod").is_some(), "pods count apart");
        assert!(idx.lookup("svc").is_some(), "svc always exists");
    }

    #[test]
    fn ptr_claims_sort_by_rank_then_name_and_follow_withdrawal() {
        let idx = Index::new();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut a = names(&[("a.default.svc", "10.0.0.1")]);
        a.ptrs.push(PtrEntry { ip, rank: 2, name: "a.default.svc".into() });
        let mut b = names(&[("web-0.b.default.svc", "10.0.0.1")]);
        b.ptrs.push(PtrEntry { ip, rank: 0, name: "web-0.b.default.svc".into() });
        idx.publish(&svc("default", "a"), a);
        idx.publish(&svc("default", "b"), b);
        let got: Vec<String> = idx.ptr(&ip).unwrap().iter().map(|(_, n)| n.to_string()).collect();
        assert_eq!(got, ["web-0.b.default.svc", "a.default.svc"]);
        idx.withdraw(&svc("default", "b"));
        assert_eq!(idx.ptr(&ip).unwrap().len(), 1);
        idx.withdraw(&svc("default", "a"));
        assert!(idx.ptr(&ip).is_none());
    }

    fn pod(ns: &str, name: &str) -> Owner {
        Owner::Pod(ObjectKey::new(ns, name))
    }

    #[test]
    fn two_owners_claiming_one_name_keep_it_until_both_release_it() {
        // Two hostNetwork pods on one node share their pod name; every order of leaving.
        for first_leaves_by_withdraw in [true, false] {
            let idx = Index::new();
            let (a, b) = (pod("kube-system", "agent-a"), pod("kube-system", "agent-b"));
            let name = "10-0-0-5.kube-system.pod";
            assert!(idx.publish(&a, names(&[(name, "10.0.0.5")])));
            idx.publish(&b, names(&[(name, "10.0.0.5")]));
            // The first owner republishes (it is then known by name) and the second leaves.
            idx.publish(&a, names(&[(name, "10.0.0.5")]));
            if first_leaves_by_withdraw {
                idx.withdraw(&b);
            } else {
                idx.publish(&b, names(&[("10-0-0-6.kube-system.pod", "10.0.0.6")]));
            }
            assert_eq!(idx.lookup(name).unwrap().v4[..], ["10.0.0.5".parse::<Ipv4Addr>().unwrap()], "a remains");
            idx.withdraw(&a);
            assert!(idx.lookup(name).is_none(), "gone with its last claimant");
        }
        // The first claimant leaves first, without having republished.
        let idx = Index::new();
        let (a, b) = (pod("kube-system", "agent-a"), pod("kube-system", "agent-b"));
        idx.publish(&a, names(&[("10-0-0-5.kube-system.pod", "10.0.0.5")]));
        idx.publish(&b, names(&[("10-0-0-5.kube-system.pod", "10.0.0.5")]));
        idx.withdraw(&a);
        assert!(idx.lookup("10-0-0-5.kube-system.pod").is_some(), "b remains");
        idx.withdraw(&b);
        assert!(idx.lookup("10-0-0-5.kube-system.pod").is_none());
        assert!(idx.owners.lock().unwrap().shared.is_empty(), "no bookkeeping left behind");
    }

    #[test]
    fn a_name_claimed_with_different_data_serves_every_claim_and_then_the_one_left() {
        let idx = Index::new();
        let (a, b) = (svc("default", "a"), svc("default", "b"));
        idx.publish(&a, names(&[("x.default.svc", "10.0.0.1")]));
        idx.publish(&b, names(&[("x.default.svc", "10.0.0.2")]));
        let got =
            |idx: &Index| idx.lookup("x.default.svc").map(|d| d.v4.iter().map(|ip| ip.to_string()).collect::<Vec<_>>());
        assert_eq!(got(&idx).unwrap(), ["10.0.0.1", "10.0.0.2"]);
        idx.publish(&b, names(&[("x.default.svc", "10.0.0.3")]));
        assert_eq!(got(&idx).unwrap(), ["10.0.0.1", "10.0.0.3"]);
        idx.withdraw(&a);
        assert_eq!(got(&idx).unwrap(), ["10.0.0.3"]);
        idx.withdraw(&b);
        assert_eq!(got(&idx), None);
    }

    #[test]
    fn a_ptr_entry_two_owners_claim_stays_until_both_release_it() {
        let idx = Index::new();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let claim = |n: &str| {
            let mut p = names(&[(n, "10.0.0.1")]);
            p.ptrs.push(PtrEntry { ip, rank: 0, name: "web-0.nginx.default.svc".into() });
            p
        };
        idx.publish(&svc("default", "a"), claim("a.default.svc"));
        idx.publish(&svc("default", "b"), claim("b.default.svc"));
        idx.withdraw(&svc("default", "a"));
        assert_eq!(idx.ptr(&ip).unwrap().len(), 1, "b's claim remains");
        idx.withdraw(&svc("default", "b"));
        assert!(idx.ptr(&ip).is_none());
        assert!(!idx.has_addresses_under(&"10.0.0.0/8".parse().unwrap()));
    }

    #[test]
    fn a_name_listed_twice_by_one_owner_is_one_claim() {
        let idx = Index::new();
        let s = svc("default", "a");
        idx.publish(&s, names(&[("x.default.svc", "10.0.0.1"), ("x.default.svc", "10.0.0.2")]));
        assert_eq!(idx.lookup("x.default.svc").unwrap().v4[..], ["10.0.0.2".parse::<Ipv4Addr>().unwrap()]);
        idx.withdraw(&s);
        assert!(idx.lookup("x.default.svc").is_none());
        assert!(idx.owners.lock().unwrap().shared.is_empty());
    }

    #[test]
    fn expected_names_follow_their_statefulset() {
        let idx = Index::new();
        assert!(!idx.is_expected("web-0.nginx.default.svc"));
        assert!(idx.set_expected("default", "web", Some(("nginx.default.svc".into(), 0..3))));
        assert!(!idx.set_expected("default", "web", Some(("nginx.default.svc".into(), 0..3))), "unchanged");
        for (key, want) in [
            ("web-0.nginx.default.svc", true),
            ("web-2.nginx.default.svc", true),
            ("web-3.nginx.default.svc", false),
            ("web-01.nginx.default.svc", false),
            ("db-0.nginx.default.svc", false),
            ("web-0.other.default.svc", false),
            ("web-x.nginx.default.svc", false),
            ("nginx.default.svc", false),
        ] {
            assert_eq!(idx.is_expected(key), want, "{key}");
        }
        idx.set_expected("default", "db", Some(("nginx.default.svc".into(), 5..6)));
        assert!(idx.is_expected("db-5.nginx.default.svc") && idx.is_expected("web-1.nginx.default.svc"));
        idx.set_expected("default", "web", Some(("nginx.default.svc".into(), 0..1)));
        assert!(!idx.is_expected("web-1.nginx.default.svc"), "scaled down: an ordinary name again");
        assert_eq!(idx.expectations().len(), 2);
        idx.set_expected("default", "web", None);
        idx.set_expected("default", "db", None);
        assert!(idx.expectations().is_empty() && !idx.is_expected("db-5.nginx.default.svc"));
    }

    /// Readers on other threads, while one writer keeps changing a name's address (and its
    /// neighbours come and go), see the name at every read: the old address or the new one,
    /// never nothing and never a torn value.
    #[test]
    fn a_name_being_rewritten_never_disappears_for_concurrent_readers() {
        let idx = Arc::new(Index::new());
        let s = svc("default", "nginx");
        idx.publish(&s, names(&[("web-0.nginx.default.svc", "10.0.0.1")]));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (idx, stop) = (idx.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut reads = 0u64;
                    while !stop.load(Ordering::Relaxed) || reads < 1000 {
                        let seen = idx.with_name("web-0.nginx.default.svc", |d| d.map(|d| d.v4().to_vec()));
                        let v4 = seen.expect("the name is held at every read");
                        assert_eq!(v4.len(), 1);
                        assert_eq!(&v4[0].octets()[..3], &[10, 0, 0], "a published address");
                        assert!(idx.lookup("web-0.nginx.default.svc").is_some());
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for i in 0..20_000u32 {
            let ip = format!("10.0.0.{}", i % 250 + 1);
            let extra = format!("web-{}.nginx.default.svc", i % 7 + 1);
            let list: Vec<(&str, &str)> = if i % 2 == 0 {
                vec![("web-0.nginx.default.svc", &ip), (&extra, "10.0.1.1")]
            } else {
                vec![("web-0.nginx.default.svc", &ip)]
            };
            idx.publish(&s, names(&list));
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().expect("no reader panicked") >= 1000);
        }
    }
}
