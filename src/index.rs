//! The served names: one concurrent map from a lower-cased fully-qualified name to the data that
//! answers it. This is the only thing the DNS side reads.
//!
//! Writers (the reconciler, fed by either source) publish whole Services with
//! [`Index::publish`] and [`Index::withdraw`]; each name is replaced atomically, so a name whose data
//! did not change is never absent, not even for an instant. Empty non-terminals (`svc.<zone>`,
//! `<ns>.svc.<zone>`) are entries with no data so that they answer NODATA, never NXDOMAIN
//! (RFC 8020 section 2: NXDOMAIN means nothing exists at or below the name).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use dashmap::DashMap;
use hickory_proto::rr::Name;

use crate::model::ObjectKey;

/// What one name answers. All empty: the name exists but has no data (an empty non-terminal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameData {
    /// A records, in a stable order, without duplicates.
    pub v4: Vec<Ipv4Addr>,
    /// AAAA records, in a stable order, without duplicates.
    pub v6: Vec<Ipv6Addr>,
    /// A CNAME target (ExternalName Services); when set, no address records are held.
    pub cname: Option<Name>,
}

impl NameData {
    /// True when the name holds no record at all.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty() && self.cname.is_none()
    }
}

/// The concurrent index of served names. Shared (`Arc`) between the writer and the DNS servers.
#[derive(Debug)]
pub struct Index {
    zone: Name,
    zone_key: String,
    names: DashMap<Box<str>, Arc<NameData>>,
    /// Writer-side bookkeeping: the names each Service owns, and Services per namespace. Only the
    /// single writer touches it; the lock is never contended by readers.
    owners: Mutex<Owners>,
    serial: AtomicU32,
    synced: AtomicBool,
}

#[derive(Debug, Default)]
struct Owners {
    by_service: HashMap<ObjectKey, Vec<Box<str>>>,
    per_namespace: HashMap<String, usize>,
}

/// The key a name is stored under: its lower-cased presentation form with the trailing dot.
pub fn name_key(name: &Name) -> String {
    let mut key = name.to_lowercase().to_ascii();
    if !key.ends_with('.') {
        key.push('.');
    }
    key
}

impl Index {
    /// An empty index for `zone` (lower-cased, fully qualified), not yet synced. The SOA serial
    /// starts at the current Unix time so that it also grows across restarts.
    pub fn new(zone: Name) -> Self {
        let zone = zone.to_lowercase();
        let zone_key = name_key(&zone);
        let names = DashMap::new();
        names.insert(format!("svc.{zone_key}").into_boxed_str(), Arc::new(NameData::default()));
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(1);
        Self {
            zone,
            zone_key,
            names,
            owners: Mutex::new(Owners::default()),
            serial: AtomicU32::new(now),
            synced: AtomicBool::new(false),
        }
    }

    /// The zone apex.
    pub fn zone(&self) -> &Name {
        &self.zone
    }

    /// The zone apex as a key (`cluster.local.`).
    pub fn zone_key(&self) -> &str {
        &self.zone_key
    }

    /// Looks a name up by its key (see [`name_key`]). The value is copied out (an `Arc`), so no
    /// lock is held after this returns.
    pub fn lookup(&self, key: &str) -> Option<Arc<NameData>> {
        self.names.get(key).map(|r| Arc::clone(r.value()))
    }

    /// Number of names held (including empty non-terminals).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no name is held at all (never the case: `svc.<zone>` always exists).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The SOA serial; it grows on every change of served data.
    pub fn serial(&self) -> u32 {
        self.serial.load(Ordering::Acquire)
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

    /// Replaces everything `service` publishes with `names` (keys from [`name_key`] form, inside
    /// the zone). New and changed names are written first, then names no longer published are
    /// removed: an unchanged name is never missing. Returns whether anything changed.
    pub fn publish(&self, service: &ObjectKey, names: Vec<(String, NameData)>) -> bool {
        if names.is_empty() {
            return self.withdraw(service);
        }
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = false;
        let mut keys: Vec<Box<str>> = Vec::with_capacity(names.len());
        for (key, data) in names {
            let key = key.into_boxed_str();
            let same = self.names.get(&key).is_some_and(|old| **old == data);
            if !same {
                self.names.insert(key.clone(), Arc::new(data));
                changed = true;
            }
            keys.push(key);
        }
        keys.sort_unstable();
        let previous = owners.by_service.insert(service.clone(), keys);
        match previous {
            Some(old) => {
                let new = &owners.by_service[service];
                for key in old {
                    if new.binary_search(&key).is_err() {
                        self.names.remove(&key);
                        changed = true;
                    }
                }
            }
            None => {
                let count = owners.per_namespace.entry(service.namespace.clone()).or_insert(0);
                *count += 1;
                if *count == 1 {
                    self.names.insert(self.namespace_key(&service.namespace), Arc::new(NameData::default()));
                }
            }
        }
        if changed {
            self.bump_serial();
        }
        changed
    }

    /// Removes every name `service` publishes. Returns whether anything changed.
    pub fn withdraw(&self, service: &ObjectKey) -> bool {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let Some(old) = owners.by_service.remove(service) else {
            return false;
        };
        for key in old {
            self.names.remove(&key);
        }
        if let Some(count) = owners.per_namespace.get_mut(&service.namespace) {
            *count -= 1;
            if *count == 0 {
                owners.per_namespace.remove(&service.namespace);
                self.names.remove(&self.namespace_key(&service.namespace));
            }
        }
        self.bump_serial();
        true
    }

    fn namespace_key(&self, namespace: &str) -> Box<str> {
        format!("{namespace}.svc.{}", self.zone_key).into_boxed_str()
    }

    fn bump_serial(&self) {
        // RFC 1982 serial arithmetic: wrapping add is the correct increment.
        let _ = self.serial.fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| Some(s.wrapping_add(1).max(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        Index::new(Name::from_ascii("cluster.local.").unwrap())
    }

    fn v4(ip: &str) -> NameData {
        NameData { v4: vec![ip.parse().unwrap()], ..Default::default() }
    }

    #[test]
    fn publish_replaces_and_removes_names_and_bumps_serial() {
        let idx = index();
        let svc = ObjectKey::new("default", "nginx");
        let s0 = idx.serial();
        assert!(idx.publish(&svc, vec![("a.nginx.default.svc.cluster.local.".into(), v4("10.0.0.1"))]));
        assert!(idx.serial() > s0);
        assert!(idx.lookup("default.svc.cluster.local.").unwrap().is_empty());
        let s1 = idx.serial();
        assert!(!idx.publish(&svc, vec![("a.nginx.default.svc.cluster.local.".into(), v4("10.0.0.1"))]));
        assert_eq!(idx.serial(), s1, "no change, no new serial");
        assert!(idx.publish(&svc, vec![("b.nginx.default.svc.cluster.local.".into(), v4("10.0.0.2"))]));
        assert!(idx.lookup("a.nginx.default.svc.cluster.local.").is_none());
        assert_eq!(idx.lookup("b.nginx.default.svc.cluster.local.").unwrap().v4[0].to_string(), "10.0.0.2");
    }

    #[test]
    fn withdrawing_the_last_service_removes_the_namespace_non_terminal() {
        let idx = index();
        let a = ObjectKey::new("ns1", "a");
        let b = ObjectKey::new("ns1", "b");
        idx.publish(&a, vec![("a.ns1.svc.cluster.local.".into(), v4("10.0.0.1"))]);
        idx.publish(&b, vec![("b.ns1.svc.cluster.local.".into(), v4("10.0.0.2"))]);
        idx.withdraw(&a);
        assert!(idx.lookup("ns1.svc.cluster.local.").is_some());
        idx.publish(&b, vec![]);
        assert!(idx.lookup("ns1.svc.cluster.local.").is_none());
        assert!(idx.lookup("b.ns1.svc.cluster.local.").is_none());
        assert!(idx.lookup("svc.cluster.local.").is_some(), "svc.<zone> always exists");
    }
}
