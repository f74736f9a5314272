//! Batched UDP I/O for the UDP workers on Linux: `recvmmsg(2)` takes every datagram waiting on
//! the socket (up to [`BATCH`]) in one system call, and `sendmmsg(2)` sends the replies in one.
//! `MSG_WAITFORONE` makes the receive block only for the first datagram and return at once with
//! whatever else has already arrived, so a lone query is answered as soon as it comes: batching
//! adds no latency at low rates and saves a system call per datagram at high ones.
//!
//! It also sets the IPv4 sockets' fragmentation mode ([`never_fragment`]).
//!
//! The only module with `unsafe` code: the system calls and the socket address conversions, each
//! block with the reason it is sound. Entry points: [`RecvBatch::recv`], [`SendBatch::send`] and
//! [`never_fragment`].

#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// Datagrams taken or sent per system call.
pub const BATCH: usize = 32;
/// Room per received datagram. A longer one (no DNS query needs 4 KiB) is cut short by the kernel
/// and reported as truncated, to be dropped.
pub const SLOT: usize = 4096;

/// Receive buffers and their kernel descriptors for one worker.
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    received: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// Empty buffers for [`BATCH`] datagrams of [`SLOT`] octets.
    pub fn new() -> Self {
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which all-zero bytes
        // are a valid value (null pointers, zero lengths).
        let (addr, iov, hdr) = unsafe { (zeroed(), zeroed(), zeroed()) };
        Self {
            bufs: vec![0; BATCH * SLOT],
            addrs: vec![addr; BATCH],
            iovs: vec![iov; BATCH],
            hdrs: vec![hdr; BATCH],
            received: 0,
        }
    }

    /// Waits for at least one datagram (or the socket's read timeout), then takes up to
    /// [`BATCH`] of those already waiting. Returns how many; read each with [`RecvBatch::get`].
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.received = 0;
        let base = self.bufs.as_mut_ptr();
        for i in 0..BATCH {
            // SAFETY: `i * SLOT` is within `bufs` (BATCH * SLOT octets long).
            self.iovs[i] = libc::iovec { iov_base: unsafe { base.add(i * SLOT) }.cast(), iov_len: SLOT };
            let namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            point(&mut self.hdrs[i], &mut self.addrs[i], namelen, &mut self.iovs[i]);
        }
        // SAFETY: every header points at a live buffer, iovec and address of this struct, with
        // the lengths they have; the kernel writes at most those lengths; `&mut self` keeps them
        // alive and unaliased for the call. A null timeout means none.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = n as usize;
        Ok(self.received)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`]: its octets, its source (None for an address
    /// family other than IPv4 and IPv6), and whether the kernel cut it short.
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>, bool) {
        if i >= self.received {
            return (&[], None, false);
        }
        let h = &self.hdrs[i];
        let len = (h.msg_len as usize).min(SLOT);
        let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        (&self.bufs[i * SLOT..i * SLOT + len], from_storage(&self.addrs[i]), truncated)
    }
}

/// Points a message header at one address (of `namelen` octets) and one buffer, with no control
/// data and no flags.
fn point(hdr: &mut libc::mmsghdr, addr: &mut libc::sockaddr_storage, namelen: libc::socklen_t, iov: &mut libc::iovec) {
    let h = &mut hdr.msg_hdr;
    h.msg_name = std::ptr::from_mut(addr).cast();
    h.msg_namelen = namelen;
    h.msg_iov = iov;
    h.msg_iovlen = 1;
    h.msg_control = std::ptr::null_mut();
    h.msg_controllen = 0;
    h.msg_flags = 0;
    hdr.msg_len = 0;
}

/// The socket address in a `sockaddr_storage` the kernel filled.
fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large and
            // aligned enough for.
            let a = unsafe { &*(std::ptr::from_ref(s).cast::<libc::sockaddr_in>()) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(std::ptr::from_ref(s).cast::<libc::sockaddr_in6>()) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(a.sin6_port), a.sin6_flowinfo, a.sin6_scope_id)))
        }
        _ => None,
    }
}

/// The address `a` as a `sockaddr_storage` and its length.
fn to_storage(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut s: libc::sockaddr_storage = unsafe { zeroed() };
    match a {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
            let sin = unsafe { &mut *((&raw mut s).cast::<libc::sockaddr_in>()) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() };
            (s, size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *((&raw mut s).cast::<libc::sockaddr_in6>()) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_addr = libc::in6_addr { s6_addr: v6.ip().octets() };
            sin6.sin6_scope_id = v6.scope_id();
            (s, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// Makes an IPv4 UDP socket send each datagram whole, with DF set, never fragmenting it and
/// never lowering its size on an ICMP "fragmentation needed" (`IP_PMTUDISC_PROBE`, ip(7)).
///
/// - RFC 9715 (section 3.1) asks responders to avoid IP fragmentation, which lets an off-path
///   attacker splice forged fragments into a reply. Ignoring "fragmentation needed" also keeps
///   a forged one from making the kernel fragment later replies (Linux's default mode obeys it).
/// - An atomic datagram's IPv4 ID may be any value (RFC 6864 section 4.1): Linux writes 0. In
///   its default mode it draws the ID from a counter shared by every socket sending to that
///   address, which is a cache line written by every worker for every reply to one resolver.
/// - Our replies are at most 1232 octets of DNS (1260 with the headers), under any IPv4 link's
///   MTU in practice. A datagram larger than the interface's MTU is refused with `EMSGSIZE`
///   (reported by [`SendBatch::send`]); the caller then sends a truncated reply instead.
///
/// IPv6 needs nothing: its sources fragment only past the path MTU, and 1232 octets of DNS fit
/// the minimum (1280) with their headers.
pub fn never_fragment(sock: &UdpSocket) -> io::Result<()> {
    let mode: libc::c_int = libc::IP_PMTUDISC_PROBE;
    // SAFETY: the option value is a live `c_int` and the length passed is its size; the kernel
    // only reads it.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&raw const mode).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// The socket's `IP_MTU_DISCOVER` mode (for tests).
#[cfg(test)]
pub fn fragmentation_mode(sock: &UdpSocket) -> io::Result<libc::c_int> {
    let mut mode: libc::c_int = -1;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the value and length point at live locals of the sizes given; the kernel writes
    // at most `len` octets.
    let r = unsafe {
        libc::getsockopt(sock.as_raw_fd(), libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, (&raw mut mode).cast(), &mut len)
    };
    if r == 0 { Ok(mode) } else { Err(io::Error::last_os_error()) }
}

/// Send descriptors for one worker.
pub struct SendBatch {
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Default for SendBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl SendBatch {
    /// Descriptors for [`BATCH`] replies.
    pub fn new() -> Self {
        // SAFETY: as in `RecvBatch::new`.
        let (addr, iov, hdr) = unsafe { (zeroed(), zeroed(), zeroed()) };
        Self { addrs: vec![addr; BATCH], iovs: vec![iov; BATCH], hdrs: vec![hdr; BATCH] }
    }

    /// Sends `replies[i]` to `dests[i]` for every `i` (at most [`BATCH`]), in as few system calls
    /// as the kernel allows. A datagram the kernel refuses (`ENOBUFS`, an unreachable address,
    /// `EMSGSIZE`) is skipped and the rest still go; the refused ones are returned, each with
    /// its index and error, with the count sent.
    pub fn send(
        &mut self,
        sock: &UdpSocket,
        replies: &[Vec<u8>],
        dests: &[SocketAddr],
    ) -> (usize, Vec<(usize, io::Error)>) {
        let n = replies.len().min(dests.len()).min(BATCH);
        for i in 0..n {
            let (addr, len) = to_storage(dests[i]);
            self.addrs[i] = addr;
            // The kernel only reads through iov_base when sending.
            self.iovs[i] = libc::iovec { iov_base: replies[i].as_ptr().cast_mut().cast(), iov_len: replies[i].len() };
            point(&mut self.hdrs[i], &mut self.addrs[i], len, &mut self.iovs[i]);
        }
        let (mut at, mut sent, mut errors) = (0usize, 0usize, Vec::new());
        while at < n {
            // SAFETY: headers `at..n` point at live addresses, iovecs and reply buffers (borrowed
            // for this call) with their true lengths; the kernel only reads them.
            let r =
                unsafe { libc::sendmmsg(sock.as_raw_fd(), self.hdrs[at..].as_mut_ptr(), (n - at) as libc::c_uint, 0) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // sendmmsg fails only on its first datagram: skip that one.
                errors.push((at, e));
                at += 1;
            } else {
                at += r as usize;
                sent += r as usize;
            }
        }
        (sent, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_datagrams_is_received_and_answered_in_order_over_ipv4_and_ipv6() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let server = UdpSocket::bind(bind).unwrap();
            server.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
            let clients: Vec<UdpSocket> = (0..3).map(|_| UdpSocket::bind(bind).unwrap()).collect();
            for (i, c) in clients.iter().enumerate() {
                c.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
                c.send_to(&[i as u8; 3], server.local_addr().unwrap()).unwrap();
            }
            // One oversized datagram: reported as truncated.
            clients[0].send_to(&vec![9u8; SLOT + 10], server.local_addr().unwrap()).unwrap();
            let mut rb = RecvBatch::new();
            let mut got = Vec::new();
            while got.len() < 4 {
                let n = rb.recv(&server).unwrap();
                for i in 0..n {
                    let (raw, src, truncated) = rb.get(i);
                    got.push((raw.to_vec(), src.unwrap(), truncated));
                }
            }
            for (i, c) in clients.iter().enumerate() {
                assert_eq!(got[i], (vec![i as u8; 3], c.local_addr().unwrap(), false), "{bind}");
            }
            assert_eq!((got[3].0.len(), got[3].2), (SLOT, true), "{bind}");
            let replies: Vec<Vec<u8>> =
                got[..3].iter().map(|(raw, _, _)| raw.iter().map(|b| b + 100).collect()).collect();
            let dests: Vec<SocketAddr> = got[..3].iter().map(|(_, src, _)| *src).collect();
            let (sent, errors) = SendBatch::new().send(&server, &replies, &dests);
            assert_eq!((sent, errors.len()), (3, 0));
            for (i, c) in clients.iter().enumerate() {
                let mut buf = [0u8; 16];
                let n = c.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &[i as u8 + 100; 3], "{bind}");
            }
        }
    }
    #[test]
    fn a_datagram_the_kernel_refuses_is_reported_with_its_index_and_the_rest_still_go() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let server = UdpSocket::bind(bind).unwrap();
            let client = UdpSocket::bind(bind).unwrap();
            client.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
            let to = client.local_addr().unwrap();
            // 70,000 octets: more than any UDP datagram can carry.
            let replies = vec![vec![1u8; 3], vec![2u8; 70_000], vec![3u8; 3]];
            let (sent, errors) = SendBatch::new().send(&server, &replies, &[to, to, to]);
            assert_eq!(sent, 2, "{bind}");
            let [(index, error)] = errors.as_slice() else { panic!("{bind}: {errors:?}") };
            assert_eq!((*index, error.raw_os_error()), (1, Some(libc::EMSGSIZE)), "{bind}");
            let mut buf = [0u8; 16];
            for want in [1u8, 3] {
                let n = client.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &[want; 3], "{bind}");
            }
        }
    }

    #[test]
    fn an_ipv4_socket_set_never_to_fragment_probes_instead_of_following_path_mtu() {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_ne!(fragmentation_mode(&sock).unwrap(), libc::IP_PMTUDISC_PROBE, "not the kernel's default");
        never_fragment(&sock).unwrap();
        assert_eq!(fragmentation_mode(&sock).unwrap(), libc::IP_PMTUDISC_PROBE);
    }
}
