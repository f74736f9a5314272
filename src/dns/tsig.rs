//! TSIG (RFC 8945): shared-key signatures on requests and responses, with the key file format
//! BIND's `tsig-keygen` prints.
//!
//! A signed request is verified before anything else reads it ([`KeyRing::verify`]): the key
//! must be known (else BADKEY), the MAC right (else BADSIG), the time within the fudge (else
//! BADTIME), answered as RFC 8945 section 5.2 says ([`Verified::error_reply`]). A verified
//! request's response is signed ([`ResponseSigner`]), every message of a multi-message transfer
//! included (section 5.3.1: each later message's MAC covers the previous MAC, the message and
//! the timers). Requests we send (NOTIFY) are signed with [`Signer`].
//!
//! Implemented here on `ring`'s HMAC rather than with hickory-proto's TSIG support, which needs
//! its DNSSEC feature (and another crypto stack build) and signs one message at a time, where a
//! transfer needs the RFC's chained MACs over many.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use hickory_proto::rr::Name;
use ring::hmac;

/// The TSIG record type (RFC 8945 section 4.2).
const TYPE_TSIG: u16 = 250;
/// Class ANY (RFC 8945 section 4.2).
const CLASS_ANY: u16 = 255;
/// The time window we sign with (RFC 8945 section 10: 300 s recommended).
const FUDGE: u16 = 300;
/// RCODE NOTAUTH (RFC 8945 section 5.3.2: the rcode of a TSIG error response).
const NOTAUTH: u8 = 9;

/// TSIG errors (RFC 8945 section 3; the TSIG record's Error field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigError {
    /// BADSIG (16): the MAC does not verify.
    BadSig = 16,
    /// BADKEY (17): the key (or its algorithm) is unknown.
    BadKey = 17,
    /// BADTIME (18): the signing time is outside the fudge.
    BadTime = 18,
    /// BADTRUNC (22): a truncated MAC shorter than we accept.
    BadTrunc = 22,
}

/// A TSIG record that is malformed, or not the last record (RFC 8945 section 5.1: FORMERR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed TSIG record")]
pub struct Malformed;

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// It could not be read.
    #[error("tsig-key-file {path}: cannot read it: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Its text is not keys in BIND's format.
    #[error("tsig-key-file {path}: line {line}: {reason}")]
    Syntax {
        /// The file.
        path: String,
        /// The line.
        line: usize,
        /// What is wrong (never the secret).
        reason: String,
    },
}

/// A key name as keys are looked up: lower case, fully qualified.
pub fn key_name(name: &Name) -> Name {
    let mut n = name.to_lowercase();
    n.set_fqdn(true);
    n
}

/// A supported HMAC (RFC 8945 section 6).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Algorithm {
    name: &'static str,
    ring: hmac::Algorithm,
    len: usize,
}

impl fmt::Debug for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

const ALGORITHMS: [Algorithm; 4] = [
    Algorithm { name: "hmac-sha256", ring: hmac::HMAC_SHA256, len: 32 },
    Algorithm { name: "hmac-sha512", ring: hmac::HMAC_SHA512, len: 64 },
    Algorithm { name: "hmac-sha384", ring: hmac::HMAC_SHA384, len: 48 },
    Algorithm { name: "hmac-sha1", ring: hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, len: 20 },
];

impl Algorithm {
    fn by_name(name: &str) -> Option<Self> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        ALGORITHMS.iter().copied().find(|a| a.name == name)
    }

    /// The algorithm's name in wire form (`hmac-sha256.`).
    fn wire_name(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.name.len() + 2);
        out.push(self.name.len() as u8);
        out.extend_from_slice(self.name.as_bytes());
        out.push(0);
        out
    }
}

/// One shared key. Its secret is never printed.
#[derive(Clone)]
pub struct Key {
    /// The key's name, lower-cased.
    pub name: Name,
    algorithm: Algorithm,
    key: hmac::Key,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("name", &self.name).field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// The keys read from the key file.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: HashMap<Name, Key>,
}

impl PartialEq for KeyRing {
    fn eq(&self, other: &Self) -> bool {
        let names = |k: &Self| {
            let mut v: Vec<(String, &'static str)> =
                k.keys.values().map(|k| (k.name.to_ascii(), k.algorithm.name)).collect();
            v.sort();
            v
        };
        names(self) == names(other)
    }
}

/// Splits BIND configuration text into tokens (`{`, `}`, `;`, quoted strings, words), with
/// their line, dropping comments (`#`, `//`, `/* */`).
fn tokens(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                    }
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '{' | '}' | ';' => out.push((line, c.to_string())),
            '"' => {
                let mut s = String::new();
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    if c == '\n' {
                        line += 1;
                    }
                    s.push(c);
                }
                out.push((line, s));
            }
            c => {
                let mut s = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '"') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push((line, s));
            }
        }
    }
    out
}

impl KeyRing {
    /// Reads keys in the format BIND's `tsig-keygen` prints:
    /// `key "name" { algorithm hmac-sha256; secret "base64"; };`, any number of them.
    pub fn read(path: &Path) -> Result<Self, KeyFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| KeyFileError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text).map_err(|(line, reason)| KeyFileError::Syntax {
            path: path.display().to_string(),
            line,
            reason,
        })
    }

    /// Parses key file text; the error is the line and the reason (never the secret).
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let toks = tokens(text);
        let mut keys = HashMap::new();
        let mut i = 0;
        let at = |i: usize| toks.get(i).map_or(toks.last().map_or(1, |t| t.0), |t| t.0);
        let expect = |i: usize, want: &str| -> Result<(), (usize, String)> {
            match toks.get(i) {
                Some((_, t)) if t == want => Ok(()),
                Some((line, t)) => Err((*line, format!("expected `{want}`, found `{t}`"))),
                None => Err((at(i), format!("expected `{want}` before the end of the file"))),
            }
        };
        while i < toks.len() {
            expect(i, "key")?;
            let (line, name) = toks.get(i + 1).cloned().ok_or((at(i), "a key needs a name".to_owned()))?;
            let name = Name::from_ascii(&name).map_err(|e| (line, format!("`{name}` is not a key name ({e})")))?;
            let name = key_name(&name);
            expect(i + 2, "{")?;
            i += 3;
            let (mut algorithm, mut secret) = (None, None);
            while toks.get(i).is_some_and(|t| t.1 != "}") {
                let (line, field) = toks[i].clone();
                let (vline, value) = toks.get(i + 1).cloned().ok_or((line, format!("`{field}` needs a value")))?;
                match field.as_str() {
                    "algorithm" => algorithm = Some(Algorithm::by_name(&value).ok_or((
                        vline,
                        format!(
                            "algorithm `{value}` is not supported (hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1)"
                        ),
                    ))?),
                    "secret" => {
                        secret = Some(
                            base64::engine::general_purpose::STANDARD
                                .decode(value.trim())
                                .map_err(|_| (vline, format!("the secret of key {name} is not base64")))?,
                        )
                    }
                    other => return Err((line, format!("`{other}` is not a key statement (algorithm, secret)"))),
                }
                expect(i + 2, ";")?;
                i += 3;
            }
            expect(i, "}")?;
            expect(i + 1, ";")?;
            i += 2;
            let algorithm = algorithm.ok_or((line, format!("key {name} has no algorithm")))?;
            let secret = secret.ok_or((line, format!("key {name} has no secret")))?;
            if secret.is_empty() {
                return Err((line, format!("key {name} has an empty secret")));
            }
            let key = Key { name: name.clone(), algorithm, key: hmac::Key::new(algorithm.ring, &secret) };
            if keys.insert(name.clone(), key).is_some() {
                return Err((line, format!("key {name} is defined twice")));
            }
        }
        Ok(Self { keys })
    }

    /// Whether a key of this name is known.
    pub fn contains(&self, name: &Name) -> bool {
        self.keys.contains_key(&key_name(name))
    }

    /// The key names, sorted (for logs: never the secrets).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.keys.keys().map(|k| k.to_ascii()).collect();
        v.sort();
        v
    }

    /// A signer for requests with the key `name`.
    pub fn signer(&self, name: &Name) -> Option<Signer> {
        self.keys.get(&key_name(name)).map(|k| Signer { key: k.clone() })
    }

    /// Verifies the TSIG of the request in `raw`, if it has one, at `now` (seconds since the
    /// epoch). `Ok(None)`: unsigned. `Ok(Some(v))`: signed; `v.error` says whether it verified;
    /// `v.unsigned` is the request without its TSIG (for the answer path). `Err(Malformed)`: a TSIG
    /// record that is malformed or not last (FORMERR).
    pub fn verify(&self, raw: &[u8], now: u64) -> Result<Option<Verified>, Malformed> {
        let Some(found) = find_tsig(raw)? else { return Ok(None) };
        let rr = parse_tsig(raw, found.start)?;
        let mut unsigned = raw[..found.start].to_vec();
        let ar = u16::from_be_bytes([raw[10], raw[11]]) - 1;
        unsigned[10..12].copy_from_slice(&ar.to_be_bytes());
        let key =
            self.keys.get(&rr.key_name).filter(|k| Algorithm::by_name(&rr.algorithm).is_some_and(|a| a == k.algorithm));
        let mut v = Verified { unsigned, key: key.cloned(), rr, error: None };
        let Some(key) = key else {
            v.error = Some(TsigError::BadKey);
            return Ok(Some(v));
        };
        let full = key.algorithm.len;
        let mac_len = v.rr.mac.len();
        // RFC 8945 section 5.2.2.1: longer than the hash, or shorter than half of it or 10
        // octets, is malformed.
        if mac_len > full || mac_len < (full / 2).max(10) {
            return Err(Malformed);
        }
        let mut signed = v.unsigned.clone();
        signed[..2].copy_from_slice(&v.rr.original_id.to_be_bytes());
        push_variables(&mut signed, &v.rr.key_name, &key.algorithm, v.rr.time, v.rr.fudge, v.rr.error, &v.rr.other);
        let tag = hmac::sign(&key.key, &signed);
        if !constant_time_eq(&tag.as_ref()[..mac_len], &v.rr.mac) {
            v.error = Some(TsigError::BadSig);
        } else if mac_len < full {
            // Our policy: whole MACs only (section 5.2.2.1: BADTRUNC, signed).
            v.error = Some(TsigError::BadTrunc);
        } else if now.abs_diff(v.rr.time) > u64::from(v.rr.fudge) {
            v.error = Some(TsigError::BadTime);
        }
        Ok(Some(v))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where the TSIG record starts.
struct Found {
    start: usize,
}

/// Skips a possibly compressed name at `at`; returns the offset after it.
fn skip_name(raw: &[u8], mut at: usize) -> Result<usize, Malformed> {
    loop {
        let len = *raw.get(at).ok_or(Malformed)?;
        match len {
            0 => return Ok(at + 1),
            l if l & 0xc0 == 0xc0 => return if at + 2 <= raw.len() { Ok(at + 2) } else { Err(Malformed) },
            l if l > 63 => return Err(Malformed),
            l => at += 1 + usize::from(l),
        }
    }
}

/// Reads a possibly compressed name at `at` into lower-cased labels.
fn read_name(raw: &[u8], mut at: usize) -> Result<Name, Malformed> {
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut jumps = 0;
    loop {
        let len = *raw.get(at).ok_or(Malformed)?;
        if len == 0 {
            break;
        }
        if len & 0xc0 == 0xc0 {
            let lo = *raw.get(at + 1).ok_or(Malformed)?;
            at = (usize::from(len & 0x3f) << 8) | usize::from(lo);
            jumps += 1;
            if jumps > 64 {
                return Err(Malformed);
            }
            continue;
        }
        if len > 63 {
            return Err(Malformed);
        }
        let label = raw.get(at + 1..at + 1 + usize::from(len)).ok_or(Malformed)?;
        labels.push(label.to_ascii_lowercase());
        at += 1 + usize::from(len);
    }
    Name::from_labels(labels).map(|n| key_name(&n)).map_err(|_| Malformed)
}

fn u16_at(raw: &[u8], at: usize) -> Result<u16, Malformed> {
    raw.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or(Malformed)
}

/// Finds the TSIG record: it must be the last record of the message (RFC 8945 section 5.1);
/// one anywhere else is malformed.
fn find_tsig(raw: &[u8]) -> Result<Option<Found>, Malformed> {
    if raw.len() < 12 {
        return Err(Malformed);
    }
    let counts: Vec<u16> = (0..4).map(|i| u16_at(raw, 4 + 2 * i)).collect::<Result<_, _>>()?;
    let mut at = 12;
    for _ in 0..counts[0] {
        at = skip_name(raw, at)? + 4;
    }
    let records = usize::from(counts[1]) + usize::from(counts[2]) + usize::from(counts[3]);
    let mut last = None;
    for i in 0..records {
        let start = at;
        at = skip_name(raw, at)?;
        let rtype = u16_at(raw, at)?;
        let rdlen = usize::from(u16_at(raw, at + 8)?);
        at += 10 + rdlen;
        if at > raw.len() {
            return Err(Malformed);
        }
        if rtype == TYPE_TSIG {
            if i + 1 != records || counts[3] == 0 {
                return Err(Malformed);
            }
            last = Some(Found { start });
        }
    }
    Ok(last)
}

/// A TSIG record's fields.
#[derive(Debug, Clone)]
pub struct TsigRr {
    /// The key's name, lower-cased.
    pub key_name: Name,
    algorithm: String,
    time: u64,
    fudge: u16,
    mac: Vec<u8>,
    original_id: u16,
    error: u16,
    other: Vec<u8>,
}

fn parse_tsig(raw: &[u8], start: usize) -> Result<TsigRr, Malformed> {
    let key_name = read_name(raw, start)?;
    let mut at = skip_name(raw, start)?;
    if u16_at(raw, at)? != TYPE_TSIG || u16_at(raw, at + 2)? != CLASS_ANY {
        return Err(Malformed);
    }
    // RDLENGTH must cover the fields exactly: octets past the last one make the record
    // malformed (FORMERR, RFC 8945 section 5.2), as hickory's decoder judges it.
    let rdata_end = at + 10 + usize::from(u16_at(raw, at + 8)?);
    at += 10; // type, class, TTL, RDLENGTH
    let algorithm = read_name(raw, at)?.to_ascii();
    at = skip_name(raw, at)?;
    let t = raw.get(at..at + 6).ok_or(Malformed)?;
    let time = t.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let fudge = u16_at(raw, at + 6)?;
    let mac_len = usize::from(u16_at(raw, at + 8)?);
    let mac = raw.get(at + 10..at + 10 + mac_len).ok_or(Malformed)?.to_vec();
    at += 10 + mac_len;
    let original_id = u16_at(raw, at)?;
    let error = u16_at(raw, at + 2)?;
    let other_len = usize::from(u16_at(raw, at + 4)?);
    let other = raw.get(at + 6..at + 6 + other_len).ok_or(Malformed)?.to_vec();
    if at + 6 + other_len != rdata_end {
        return Err(Malformed);
    }
    Ok(TsigRr { key_name, algorithm, time, fudge, mac, original_id, error, other })
}

/// The RDATA length of a TSIG record (RFC 8945 section 4.2): the algorithm name, time signed (6),
/// fudge, MAC size, MAC, original ID, error, other length and other data.
fn tsig_rdata_len(alg_name_len: usize, mac_len: usize, other_len: usize) -> usize {
    alg_name_len + 6 + 2 + 2 + mac_len + 2 + 2 + 2 + other_len
}

/// The name in canonical wire form (lower case, uncompressed).
fn wire_name(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// Appends the TSIG variables (RFC 8945 section 4.3.3).
fn push_variables(out: &mut Vec<u8>, key: &Name, alg: &Algorithm, time: u64, fudge: u16, error: u16, other: &[u8]) {
    out.extend_from_slice(&wire_name(key));
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&alg.wire_name());
    out.extend_from_slice(&time.to_be_bytes()[2..]);
    out.extend_from_slice(&fudge.to_be_bytes());
    out.extend_from_slice(&error.to_be_bytes());
    out.extend_from_slice(&(other.len() as u16).to_be_bytes());
    out.extend_from_slice(other);
}

/// Appends a TSIG record to `message` and counts it in ARCOUNT.
#[allow(clippy::too_many_arguments)]
fn append_tsig(
    message: &mut Vec<u8>,
    key: &Name,
    alg: &Algorithm,
    time: u64,
    fudge: u16,
    mac: &[u8],
    original_id: u16,
    error: u16,
    other: &[u8],
) {
    let alg_name = alg.wire_name();
    message.extend_from_slice(&wire_name(key));
    message.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    let rdlen = tsig_rdata_len(alg_name.len(), mac.len(), other.len());
    message.extend_from_slice(&(rdlen as u16).to_be_bytes());
    message.extend_from_slice(&alg_name);
    message.extend_from_slice(&time.to_be_bytes()[2..]);
    message.extend_from_slice(&fudge.to_be_bytes());
    message.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    message.extend_from_slice(mac);
    message.extend_from_slice(&original_id.to_be_bytes());
    message.extend_from_slice(&error.to_be_bytes());
    message.extend_from_slice(&(other.len() as u16).to_be_bytes());
    message.extend_from_slice(other);
    let ar = u16::from_be_bytes([message[10], message[11]]).wrapping_add(1);
    message[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A signed request, verified or not.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The request without its TSIG record (ARCOUNT one less).
    pub unsigned: Vec<u8>,
    key: Option<Key>,
    rr: TsigRr,
    /// Why it did not verify; `None`: it did.
    pub error: Option<TsigError>,
}

impl Verified {
    /// The key that signed it, when it verified.
    pub fn key_name(&self) -> Option<&Name> {
        if self.error.is_none() { self.key.as_ref().map(|k| &k.name) } else { None }
    }

    /// The name of the key it names (known or not), for logs.
    pub fn claimed_key(&self) -> &Name {
        &self.rr.key_name
    }

    /// The signer of the response (only for a verified request).
    pub fn response_signer(&self) -> Option<ResponseSigner> {
        if self.error.is_some() {
            return None;
        }
        let key = self.key.clone()?;
        Some(ResponseSigner { key, prior_mac: self.rr.mac.clone(), first: true, time: now() })
    }

    /// The reply to a request whose TSIG did not verify (RFC 8945 section 5.2): NOTAUTH with
    /// the TSIG error; unsigned for BADKEY and BADSIG (MAC size 0), signed for BADTIME (with our
    /// time as Other Data) and BADTRUNC. `message` is the response built from the request
    /// (header and question).
    pub fn error_reply(&self, mut message: Vec<u8>) -> Vec<u8> {
        let error = self.error.map_or(0, |e| e as u16);
        message[3] = (message[3] & 0xf0) | NOTAUTH;
        message[2] &= !0x04; // not authoritative
        let alg = Algorithm::by_name(&self.rr.algorithm).unwrap_or(ALGORITHMS[0]);
        match (self.error, &self.key) {
            (Some(TsigError::BadTime | TsigError::BadTrunc), Some(key)) => {
                let other: Vec<u8> =
                    if self.error == Some(TsigError::BadTime) { now().to_be_bytes()[2..].to_vec() } else { Vec::new() };
                // Section 5.2.3: Time Signed is the request's; the MAC covers the request's MAC.
                let mut signed = Vec::new();
                signed.extend_from_slice(&(self.rr.mac.len() as u16).to_be_bytes());
                signed.extend_from_slice(&self.rr.mac);
                signed.extend_from_slice(&message);
                push_variables(&mut signed, &key.name, &key.algorithm, self.rr.time, FUDGE, error, &other);
                let mac = hmac::sign(&key.key, &signed);
                let id = u16::from_be_bytes([message[0], message[1]]);
                append_tsig(
                    &mut message,
                    &key.name,
                    &key.algorithm,
                    self.rr.time,
                    FUDGE,
                    mac.as_ref(),
                    id,
                    error,
                    &other,
                );
            }
            _ => {
                let id = u16::from_be_bytes([message[0], message[1]]);
                append_tsig(&mut message, &self.rr.key_name, &alg, self.rr.time, FUDGE, &[], id, error, &[]);
            }
        }
        message
    }
}

/// Signs the messages of one response (RFC 8945 sections 5.3 and 5.3.1).
#[derive(Debug, Clone)]
pub struct ResponseSigner {
    key: Key,
    prior_mac: Vec<u8>,
    first: bool,
    time: u64,
}

impl ResponseSigner {
    /// The octets [`ResponseSigner::sign`] adds to each message: the TSIG record (RFC 8945
    /// section 4.2), its owner the key's name and its MAC as long as the algorithm's digest. A
    /// reply that must fit a limit is made this much smaller before it is signed.
    pub fn overhead(&self) -> usize {
        let alg = &self.key.algorithm;
        // Owner, then type, class, TTL and RDLENGTH, then the RDATA (no other data).
        wire_name(&self.key.name).len() + 10 + tsig_rdata_len(alg.wire_name().len(), alg.len, 0)
    }

    /// Signs the next message of the response. The first message's MAC covers the request's MAC,
    /// the message and every TSIG variable; each later one covers the previous MAC, the message
    /// and the timers only.
    pub fn sign(&mut self, mut message: Vec<u8>) -> Vec<u8> {
        let mut signed = Vec::with_capacity(message.len() + 128);
        signed.extend_from_slice(&(self.prior_mac.len() as u16).to_be_bytes());
        signed.extend_from_slice(&self.prior_mac);
        signed.extend_from_slice(&message);
        if self.first {
            push_variables(&mut signed, &self.key.name, &self.key.algorithm, self.time, FUDGE, 0, &[]);
        } else {
            signed.extend_from_slice(&self.time.to_be_bytes()[2..]);
            signed.extend_from_slice(&FUDGE.to_be_bytes());
        }
        let mac = hmac::sign(&self.key.key, &signed);
        let id = u16::from_be_bytes([message[0], message[1]]);
        append_tsig(&mut message, &self.key.name, &self.key.algorithm, self.time, FUDGE, mac.as_ref(), id, 0, &[]);
        self.prior_mac = mac.as_ref().to_vec();
        self.first = false;
        message
    }
}

/// Signs requests we send (NOTIFY) with one key.
#[derive(Debug, Clone)]
pub struct Signer {
    key: Key,
}

impl Signer {
    /// The request with a TSIG record appended (RFC 8945 section 4.3.3: the MAC covers the
    /// message and the TSIG variables).
    pub fn sign_request(&self, mut message: Vec<u8>) -> Result<Vec<u8>, Malformed> {
        if message.len() < 12 {
            return Err(Malformed);
        }
        let time = now();
        let mut signed = message.clone();
        push_variables(&mut signed, &self.key.name, &self.key.algorithm, time, FUDGE, 0, &[]);
        let mac = hmac::sign(&self.key.key, &signed);
        let id = u16::from_be_bytes([message[0], message[1]]);
        append_tsig(&mut message, &self.key.name, &self.key.algorithm, time, FUDGE, mac.as_ref(), id, 0, &[]);
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
# made by tsig-keygen
key "transfer-key" {
	algorithm hmac-sha256;
	secret "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
};
/* a second */ key other. { algorithm hmac-sha512; secret "b3RoZXI="; };
"#;

    fn query() -> Vec<u8> {
        let mut m = hickory_proto::op::Message::query();
        m.metadata.id = 4242;
        m.add_query(hickory_proto::op::Query::query(
            Name::from_ascii("cluster.local.").unwrap(),
            hickory_proto::rr::RecordType::SOA,
        ));
        m.to_vec().unwrap()
    }

    #[test]
    fn key_files_parse_and_name_the_line_of_a_mistake() {
        let ring = KeyRing::parse(FILE).unwrap();
        assert_eq!(ring.names(), vec!["other.", "transfer-key."]);
        assert!(format!("{ring:?}").find("c2VjcmV0").is_none(), "the secret is never printed");
        let bad = FILE.replace("hmac-sha512", "hmac-md5");
        let (line, reason) = KeyRing::parse(&bad).unwrap_err();
        assert_eq!(line, 7);
        assert!(reason.contains("hmac-md5"), "{reason}");
        assert!(KeyRing::parse("key \"a\" { algorithm hmac-sha256; };").unwrap_err().1.contains("no secret"));
        assert!(
            KeyRing::parse("key \"a\" { algorithm hmac-sha256; secret \"!!\"; };").unwrap_err().1.contains("base64")
        );
        let (_, reason) = KeyRing::parse("key \"a\" { algorithm hmac-sha256; secret \"c2VjcmV0\" };").unwrap_err();
        assert!(!reason.contains("c2VjcmV0"), "the secret is never in an error: {reason}");
    }

    #[test]
    fn a_signed_request_verifies_and_every_error_is_told_apart() {
        let ring = KeyRing::parse(FILE).unwrap();
        let key = Name::from_ascii("transfer-key.").unwrap();
        let signed = ring.signer(&key).unwrap().sign_request(query()).unwrap();
        let v = ring.verify(&signed, now()).unwrap().unwrap();
        assert_eq!(v.error, None);
        assert_eq!(v.unsigned, query(), "the request as it was before signing");
        assert_eq!(v.key_name(), Some(&key));
        assert!(ring.verify(&query(), now()).unwrap().is_none(), "unsigned");
        // A flipped bit in the message: BADSIG.
        let mut tampered = signed.clone();
        tampered[13] ^= 1;
        assert_eq!(ring.verify(&tampered, now()).unwrap().unwrap().error, Some(TsigError::BadSig));
        // Another ring with the same name but another secret: BADSIG; an unknown key: BADKEY.
        let other = KeyRing::parse(&FILE.replace("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=", "b3RoZXI=")).unwrap();
        assert_eq!(other.verify(&signed, now()).unwrap().unwrap().error, Some(TsigError::BadSig));
        assert_eq!(KeyRing::default().verify(&signed, now()).unwrap().unwrap().error, Some(TsigError::BadKey));
        // Outside the fudge: BADTIME, answered signed with our time.
        let late = ring.verify(&signed, now() + 301).unwrap().unwrap();
        assert_eq!(late.error, Some(TsigError::BadTime));
        let reply = late.error_reply(late.unsigned.clone());
        assert_eq!(reply[3] & 0x0f, NOTAUTH);
        assert_eq!(u16::from_be_bytes([reply[10], reply[11]]), 1, "the TSIG record");
        // A TSIG record that is not last is malformed.
        let mut twice = signed.clone();
        let extra = signed[query().len()..].to_vec();
        twice.extend_from_slice(&extra);
        twice[11] = 2;
        assert!(ring.verify(&twice, now()).is_err());
    }

    #[test]
    fn a_signature_takes_the_octets_its_signer_reserves_for_every_algorithm() {
        // The second key of FILE is hmac-sha512 under a name of another length.
        let ring = KeyRing::parse(FILE).unwrap();
        for key in ["transfer-key", "other"] {
            let signed = ring.signer(&Name::from_ascii(key).unwrap()).unwrap().sign_request(query()).unwrap();
            let mut signer = ring.verify(&signed, now()).unwrap().unwrap().response_signer().unwrap();
            let reply = query();
            assert_eq!(signer.sign(reply.clone()).len() - reply.len(), signer.overhead(), "{key}");
        }
    }

    #[test]
    fn responses_chain_their_macs_across_messages() {
        // The secondary's side, as RFC 8945 section 5.3.1 checks it.
        let ring = KeyRing::parse(FILE).unwrap();
        let key = Name::from_ascii("transfer-key").unwrap();
        let signed = ring.signer(&key).unwrap().sign_request(query()).unwrap();
        let v = ring.verify(&signed, now()).unwrap().unwrap();
        let mut signer = v.response_signer().unwrap();
        let request_mac = v.rr.mac.clone();
        let mut prior = request_mac;
        let k = ring.keys.get(&key_name(&key)).unwrap();
        for n in 0..3 {
            let mut msg = query();
            msg[2] |= 0x80;
            msg[1] = n; // each message differs
            let out = signer.sign(msg.clone());
            assert_eq!(out.len() - msg.len(), signer.overhead(), "the room a signed reply leaves");
            let found = find_tsig(&out).unwrap().unwrap();
            let rr = parse_tsig(&out, found.start).unwrap();
            let mut expect = Vec::new();
            expect.extend_from_slice(&(prior.len() as u16).to_be_bytes());
            expect.extend_from_slice(&prior);
            expect.extend_from_slice(&msg);
            if n == 0 {
                push_variables(&mut expect, &key, &k.algorithm, rr.time, rr.fudge, 0, &[]);
            } else {
                expect.extend_from_slice(&rr.time.to_be_bytes()[2..]);
                expect.extend_from_slice(&rr.fudge.to_be_bytes());
            }
            assert!(hmac::verify(&k.key, &expect, &rr.mac).is_ok(), "message {n} verifies");
            prior = rr.mac;
        }
    }
}
