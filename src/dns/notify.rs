//! NOTIFY (RFC 1996): tells each configured secondary that the zones have a new serial, so that
//! it transfers at once instead of at its next SOA refresh.
//!
//! One task per secondary follows the journal's serials ([`crate::journal::Journal::subscribe`]);
//! a window's changes are one serial, so one NOTIFY per zone (RFC 1996 section 4.3 leaves the
//! pace to the primary). Each zone's NOTIFY is retried with doubling intervals until the
//! secondary acknowledges it (RFC 1996 section 3.6), and given up after [`TRIES`]. A newer
//! serial replaces one not yet acknowledged, so at most one NOTIFY per zone and secondary is
//! outstanding whatever the churn.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::OpCode;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::general::Responder;
use super::tsig::Signer;
use super::xfr::split_key;
use crate::metrics::{NotifyLabels, ZoneLabels, metrics};

/// Tries per NOTIFY before giving up (the first and the retries).
pub const TRIES: u32 = 6;
/// The wait for an answer to the first try; it doubles with each retry (1, 2, 4, 8, 16 s).
const FIRST_WAIT: Duration = Duration::from_secs(1);

/// A secondary to notify: its address and the TSIG key to sign with, when named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    /// The secondary's address and port.
    pub addr: SocketAddr,
    /// The key NOTIFY messages are signed with.
    pub key: Option<Name>,
}

impl FromStr for NotifyTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (value, key) = split_key(text)?;
        let addr = value.parse().map_err(|_| format!("`{value}` is not ADDR:PORT"))?;
        Ok(Self { addr, key })
    }
}

impl fmt::Display for NotifyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{},key={}", self.addr, k),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// A NOTIFY for `zone` at `serial` (RFC 1996 section 3.7: the SOA in the answer section as a
/// hint), with message ID `id`, signed when `signer` is given.
fn message(responder: &Responder, zone: &Name, serial: u32, id: u16, signer: Option<&Signer>) -> Option<Vec<u8>> {
    let zones = responder.zones();
    let soa = zones.soa_at(zone, serial);
    let mut buf = Vec::with_capacity(128);
    {
        let mut e = BinEncoder::new(&mut buf);
        e.emit_u16(id).ok()?;
        // QR=0, opcode NOTIFY, AA=1 (RFC 1996 section 3.7).
        e.emit_u8((u8::from(OpCode::Notify) << 3) | 0x04).ok()?;
        e.emit_u8(0).ok()?;
        for count in [1u16, 1, 0, 0] {
            e.emit_u16(count).ok()?;
        }
        zone.emit(&mut e).ok()?;
        e.emit_u16(RecordType::SOA.into()).ok()?;
        e.emit_u16(DNSClass::IN.into()).ok()?;
        soa.emit(&mut e).ok()?;
    }
    match signer {
        Some(s) => s.sign_request(buf).ok(),
        None => Some(buf),
    }
}

/// Whether `reply` acknowledges the NOTIFY with message ID `id`: a response, opcode NOTIFY.
/// Returns its rcode.
fn ack(reply: &[u8], id: u16) -> Option<u8> {
    if reply.len() < 12 || u16::from_be_bytes([reply[0], reply[1]]) != id || reply[2] & 0x80 == 0 {
        return None;
    }
    ((reply[2] >> 3) & 0x0f == u8::from(OpCode::Notify)).then_some(reply[3] & 0x0f)
}

/// Notifies `target` of every new serial of `serials`, for every transferable zone, until the
/// channel closes, signed with the target's key when it names one.
pub async fn run(responder: Arc<Responder>, target: NotifyTarget, mut serials: watch::Receiver<u32>) {
    let bind: SocketAddr = match target.addr.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(error) => {
            warn!(%error, target = %target, "cannot open a socket for NOTIFY; this secondary is not notified");
            return;
        }
    };
    let name = target.addr.to_string();
    // Zones this secondary refused a NOTIFY for: said once at warn, then at debug (a secondary
    // that does not carry one of our zones would otherwise be logged at every serial).
    let mut refused: std::collections::HashSet<Name> = std::collections::HashSet::new();
    let count = |outcome| metrics().notifies.get_or_create(&NotifyLabels { target: name.clone(), outcome }).inc();
    'serials: while serials.changed().await.is_ok() {
        let serial = *serials.borrow_and_update();
        let zones: Vec<Name> = responder.zones().transfer_zones().into_iter().map(|(apex, _)| apex).collect();
        for zone in &zones {
            metrics().zone_serial.get_or_create(&ZoneLabels { zone: zone.to_ascii() }).set(i64::from(serial));
        }
        let signer = match &target.key {
            // The keys as last read (the key file is read again on SIGHUP).
            Some(k) => match responder.zones().keys().signer(k) {
                Some(s) => Some(s),
                None => {
                    warn!(target = %target, key = %k, "the NOTIFY key is not in the key file; not notified");
                    continue;
                }
            },
            None => None,
        };
        // Every zone at once, each with its own message ID; retried until acknowledged.
        let mut waiting: Vec<(Name, u16)> = zones.iter().map(|z| (z.clone(), rand_id())).collect();
        let mut wait = FIRST_WAIT;
        for attempt in 1..=TRIES {
            for (zone, id) in &waiting {
                let Some(msg) = message(&responder, zone, serial, *id, signer.as_ref()) else { continue };
                if let Err(error) = socket.send_to(&msg, target.addr).await {
                    debug!(%error, target = %target, "NOTIFY send failed");
                }
                count("sent");
            }
            let deadline = tokio::time::Instant::now() + wait;
            let mut buf = [0u8; 1024];
            while !waiting.is_empty() {
                tokio::select! {
                    r = socket.recv_from(&mut buf) => {
                        let Ok((n, from)) = r else { continue };
                        if from != target.addr {
                            continue;
                        }
                        if let Some(at) = waiting.iter().position(|(_, id)| ack(&buf[..n], *id).is_some()) {
                            let rcode = ack(&buf[..n], waiting[at].1).unwrap_or(0);
                            let (zone, _) = waiting.swap_remove(at);
                            if rcode == 0 {
                                count("acked");
                                debug!(target = %target, zone = %zone, serial, attempt, "NOTIFY acknowledged");
                            } else {
                                count("failed");
                                if refused.insert(zone.clone()) {
                                    warn!(target = %target, zone = %zone, serial, rcode, "the secondary refused the NOTIFY (does it carry this zone?)");
                                } else {
                                    debug!(target = %target, zone = %zone, serial, rcode, "the secondary refused the NOTIFY");
                                }
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(deadline) => break,
                    r = serials.changed() => {
                        if r.is_err() {
                            return;
                        }
                        // A newer serial replaces these; notify it instead.
                        for _ in &waiting {
                            count("superseded");
                        }
                        serials.mark_changed();
                        continue 'serials;
                    }
                }
            }
            if waiting.is_empty() {
                continue 'serials;
            }
            wait *= 2;
        }
        for (zone, _) in waiting {
            count("failed");
            info!(target = %target, zone = %zone, serial, tries = TRIES, "NOTIFY not acknowledged; giving up");
        }
    }
}

/// A message ID nobody can guess (RFC 5452 spirit: the reply is matched on it).
fn rand_id() -> u16 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos()
            & 0xffff) as u16;
    }
    u16::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t: NotifyTarget = "127.0.0.1:5300,key=k1".parse().unwrap();
        assert_eq!(t.addr.to_string(), "127.0.0.1:5300");
        assert_eq!(t.key.unwrap().to_ascii(), "k1.");
        assert!("127.0.0.1".parse::<NotifyTarget>().is_err(), "a port is needed");
        assert_eq!("[::1]:53".parse::<NotifyTarget>().unwrap().to_string(), "[::1]:53");
    }

    #[test]
    fn acks_match_id_and_opcode() {
        let mut r = [0u8; 12];
        r[0..2].copy_from_slice(&7u16.to_be_bytes());
        r[2] = 0x80 | (4 << 3);
        assert_eq!(ack(&r, 7), Some(0));
        assert_eq!(ack(&r, 8), None);
        r[2] = 0x80;
        assert_eq!(ack(&r, 7), None, "a QUERY response is no NOTIFY ack");
    }
}
