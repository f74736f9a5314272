//! Versions of the served data for zone transfers: one immutable snapshot per SOA serial, and a
//! bounded journal of the differences between consecutive serials.
//!
//! The index is atomic per name only, and a transfer takes many messages. So a transfer never
//! reads the index: it reads a [`Snapshot`], two persistent ordered maps (`imbl::OrdMap`, a
//! B-tree with structural sharing) from name to data and from address to PTR targets. Taking a
//! snapshot is an `Arc` clone, O(1), and a snapshot never changes, so an AXFR started at serial N
//! sends exactly the data of serial N however long it runs and however the cluster changes
//! meanwhile; the next version shares every untouched node with it (a window's changes copy only
//! the paths to the changed keys). A journal replay onto a copied map would have cost a full copy
//! of the zone per transfer in flight; a persistent map costs a few tree nodes per change.
//!
//! The publisher ([`run`]) closes a window every `window` (default 100 ms): it takes what the
//! index changed ([`Index::take_changes`], read under the writer's lock, so never half a
//! publish), applies it to the current snapshot, records the difference as one [`Delta`], gives
//! it one new serial ([`next_serial`]) and only then makes that serial the one answers carry, so
//! that a secondary that sees the serial in an SOA answer can always transfer it. Every change in
//! a window shares one serial, one delta and one NOTIFY.
//!
//! Data flows one way: the index feeds the journal, the DNS side reads it.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use imbl::OrdMap;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::index::{Index, PtrTargets, Stored, clock_serial, next_serial};

/// Bounds on the journal of differences. When either is crossed, the oldest differences go: a
/// secondary further behind gets the whole zone (RFC 1995 section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalLimits {
    /// Most differences kept.
    pub entries: usize,
    /// Most octets the differences may take (an estimate: names, data and bookkeeping).
    pub bytes: usize,
}

impl Default for JournalLimits {
    fn default() -> Self {
        Self { entries: 1000, bytes: 16 << 20 }
    }
}

/// The served data at one serial. Cloning is cheap (persistent maps).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The SOA serial this data carries.
    pub serial: u32,
    /// Zone-relative names with data (empty non-terminals are left out: they hold no record).
    pub names: OrdMap<Arc<str>, Stored>,
    /// Addresses with PTR targets.
    pub ptrs: OrdMap<IpAddr, PtrTargets>,
}

/// One name's change: what it held before and what it holds after (`None`: nothing).
pub type NameChange = (Arc<str>, Option<Stored>, Option<Stored>);
/// One address's change: its PTR targets before and after.
pub type PtrChange = (IpAddr, Option<PtrTargets>, Option<PtrTargets>);

/// The difference between two consecutive serials: applied to the snapshot at `from`, it gives
/// the snapshot at `to`.
#[derive(Debug, Clone)]
pub struct Delta {
    /// The serial it starts from.
    pub from: u32,
    /// The serial it leads to.
    pub to: u32,
    /// Changed names, sorted.
    pub names: Vec<NameChange>,
    /// Changed addresses, sorted.
    pub ptrs: Vec<PtrChange>,
    /// Estimated octets held.
    pub bytes: usize,
}

/// The current snapshot and the differences that lead to it, oldest first; read together, so
/// that they always agree.
#[derive(Debug, Clone)]
pub struct Versions {
    /// The data at the current serial.
    pub snapshot: Snapshot,
    /// Consecutive differences ending at the current serial, oldest first.
    pub deltas: VecDeque<Arc<Delta>>,
    /// Octets the differences hold (estimated).
    pub bytes: usize,
}

impl Versions {
    /// The differences from `serial` to the current one, or `None` when `serial` is not in the
    /// journal (too old, from another replica, or unknown): the client needs the whole zone.
    pub fn since(&self, serial: u32) -> Option<Vec<Arc<Delta>>> {
        if serial == self.snapshot.serial {
            return Some(Vec::new());
        }
        let at = self.deltas.iter().position(|d| d.from == serial)?;
        Some(self.deltas.iter().skip(at).cloned().collect())
    }

    /// The oldest serial an incremental transfer can start from.
    pub fn oldest(&self) -> u32 {
        self.deltas.front().map_or(self.snapshot.serial, |d| d.from)
    }
}

/// The versions kept for zone transfers, and the announcements of new serials.
#[derive(Debug)]
pub struct Journal {
    versions: ArcSwap<Versions>,
    /// Set once the first window after the sync is published: before that the snapshot does not
    /// hold the zone yet.
    ready: std::sync::atomic::AtomicBool,
    limits: JournalLimits,
    serials: watch::Sender<u32>,
}

/// Estimated octets one change holds: the name, two values and the bookkeeping around them.
fn change_bytes(key: &str, values: usize) -> usize {
    key.len() + 48 + values * 32
}

impl Journal {
    /// A journal over `index`, which from now on records what it writes. It starts empty at the
    /// index's serial; the first window publishes everything already held.
    pub fn new(index: &Index, limits: JournalLimits) -> Self {
        index.track_changes();
        let snapshot = Snapshot { serial: index.serial(), names: OrdMap::new(), ptrs: OrdMap::new() };
        let (serials, _) = watch::channel(snapshot.serial);
        Self {
            versions: ArcSwap::from_pointee(Versions { snapshot, deltas: VecDeque::new(), bytes: 0 }),
            ready: std::sync::atomic::AtomicBool::new(false),
            limits,
            serials,
        }
    }

    /// The current versions (lock-free; a consistent pair of snapshot and journal).
    pub fn versions(&self) -> Arc<Versions> {
        self.versions.load_full()
    }

    /// New serials as they are published (for NOTIFY).
    pub fn subscribe(&self) -> watch::Receiver<u32> {
        self.serials.subscribe()
    }

    /// Whether the snapshot holds the zone: the index was synced and its contents published.
    /// Until then transfers get SERVFAIL, never an empty zone.
    pub fn is_ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The bounds.
    pub fn limits(&self) -> JournalLimits {
        self.limits
    }

    /// Closes one window: publishes what `index` changed as a new serial. Returns the serial
    /// published, or `None` when the zone contents did not change.
    pub fn publish(&self, index: &Index, now: u32) -> Option<u32> {
        let changes = index.take_changes();
        let ready = index.is_synced();
        let Some(changes) = changes else {
            self.ready.store(ready, std::sync::atomic::Ordering::Release);
            return None;
        };
        let old = self.versions.load_full();
        let mut snapshot = old.snapshot.clone();
        let mut names: Vec<NameChange> = Vec::new();
        let mut bytes = 0;
        for (key, now_data) in changes.names {
            let before = match &now_data {
                Some(v) => snapshot.names.insert(key.clone(), v.clone()),
                None => snapshot.names.remove(&key),
            };
            if before != now_data {
                bytes += change_bytes(&key, usize::from(before.is_some()) + usize::from(now_data.is_some()));
                names.push((key, before, now_data));
            }
        }
        let mut ptrs: Vec<PtrChange> = Vec::new();
        for (ip, now_targets) in changes.ptrs {
            let before = match &now_targets {
                Some(v) => snapshot.ptrs.insert(ip, v.clone()),
                None => snapshot.ptrs.remove(&ip),
            };
            if before != now_targets {
                let len = |t: &Option<PtrTargets>| t.as_ref().map_or(0, |t| t.iter().map(|(_, n)| n.len() + 24).sum());
                bytes += 64 + len(&before) + len(&now_targets);
                ptrs.push((ip, before, now_targets));
            }
        }
        if names.is_empty() && ptrs.is_empty() {
            // Nothing a transfer carries changed (an empty non-terminal, say): the serial stays,
            // so that the serial answers carry is always one a transfer can send.
            self.ready.store(ready, std::sync::atomic::Ordering::Release);
            return None;
        }
        let serial = next_serial(old.snapshot.serial, now);
        names.sort_by(|a, b| a.0.cmp(&b.0));
        ptrs.sort_by_key(|p| p.0);
        snapshot.serial = serial;
        let delta = Arc::new(Delta { from: old.snapshot.serial, to: serial, names, ptrs, bytes });
        let mut deltas = old.deltas.clone();
        let mut total = old.bytes;
        // The first publication after the sync fills the zone: nobody holds the empty zone it
        // starts from (transfers were SERVFAIL until now), so it is no difference to keep.
        if self.is_ready() {
            total += delta.bytes;
            deltas.push_back(delta);
        }
        while deltas.len() > self.limits.entries || (total > self.limits.bytes && deltas.len() > 1) {
            if let Some(d) = deltas.pop_front() {
                total -= d.bytes;
            }
        }
        if total > self.limits.bytes {
            // One difference larger than the whole bound: keep none (clients get the whole zone).
            deltas.clear();
            total = 0;
        }
        let m = crate::metrics::metrics();
        m.journal_entries.set(deltas.len() as i64);
        m.journal_bytes.set(total as i64);
        let versions = Versions { snapshot, deltas, bytes: total };
        m.journal_oldest_serial.set(i64::from(versions.oldest()));
        self.versions.store(Arc::new(versions));
        // Only now do answers carry the new serial: it can always be transferred.
        index.set_serial(serial);
        self.ready.store(ready, std::sync::atomic::Ordering::Release);
        self.serials.send_replace(serial);
        Some(serial)
    }
}

/// The publisher: every `window`, once the index is synced, gives what changed a new serial (and,
/// with a journal, a new snapshot and difference). Without a journal only the serial moves.
pub async fn run(index: Arc<Index>, journal: Option<Arc<Journal>>, window: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(window);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        if !index.is_synced() {
            continue;
        }
        match &journal {
            Some(journal) => {
                if let Some(serial) = journal.publish(&index, clock_serial()) {
                    debug!(serial, "published a new serial");
                }
            }
            None => {
                if index.take_changes().is_some() {
                    index.set_serial(next_serial(index.serial(), clock_serial()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{NameData, Owner, PtrEntry, Published};
    use crate::model::ObjectKey;

    fn owner(name: &str) -> Owner {
        Owner::Service(ObjectKey { namespace: "default".into(), name: name.into() })
    }

    fn publish(index: &Index, svc: &str, names: &[(&str, &str)]) {
        let names = names
            .iter()
            .map(|(k, ip)| {
                ((*k).into(), NameData { v4: [ip.parse().unwrap()].into_iter().collect(), ..Default::default() })
            })
            .collect();
        let ptrs = vec![PtrEntry { ip: "10.0.0.1".parse().unwrap(), rank: 0, name: "a.x.default.svc".into() }];
        index.publish(&owner(svc), Published { names, ptrs });
    }

    /// Applies `deltas` to `snap`, as a secondary applies an IXFR.
    fn apply(mut snap: Snapshot, deltas: &[Arc<Delta>]) -> Snapshot {
        for d in deltas {
            assert_eq!(d.from, snap.serial, "deltas are consecutive");
            for (k, before, after) in &d.names {
                assert_eq!(snap.names.get(k), before.as_ref(), "the delta starts where the snapshot is");
                match after {
                    Some(v) => snap.names.insert(k.clone(), v.clone()),
                    None => snap.names.remove(k),
                };
            }
            for (ip, before, after) in &d.ptrs {
                assert_eq!(snap.ptrs.get(ip), before.as_ref());
                match after {
                    Some(v) => snap.ptrs.insert(*ip, v.clone()),
                    None => snap.ptrs.remove(ip),
                };
            }
            snap.serial = d.to;
        }
        snap
    }

    #[test]
    fn serials_follow_rfc_1982_and_never_go_back() {
        assert!(crate::index::serial_gt(1, u32::MAX), "wraps");
        assert!(!crate::index::serial_gt(u32::MAX, 1));
        assert_eq!(next_serial(100, 200), 200, "the clock when it is ahead");
        assert_eq!(next_serial(200, 150), 201, "one more when the clock is behind");
        assert_eq!(next_serial(u32::MAX, 5), 5);
        assert_eq!(next_serial(u32::MAX, u32::MAX - 3), 0, "wrapping increment");
    }

    #[test]
    fn each_window_is_one_serial_and_deltas_compose_to_the_snapshot() {
        let index = Index::new();
        let journal = Journal::new(&index, JournalLimits::default());
        publish(&index, "z", &[("z.default.svc", "10.0.0.9")]);
        index.set_synced(true);
        let mut now = index.serial();
        let mut tick = |index: &Index| {
            now += 1;
            journal.publish(index, now)
        };
        // The first publication after the sync fills the zone: no difference is kept for it.
        tick(&index).expect("the zone is filled");
        assert!(journal.is_ready());
        assert!(journal.versions().deltas.is_empty(), "nobody holds the empty zone");
        assert!(journal.versions().snapshot.names.contains_key("z.default.svc"));
        let start = journal.versions().snapshot.clone();
        publish(&index, "x", &[("a.x.default.svc", "10.0.0.1"), ("x.default.svc", "10.0.0.1")]);
        publish(&index, "y", &[("y.default.svc", "10.0.0.2")]);
        let s1 = tick(&index).expect("a serial");
        assert_eq!(index.serial(), s1, "answers carry the published serial");
        assert!(tick(&index).is_none(), "nothing changed, no serial");
        let v1 = journal.versions();
        assert_eq!(v1.deltas.len(), 1, "two publishes in one window are one delta");
        publish(&index, "x", &[("b.x.default.svc", "10.0.0.3")]);
        index.withdraw(&owner("y"));
        let s2 = tick(&index).unwrap();
        assert!(crate::index::serial_gt(s2, s1));
        let v2 = journal.versions();
        // The old snapshot is untouched by the new window.
        assert!(v1.snapshot.names.contains_key("a.x.default.svc"));
        assert!(!v2.snapshot.names.contains_key("a.x.default.svc"));
        assert!(v2.snapshot.names.contains_key("b.x.default.svc"));
        assert!(!v2.snapshot.names.contains_key("default.svc"), "empty non-terminals hold no record");
        // Composition: start + every delta = now; v1 + the last delta = now.
        let all = v2.since(start.serial).unwrap();
        let end = apply(start, &all);
        assert_eq!((end.serial, &end.names, &end.ptrs), (s2, &v2.snapshot.names, &v2.snapshot.ptrs));
        let end = apply(v1.snapshot.clone(), &v2.since(s1).unwrap());
        assert_eq!(end.names, v2.snapshot.names);
        assert!(v2.since(s2).unwrap().is_empty(), "up to date: nothing to send");
        assert!(v2.since(12345).is_none(), "an unknown serial needs the whole zone");
    }

    #[test]
    fn the_journal_keeps_within_its_bounds() {
        let index = Index::new();
        let journal = Journal::new(&index, JournalLimits { entries: 3, bytes: 1 << 20 });
        index.set_synced(true);
        let mut now = index.serial();
        publish(&index, "w", &[("w.default.svc", "10.0.0.9")]);
        now += 1;
        journal.publish(&index, now).unwrap();
        for i in 0..10 {
            publish(&index, "x", &[(&format!("p{i}.x.default.svc"), "10.0.0.1")]);
            now += 1;
            journal.publish(&index, now).unwrap();
        }
        let v = journal.versions();
        assert_eq!(v.deltas.len(), 3);
        assert_eq!(v.oldest(), v.deltas[0].from);
        let journal = Journal::new(&index, JournalLimits { entries: 100, bytes: 400 });
        now += 1;
        journal.publish(&index, now).unwrap();
        for i in 0..10 {
            publish(&index, "x", &[(&format!("q{i}.x.default.svc"), "10.0.0.1")]);
            now += 1;
            journal.publish(&index, now).unwrap();
        }
        let v = journal.versions();
        assert!(v.bytes <= 400 && v.deltas.len() < 10, "{} octets in {} deltas", v.bytes, v.deltas.len());
        assert_eq!(v.bytes, v.deltas.iter().map(|d| d.bytes).sum::<usize>());
    }
}
