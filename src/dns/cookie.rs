//! DNS Cookies (RFC 7873) with the interoperable server cookie of RFC 9018: what a query's
//! COOKIE option holds, and the option a reply carries back.
//!
//! Both answer paths use this module, so their replies stay byte-identical: the fast path
//! ([`super::fast`]) parses the option from the wire, the general path ([`super::general`]) from
//! hickory's OPT, and both ask [`Cookies::reply_option`] for the same 24 octets.
//!
//! Policy, as BIND's default (`require-server-cookie no`): a query with a well-formed client
//! cookie is answered normally whatever its server cookie says, and the reply carries a fresh
//! server cookie (RFC 7873 section 5.2.3 and 5.2.4: an invalid server cookie is treated as if only
//! the client cookie had been sent). A malformed option gets FORMERR (section 5.2.2). BADCOOKIE
//! is for servers that require a valid server cookie; this one does not, so it never sends it.
//!
//! Entry points: [`client_cookie`] and [`Cookies::reply_option`].

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The EDNS option code of COOKIE (RFC 7873 section 4).
pub const OPTION_CODE: u16 = 10;
/// The length of the option a reply carries: the 8-octet client cookie and our 16-octet server
/// cookie.
pub const REPLY_OPTION_LEN: usize = 24;

/// A COOKIE option whose length no cookie can have (RFC 7873 section 5.2.2): FORMERR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The client cookie of a query's COOKIE option data.
///
/// RFC 7873 section 4: the option is a client cookie of exactly 8 octets, alone or followed by
/// a server cookie of 8 to 32 octets; any other length is malformed (section 5.2.2).
pub fn client_cookie(data: &[u8]) -> Result<[u8; 8], Malformed> {
    match data.len() {
        8 | 16..=40 => {
            let mut c = [0u8; 8];
            c.copy_from_slice(&data[..8]);
            Ok(c)
        }
        _ => Err(Malformed),
    }
}

/// The server secret and the clock server cookies are made from.
#[derive(Clone)]
pub struct Cookies {
    secret: [u8; 16],
    clock: fn() -> u32,
}

impl std::fmt::Debug for Cookies {
    // The secret is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cookies { .. }")
    }
}

fn unix_seconds() -> u32 {
    // RFC 9018 section 4.3: the timestamp is serial-number arithmetic over 32 bits, so the
    // wrap in 2106 is harmless.
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)
}

/// Unix seconds, kept by the `cookie-clock` thread; 0 until it runs.
static COARSE_NOW: AtomicU32 = AtomicU32::new(0);

/// Unix seconds to a quarter of a second: a server cookie's timestamp has one-second
/// resolution, and reading the system clock per query costs as much as the SipHash does.
fn coarse_seconds() -> u32 {
    match COARSE_NOW.load(Ordering::Relaxed) {
        0 => unix_seconds(),
        now => now,
    }
}

/// Starts the thread that keeps [`COARSE_NOW`] (once per process).
fn start_coarse_clock() {
    COARSE_NOW.store(unix_seconds(), Ordering::Relaxed);
    let ticking = std::thread::Builder::new().name("cookie-clock".into()).spawn(|| {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            COARSE_NOW.store(unix_seconds(), Ordering::Relaxed);
        }
    });
    // Without the thread, a stale clock would hand out ageing cookies: read the system's.
    if ticking.is_err() {
        COARSE_NOW.store(0, Ordering::Relaxed);
    }
}

impl Cookies {
    /// Cookies made with `secret` and the system clock.
    pub fn new(secret: [u8; 16]) -> Self {
        Self { secret, clock: coarse_seconds }
    }

    /// This process's cookies: a secret drawn from the operating system's random source on
    /// first use, kept for the life of the process (configuration reloads included), so a
    /// client's server cookie stays valid across reloads. The first call also starts the
    /// `cookie-clock` thread, which reads the system clock four times a second for all queries.
    pub fn process() -> Self {
        static SECRET: OnceLock<[u8; 16]> = OnceLock::new();
        let secret = *SECRET.get_or_init(|| {
            start_coarse_clock();
            let mut s = [0u8; 16];
            // Without a random source (never seen on Linux), std's per-process random hasher
            // keys: weaker, but cookies only guard against off-path forgery.
            if getrandom::fill(&mut s).is_err() {
                use std::hash::BuildHasher;
                let keys = std::collections::hash_map::RandomState::new();
                s[..8].copy_from_slice(&keys.hash_one(1u8).to_le_bytes());
                s[8..].copy_from_slice(&keys.hash_one(2u8).to_le_bytes());
            }
            s
        });
        Self::new(secret)
    }

    /// The same cookies, read at the time `clock` says (tests pin it).
    pub fn with_clock(mut self, clock: fn() -> u32) -> Self {
        self.clock = clock;
        self
    }

    /// The RFC 9018 server cookie for `client` at `ip`, now: version 1, three reserved zero
    /// octets, the 32-bit timestamp, and SipHash-2-4 of client cookie | version | reserved |
    /// timestamp | client IP keyed with the secret (RFC 9018 section 4).
    pub fn server_cookie(&self, client: &[u8; 8], ip: IpAddr) -> [u8; 16] {
        let mut cookie = [0u8; 16];
        cookie[0] = 1;
        cookie[4..8].copy_from_slice(&(self.clock)().to_be_bytes());
        let mut input = [0u8; 32];
        input[..8].copy_from_slice(client);
        input[8..16].copy_from_slice(&cookie[..8]);
        let len = match ip {
            IpAddr::V4(v4) => {
                input[16..20].copy_from_slice(&v4.octets());
                20
            }
            IpAddr::V6(v6) => {
                // A v4-mapped source is the IPv4 client it stands for.
                if let Some(v4) = v6.to_ipv4_mapped() {
                    input[16..20].copy_from_slice(&v4.octets());
                    20
                } else {
                    input[16..32].copy_from_slice(&v6.octets());
                    32
                }
            }
        };
        let k0 = u64::from_le_bytes(self.secret[..8].try_into().unwrap_or_default());
        let k1 = u64::from_le_bytes(self.secret[8..].try_into().unwrap_or_default());
        // std's SipHasher is SipHash-2-4, the function RFC 9018 names; deprecated only as a
        // general-purpose hasher for maps.
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
        h.write(&input[..len]);
        cookie[8..].copy_from_slice(&h.finish().to_le_bytes());
        cookie
    }

    /// The COOKIE option data a reply carries: the client cookie echoed, then a fresh server
    /// cookie (RFC 7873 section 5.2.3).
    pub fn reply_option(&self, client: &[u8; 8], ip: IpAddr) -> [u8; REPLY_OPTION_LEN] {
        let mut out = [0u8; REPLY_OPTION_LEN];
        out[..8].copy_from_slice(client);
        out[8..].copy_from_slice(&self.server_cookie(client, ip));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn secret() -> [u8; 16] {
        hex("e5e973e5a6b2a43f48e7dc849e37bfcf").try_into().unwrap()
    }

    #[test]
    fn server_cookies_match_the_rfc_9018_test_vectors() {
        // RFC 9018 appendix A.1 (a new server cookie) and A.2 (renewed 40 minutes later).
        let client: [u8; 8] = hex("2464c4abcf10c957").try_into().unwrap();
        let ip: IpAddr = "198.51.100.100".parse().unwrap();
        let a1 = Cookies::new(secret()).with_clock(|| 1_559_731_985);
        assert_eq!(a1.reply_option(&client, ip).to_vec(), hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480"));
        let a2 = Cookies::new(secret()).with_clock(|| 1_559_734_385);
        assert_eq!(a2.reply_option(&client, ip).to_vec(), hex("2464c4abcf10c957010000005cf7a871d4a564a1442aca77"));
        // A.3 (another IPv4 client) and A.4 (an IPv6 client, with the new secret).
        let a3 = Cookies::new(secret()).with_clock(|| 1_559_734_700);
        let c3: [u8; 8] = hex("fc93fc62807ddb86").try_into().unwrap();
        assert_eq!(
            a3.server_cookie(&c3, "203.0.113.203".parse().unwrap()).to_vec(),
            hex("010000005cf7a9acf73a7810aca2381e")
        );
        let a4 = Cookies::new(hex("445536bcd2513298075a5d379663c962").try_into().unwrap()).with_clock(|| 1_559_741_961);
        let c4: [u8; 8] = hex("22681ab97d52c298").try_into().unwrap();
        let v6: IpAddr = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        assert_eq!(a4.server_cookie(&c4, v6).to_vec(), hex("010000005cf7c609a6bb79d16625507a"));
        // A v4-mapped source is the same client.
        let mapped: IpAddr = "::ffff:198.51.100.100".parse().unwrap();
        assert_eq!(a1.reply_option(&client, mapped), a1.reply_option(&client, ip));
    }

    #[test]
    fn option_lengths_other_than_a_client_cookie_alone_or_with_a_server_cookie_are_malformed() {
        // RFC 7873 section 5.2.2.
        for len in 0..50usize {
            let data = vec![7u8; len];
            let ok = len == 8 || (16..=40).contains(&len);
            assert_eq!(client_cookie(&data).is_ok(), ok, "{len}");
        }
    }

    #[test]
    fn the_process_secret_is_drawn_once_and_never_printed() {
        let (a, b) = (Cookies::process(), Cookies::process());
        assert_eq!(a.secret, b.secret);
        assert_ne!(a.secret, [0u8; 16]);
        assert_eq!(format!("{a:?}"), "Cookies { .. }");
    }
}
