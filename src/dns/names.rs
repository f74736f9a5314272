//! The name grammar shared by what we publish and what we answer: label and name limits (RFC
//! 1035), dashed-IP labels (`10-244-1-5`, `fd00--5`, as the Kubernetes DNS specification and
//! CoreDNS name endpoints and pods), and zone-relative keys.
//!
//! Entry points: [`valid_label`], [`dashed_ip`], [`undash_ip`], [`relative_key`].

use std::net::IpAddr;

use hickory_proto::rr::Name;

/// RFC 1035 section 2.3.4: a label is at most 63 octets.
pub const MAX_LABEL: usize = 63;
/// RFC 1035 section 2.3.4: a name is at most 255 octets on the wire, 253 in presentation form.
pub const MAX_NAME: usize = 253;

/// Whether `label` can be served as one DNS label: 1..=63 octets of letters, digits and hyphens.
pub fn valid_label(label: &str) -> bool {
    !label.is_empty() && label.len() <= MAX_LABEL && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The label of an endpoint without a hostname: its IP with `.` or `:` replaced by `-`
/// (`10-244-1-5`, `fd00--5`), as CoreDNS names them.
pub fn dashed_ip(ip: &IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// The address a dashed label stands for (`10-244-1-5`, `fd00--5`), if it is one.
pub fn undash_ip(label: &str) -> Option<IpAddr> {
    if label.contains("--") || label.matches('-').count() > 3 {
        label.replace('-', ":").parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        label.replace('-', ".").parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// The key a name is stored under when relative to `zone`: its lower-cased labels below the
/// zone, joined with dots (`""` for the apex). `None` when `name` is not inside `zone`.
pub fn relative_key(name: &Name, zone: &Name) -> Option<String> {
    if !zone.zone_of(name) {
        return None;
    }
    // Every label, a leading `*` included: hickory's `num_labels` leaves it out (the RRSIG label
    // count, RFC 4034 section 3.1.3), which made `*.<zone>` the zone's apex.
    let below = name.iter().len().saturating_sub(zone.iter().len());
    let mut key = String::new();
    for (i, label) in name.iter().take(below).enumerate() {
        if i > 0 {
            key.push('.');
        }
        for &b in label {
            // Labels with dots or odd bytes can never match a key we publish; keep them distinct.
            key.push(if b == b'.' { '\u{0}' } else { char::from(b.to_ascii_lowercase()) });
        }
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_keys_are_lower_case_labels_below_the_zone() {
        let zone = Name::from_ascii("cluster.local.").unwrap();
        let k = |n: &str| relative_key(&Name::from_ascii(n).unwrap(), &zone);
        assert_eq!(k("Web-0.NGINX.default.svc.Cluster.Local."), Some("web-0.nginx.default.svc".into()));
        assert_eq!(k("cluster.local."), Some(String::new()));
        // hickory's `num_labels` leaves a leading `*` out (RRSIG label counts): it is a label here.
        assert_eq!(k("*.cluster.local."), Some("*".into()));
        assert_eq!(k("*.nginx.default.svc.cluster.local."), Some("*.nginx.default.svc".into()));
        assert_eq!(k("example.com."), None);
        assert_eq!(k("local."), None);
    }

    #[test]
    fn dashed_ips_round_trip() {
        for ip in ["10.244.1.5", "fd00::5", "2001:db8::1:2", "::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(undash_ip(&dashed_ip(&ip)), Some(ip));
        }
        assert_eq!(undash_ip("web-0"), None);
        assert_eq!(undash_ip("1-2-3"), None);
    }
}
