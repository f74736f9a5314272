//! Reverse zones: `in-addr.arpa` (RFC 1035 section 3.5) and `ip6.arpa` nibble names (RFC 3596
//! section 2.5), and CIDRs turned into the reverse zones that cover them, as CoreDNS does.
//!
//! Entry points: [`zones_for_cidr`], [`net_of_reverse_zone`], [`ip_of_ptr_name`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Most reverse zones one CIDR may expand to (a `/9` is 128 `/16` zones).
pub const MAX_EXPANSION: usize = 256;

/// The reverse zones that exactly cover `net`: one when the prefix falls on an octet (IPv4) or
/// nibble (IPv6) boundary, else one per sub-network at the next boundary.
pub fn zones_for_cidr(net: IpNet) -> Result<Vec<(Name, IpNet)>, String> {
    let (step, max_len) = match net {
        IpNet::V4(_) => (8u8, 32u8),
        IpNet::V6(_) => (4u8, 128u8),
    };
    let net = net.trunc();
    let prefix = net.prefix_len();
    if prefix == 0 {
        return Err("a /0 CIDR would claim the whole reverse tree".into());
    }
    let target = prefix.div_ceil(step) * step;
    let target = target.min(max_len);
    let count = 1usize << (target - prefix).min(16);
    if count > MAX_EXPANSION {
        return Err(format!("{net} expands to {count} reverse zones (at most {MAX_EXPANSION})"));
    }
    let subnets: Vec<IpNet> = net.subnets(target).map_err(|e| e.to_string())?.collect();
    Ok(subnets.into_iter().map(|n| (reverse_zone_name(n), n)).collect())
}

/// The reverse zone name of a network whose prefix is on an octet/nibble boundary.
fn reverse_zone_name(net: IpNet) -> Name {
    let text = match net {
        IpNet::V4(n) => {
            let octets = n.network().octets();
            let count = (n.prefix_len() / 8) as usize;
            let mut labels: Vec<String> = octets[..count].iter().map(u8::to_string).collect();
            labels.reverse();
            labels.push("in-addr.arpa.".into());
            labels.join(".")
        }
        IpNet::V6(n) => {
            let nibbles = nibbles(n.network());
            let count = (n.prefix_len() / 4) as usize;
            let mut labels: Vec<String> = nibbles[..count].iter().map(|d| format!("{d:x}")).collect();
            labels.reverse();
            labels.push("ip6.arpa.".into());
            labels.join(".")
        }
    };
    Name::from_ascii(text).expect("reverse names are valid")
}

fn nibbles(ip: Ipv6Addr) -> Vec<u8> {
    ip.octets().iter().flat_map(|b| [b >> 4, b & 0x0f]).collect()
}

/// The network a reverse zone name covers (`10.in-addr.arpa.` is 10.0.0.0/8).
pub fn net_of_reverse_zone(name: &Name) -> Option<IpNet> {
    let labels = lower_labels(name);
    let n = labels.len();
    if n >= 2 && labels[n - 2] == "in-addr" && labels[n - 1] == "arpa" {
        let parts = &labels[..n - 2];
        if parts.len() > 4 {
            return None;
        }
        let mut octets = [0u8; 4];
        for (i, label) in parts.iter().rev().enumerate() {
            octets[i] = parse_decimal_octet(label)?;
        }
        return Ipv4Net::new(Ipv4Addr::from(octets), (parts.len() * 8) as u8).ok().map(IpNet::V4);
    }
    if n >= 2 && labels[n - 2] == "ip6" && labels[n - 1] == "arpa" {
        let parts = &labels[..n - 2];
        if parts.len() > 32 {
            return None;
        }
        let mut value: u128 = 0;
        for (i, label) in parts.iter().rev().enumerate() {
            value |= u128::from(parse_nibble(label)?) << (124 - 4 * i);
        }
        return Ipv6Net::new(Ipv6Addr::from(value), (parts.len() * 4) as u8).ok().map(IpNet::V6);
    }
    None
}

/// The address a full PTR query name stands for: four octets under `in-addr.arpa`, or 32
/// nibbles under `ip6.arpa`. Anything shorter, longer or malformed is `None`.
pub fn ip_of_ptr_name(name: &Name) -> Option<IpAddr> {
    let net = net_of_reverse_zone(name)?;
    match net {
        IpNet::V4(n) if n.prefix_len() == 32 => Some(IpAddr::V4(n.addr())),
        IpNet::V6(n) if n.prefix_len() == 128 => Some(IpAddr::V6(n.addr())),
        _ => None,
    }
}

/// The full PTR name of an address.
pub fn ptr_name_of(ip: IpAddr) -> Name {
    match ip {
        IpAddr::V4(v4) => reverse_zone_name(IpNet::V4(Ipv4Net::new(v4, 32).expect("valid"))),
        IpAddr::V6(v6) => reverse_zone_name(IpNet::V6(Ipv6Net::new(v6, 128).expect("valid"))),
    }
}

fn lower_labels(name: &Name) -> Vec<String> {
    name.iter().map(|l| String::from_utf8_lossy(l).to_ascii_lowercase()).collect()
}

fn parse_decimal_octet(label: &str) -> Option<u8> {
    // No leading zeros, no signs: "010" is not 10.
    if label.is_empty() || label.len() > 3 || (label.len() > 1 && label.starts_with('0')) {
        return None;
    }
    if !label.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    label.parse().ok()
}

fn parse_nibble(label: &str) -> Option<u8> {
    if label.len() != 1 {
        return None;
    }
    u8::from_str_radix(label, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(cidr: &str) -> Vec<String> {
        zones_for_cidr(cidr.parse().unwrap()).unwrap().into_iter().map(|(n, _)| n.to_string()).collect()
    }

    #[test]
    fn cidrs_expand_to_covering_reverse_zones() {
        assert_eq!(names("10.0.0.0/8"), ["10.in-addr.arpa."]);
        assert_eq!(names("10.244.0.0/16"), ["244.10.in-addr.arpa."]);
        let twelve = names("10.96.0.0/12");
        assert_eq!(twelve.len(), 16);
        assert_eq!(twelve[0], "96.10.in-addr.arpa.");
        assert_eq!(twelve[15], "111.10.in-addr.arpa.");
        assert_eq!(names("fd00::/8"), ["d.f.ip6.arpa."]);
        assert_eq!(names("fc00::/7"), ["c.f.ip6.arpa.", "d.f.ip6.arpa."]);
        assert!(zones_for_cidr("10.0.0.0/0".parse().unwrap()).is_err());
    }

    #[test]
    fn ptr_names_round_trip() {
        for ip in ["10.244.1.5", "fd00::5", "2001:db8::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_of_ptr_name(&ptr_name_of(ip)), Some(ip));
        }
        assert_eq!(ptr_name_of("10.244.1.5".parse().unwrap()).to_string(), "5.1.244.10.in-addr.arpa.");
        assert_eq!(ip_of_ptr_name(&Name::from_ascii("1.244.10.in-addr.arpa.").unwrap()), None);
        assert_eq!(ip_of_ptr_name(&Name::from_ascii("5.01.244.10.in-addr.arpa.").unwrap()), None);
        assert_eq!(
            ip_of_ptr_name(&Name::from_ascii("5.1.244.10.IN-ADDR.ARPA.").unwrap()),
            Some("10.244.1.5".parse().unwrap())
        );
        assert_eq!(
            net_of_reverse_zone(&Name::from_ascii("96.10.in-addr.arpa.").unwrap()),
            Some("10.96.0.0/16".parse().unwrap())
        );
    }
}
