//! Peer identity on Linux: the uid of the client socket of a loopback TCP
//! connection.
//!
//! The kernel is asked for exactly one socket with netlink `sock_diag`
//! (`SOCK_DIAG_BY_FAMILY` without `NLM_F_DUMP`, the full 4-tuple in the
//! request), which costs one round trip whatever the number of open sockets.
//! Only when a `sock_diag` socket cannot be used at all (some sandboxes and
//! container runtimes lack it) do we read `/proc/net/tcp{,6}` instead, line by
//! line, stopping at the first match. Either way the answer is an exact match
//! of a full socket or an error: nothing is guessed.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::Socket;
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;
use nix::unistd::{Uid, User};

use super::{canonical, OsUser, PeerError, PeerIdentity};

/// How long we wait for the kernel's answer. It answers an exact lookup
/// synchronously; the timeout only bounds the handshake if something is
/// badly wrong.
const NETLINK_TIMEOUT: Duration = Duration::from_secs(1);

/// Receive buffer for one answer: a single `inet_diag_msg` (72 bytes) plus
/// headers; generous so the kernel never truncates it.
const NETLINK_BUFFER: usize = 8 * 1024;

/// At most this many netlink messages are read per lookup: the exact lookup
/// yields one message, so anything beyond a handful is a protocol surprise.
const MAX_NETLINK_MESSAGES: usize = 8;

/// `cookie` value meaning "any socket with this 4-tuple"
/// (`INET_DIAG_NOCOOKIE`); a zero cookie would be compared with the socket's.
const NO_COOKIE: [u8; 8] = [0xff; 8];

/// TCP states of sockets that carry no owner: `SYN_RECV` and `NEW_SYN_RECV`
/// are request sockets, `TIME_WAIT` a remnant, `LISTEN` never a client end.
/// The kernel reports uid 0 for the first three, which must never be read as
/// "root".
const OWNERLESS_STATES: [u8; 4] = [3, 6, 10, 12];

/// Peer identity through `sock_diag`, with `/proc/net/tcp{,6}` as fallback.
#[derive(Debug)]
pub struct SystemPeerIdentity {
    /// The daemon's effective uid.
    current_uid: u32,
    /// The daemon's user, looked up once: it does not change while we run.
    current: OsUser,
}

impl SystemPeerIdentity {
    /// Looks up the daemon's effective user.
    pub fn new() -> Self {
        let current_uid = geteuid_raw();
        SystemPeerIdentity {
            current_uid,
            current: user_for_uid(current_uid),
        }
    }
}

impl PeerIdentity for SystemPeerIdentity {
    fn owner_of(&self, peer: SocketAddr, local: SocketAddr) -> Result<OsUser, PeerError> {
        let uid = match netlink_owner(peer, local) {
            Ok(found) => found,
            // No sock_diag here at all: the same question through /proc.
            Err(NetlinkError::Unavailable(err)) => {
                tracing::debug!(error = %err, "sock_diag unavailable, reading /proc/net/tcp instead");
                proc_owner(peer, local)?
            }
            Err(NetlinkError::Io(err)) => return Err(PeerError::Io(err)),
        };
        let uid = uid.ok_or(PeerError::NotFound { peer, local })?;
        if uid == self.current_uid {
            // Skip the passwd lookup for the common case: the same user.
            return Ok(self.current.clone());
        }
        Ok(user_for_uid(uid))
    }

    fn current_user(&self) -> OsUser {
        self.current.clone()
    }
}

/// The effective uid of this process.
fn geteuid_raw() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// `uid:<n>` with the login name, or the id again when the uid has no name.
fn user_for_uid(uid: u32) -> OsUser {
    let id = format!("uid:{uid}");
    let name = match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        // An unnamed uid (a container user, a broken NSS) is still a valid,
        // comparable identity; the name is only for people reading logs.
        Ok(None) | Err(_) => id.clone(),
    };
    OsUser { id, name }
}

/// Why the netlink path gave no answer.
#[derive(Debug)]
enum NetlinkError {
    /// A `sock_diag` socket cannot be created or used here: try `/proc`.
    Unavailable(io::Error),
    /// The kernel was asked and failed: report it (fail closed).
    Io(io::Error),
}

/// The uid owning the socket whose local address is `peer` and remote address
/// is `local`, from exact `sock_diag` requests; `Ok(None)` when the kernel
/// knows no such (full) socket.
fn netlink_owner(peer: SocketAddr, local: SocketAddr) -> Result<Option<u32>, NetlinkError> {
    let (peer, local) = (canonical(peer), canonical(local));
    match (peer, local) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) => {
            if let Some(uid) = netlink_lookup(AF_INET, peer, local)? {
                return Ok(Some(uid));
            }
            // A dual-stack IPv6 client socket talking to 127.0.0.1 (what Java
            // and .NET create by default) is an AF_INET6 socket with mapped
            // addresses: the AF_INET lookup does not see it.
            let mapped = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
                IpAddr::V6(_) => a,
            };
            netlink_lookup(AF_INET6, mapped(peer), mapped(local))
        }
        (SocketAddr::V6(_), SocketAddr::V6(_)) => netlink_lookup(AF_INET6, peer, local),
        // An IPv4 socket never talks to an IPv6 one once mapped addresses are
        // unwrapped: there is nothing to find.
        _ => Ok(None),
    }
}

/// One exact `sock_diag` lookup of the `family` socket `peer -> local`.
fn netlink_lookup(
    family: u8,
    peer: SocketAddr,
    local: SocketAddr,
) -> Result<Option<u32>, NetlinkError> {
    let socket = Socket::new(NETLINK_SOCK_DIAG).map_err(NetlinkError::Unavailable)?;
    let timeout = TimeVal::new(
        NETLINK_TIMEOUT.as_secs().try_into().unwrap_or(1),
        NETLINK_TIMEOUT.subsec_micros().into(),
    );
    setsockopt(&socket, sockopt::ReceiveTimeout, &timeout)
        .map_err(|errno| NetlinkError::Unavailable(errno.into()))?;

    let mut header = NetlinkHeader::default();
    // NLM_F_REQUEST without NLM_F_DUMP: the kernel looks up exactly this
    // 4-tuple instead of walking every socket.
    header.flags = NLM_F_REQUEST;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: SocketId {
                source_port: peer.port(),
                destination_port: local.port(),
                source_address: peer.ip(),
                destination_address: local.ip(),
                interface_id: 0,
                cookie: NO_COOKIE,
            },
        })
        .into(),
    );
    request.finalize();
    let mut out = vec![0; request.buffer_len()];
    request.serialize(&mut out);
    // The kernel address (port 0) is the default destination of an unbound,
    // unconnected netlink socket's send_to; connect keeps send simple.
    socket
        .connect(&netlink_sys::SocketAddr::new(0, 0))
        .map_err(NetlinkError::Unavailable)?;
    socket.send(&out, 0).map_err(NetlinkError::Unavailable)?;

    for _ in 0..MAX_NETLINK_MESSAGES {
        let mut buffer = Vec::with_capacity(NETLINK_BUFFER);
        let size = socket.recv(&mut buffer, 0).map_err(NetlinkError::Io)?;
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&buffer[offset..size])
                .map_err(|err| {
                    NetlinkError::Io(io::Error::new(io::ErrorKind::InvalidData, err.to_string()))
                })?;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                    let id = &response.header.socket_id;
                    // The kernel answers the exact lookup; checking the tuple
                    // again costs nothing and keeps us honest.
                    let same_tuple = id.source_port == peer.port()
                        && id.destination_port == local.port()
                        && id.source_address == peer.ip()
                        && id.destination_address == local.ip();
                    if !same_tuple || OWNERLESS_STATES.contains(&response.header.state) {
                        return Ok(None);
                    }
                    return Ok(Some(response.header.uid));
                }
                NetlinkPayload::Error(error) => {
                    let err = error.to_io();
                    return match err.raw_os_error() {
                        Some(code) if code == nix::errno::Errno::ENOENT as i32 => Ok(None),
                        // A bare ACK (code 0) carries no socket: nothing found.
                        _ if error.code.is_none() => Ok(None),
                        _ => Err(NetlinkError::Io(err)),
                    };
                }
                NetlinkPayload::Done(_) => return Ok(None),
                _ => {}
            }
            let length = usize::try_from(message.header.length).unwrap_or(0);
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
    Err(NetlinkError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        "sock_diag gave no answer to an exact lookup",
    )))
}

/// The uid owning the socket `peer -> local`, from `/proc/net/tcp` or
/// `/proc/net/tcp6`; `Ok(None)` when no full socket matches.
fn proc_owner(peer: SocketAddr, local: SocketAddr) -> Result<Option<u32>, PeerError> {
    let (peer_c, local_c) = (canonical(peer), canonical(local));
    match (peer_c, local_c) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) => {
            if let Some(uid) = scan_proc_file("/proc/net/tcp", peer_c, local_c)? {
                return Ok(Some(uid));
            }
            // An IPv6 client socket talking to an IPv4 address is listed in
            // tcp6 with mapped addresses.
            let mapped = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
                IpAddr::V6(_) => a,
            };
            scan_proc_file("/proc/net/tcp6", mapped(peer_c), mapped(local_c))
        }
        (SocketAddr::V6(_), SocketAddr::V6(_)) => scan_proc_file("/proc/net/tcp6", peer, local),
        _ => Ok(None),
    }
}

/// Streams one `/proc/net/tcp*` file and stops at the first matching row.
fn scan_proc_file(
    path: &str,
    peer: SocketAddr,
    local: SocketAddr,
) -> Result<Option<u32>, PeerError> {
    let reader = BufReader::new(File::open(path)?);
    find_in_table(reader, peer, local)
}

/// The uid of the first row of a `/proc/net/tcp*` table whose local address
/// is `peer`, whose remote address is `local` and whose socket has an owner.
fn find_in_table(
    reader: impl BufRead,
    peer: SocketAddr,
    local: SocketAddr,
) -> Result<Option<u32>, PeerError> {
    // The first line is the column header.
    for line in reader.lines().skip(1) {
        let line = line?;
        if let Some(row) = parse_row(&line) {
            if row.local == peer && row.remote == local && !OWNERLESS_STATES.contains(&row.state) {
                return Ok(Some(row.uid));
            }
        }
    }
    Ok(None)
}

/// The columns of a `/proc/net/tcp*` row that we use.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    /// `local_address`.
    local: SocketAddr,
    /// `rem_address`.
    remote: SocketAddr,
    /// `st`, the TCP state number.
    state: u8,
    /// `uid` of the socket's owner.
    uid: u32,
}

/// Parses `sl local rem st tx:rx tr:when retrnsmt uid ...`; `None` for a
/// line that is not a socket row.
fn parse_row(line: &str) -> Option<Row> {
    let mut fields = line.split_whitespace();
    let _slot = fields.next()?;
    let local = parse_endpoint(fields.next()?)?;
    let remote = parse_endpoint(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    // tx_queue:rx_queue, tr:tm->when, retrnsmt
    let uid = fields.nth(3)?.parse().ok()?;
    Some(Row {
        local,
        remote,
        state,
        uid,
    })
}

/// Parses `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6).
///
/// The kernel prints each 32-bit word of the address with `%08X` as it sits
/// in memory, i.e. network-order bytes read as a host-order integer; turning
/// the value back into native-endian bytes restores the network order on
/// any host. The port is printed as a plain number.
fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(parse_word(address)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (index, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                let word = address.get(index * 8..index * 8 + 8)?;
                chunk.copy_from_slice(&parse_word(word)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// One `%08X` word of a `/proc/net/tcp*` address as network-order bytes.
fn parse_word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formats a word the way the kernel does on this host.
    fn word(bytes: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(bytes))
    }

    fn v4_endpoint(ip: [u8; 4], port: u16) -> String {
        format!("{}:{port:04X}", word(ip))
    }

    fn v6_endpoint(ip: Ipv6Addr, port: u16) -> String {
        let octets = ip.octets();
        let mut text = String::new();
        for chunk in octets.chunks_exact(4) {
            text.push_str(&word([chunk[0], chunk[1], chunk[2], chunk[3]]));
        }
        format!("{text}:{port:04X}")
    }

    fn row(local: &str, remote: &str, state: &str, uid: u32) -> String {
        format!(
            "   0: {local} {remote} {state} 00000000:00000000 00:00000000 00000000  {uid}        0 4242 1 0000000000000000 20 4 30 10 -1"
        )
    }

    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";

    #[test]
    fn parses_ipv4_endpoint_in_kernel_format() {
        let text = v4_endpoint([127, 0, 0, 1], 8443);
        assert_eq!(
            parse_endpoint(&text),
            Some("127.0.0.1:8443".parse().unwrap())
        );
        if cfg!(target_endian = "little") {
            // What /proc actually shows on x86 and arm64.
            assert_eq!(text, "0100007F:20FB");
        }
    }

    #[test]
    fn parses_ipv6_endpoints_in_kernel_format() {
        for ip in [
            Ipv6Addr::LOCALHOST,
            "fe80::1:2:3:4".parse().unwrap(),
            Ipv4Addr::LOCALHOST.to_ipv6_mapped(),
        ] {
            let text = v6_endpoint(ip, 50000);
            assert_eq!(
                parse_endpoint(&text),
                Some(SocketAddr::new(IpAddr::V6(ip), 50000))
            );
        }
        if cfg!(target_endian = "little") {
            assert_eq!(
                v6_endpoint(Ipv6Addr::LOCALHOST, 1),
                "00000000000000000000000001000000:0001"
            );
        }
    }

    #[test]
    fn rejects_malformed_endpoints() {
        for text in [
            "",
            "0100007F",
            "0100007F:XYZ",
            "01007F:0050",
            "zz00007F:0050",
        ] {
            assert_eq!(parse_endpoint(text), None, "{text}");
        }
    }

    #[test]
    fn finds_the_exact_row_and_skips_others() {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        let table = [
            HEADER.to_string(),
            // Our listener and our accepted end: wrong direction.
            row(
                &v4_endpoint([127, 0, 0, 1], 8443),
                &v4_endpoint([0; 4], 0),
                "0A",
                0,
            ),
            row(
                &v4_endpoint([127, 0, 0, 1], 8443),
                &v4_endpoint([127, 0, 0, 1], 40000),
                "01",
                0,
            ),
            // Same addresses, another port.
            row(
                &v4_endpoint([127, 0, 0, 1], 40001),
                &v4_endpoint([127, 0, 0, 1], 8443),
                "01",
                1001,
            ),
            // A TIME_WAIT remnant of the same tuple: uid 0 means nothing.
            row(
                &v4_endpoint([127, 0, 0, 1], 40000),
                &v4_endpoint([127, 0, 0, 1], 8443),
                "06",
                0,
            ),
            row(
                &v4_endpoint([127, 0, 0, 1], 40000),
                &v4_endpoint([127, 0, 0, 1], 8443),
                "01",
                1000,
            ),
        ]
        .join("\n");
        let found = find_in_table(table.as_bytes(), peer, local).unwrap();
        assert_eq!(found, Some(1000));

        let other: SocketAddr = "127.0.0.1:40002".parse().unwrap();
        assert_eq!(find_in_table(table.as_bytes(), other, local).unwrap(), None);
    }

    #[test]
    fn time_wait_alone_is_not_an_owner() {
        let peer: SocketAddr = "[::1]:40000".parse().unwrap();
        let local: SocketAddr = "[::1]:8443".parse().unwrap();
        let table = [
            HEADER.to_string(),
            row(
                &v6_endpoint(Ipv6Addr::LOCALHOST, 40000),
                &v6_endpoint(Ipv6Addr::LOCALHOST, 8443),
                "06",
                0,
            ),
        ]
        .join("\n");
        assert_eq!(find_in_table(table.as_bytes(), peer, local).unwrap(), None);
    }

    #[test]
    fn mapped_addresses_become_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.1:5".parse().unwrap());
        let v6: SocketAddr = "[::1]:5".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn proc_fallback_finds_a_real_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_end, peer) = listener.accept().unwrap();
        let local = listener.local_addr().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let uid = proc_owner(peer, local).unwrap();
        assert_eq!(uid, Some(geteuid_raw()));
        // The reverse direction is our own accepted socket, also ours, but the
        // made-up tuple is not there at all.
        let bogus: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(proc_owner(bogus, local).unwrap(), None);
    }

    #[test]
    fn netlink_finds_a_real_connection() {
        let listener = std::net::TcpListener::bind("[::1]:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_end, peer) = listener.accept().unwrap();
        let local = listener.local_addr().unwrap();
        match netlink_owner(peer, local) {
            Ok(uid) => assert_eq!(uid, Some(geteuid_raw())),
            // The fallback covers kernels without sock_diag; say so loudly.
            Err(NetlinkError::Unavailable(err)) => {
                println!("SKIPPED: sock_diag unavailable here: {err}")
            }
            Err(NetlinkError::Io(err)) => panic!("sock_diag failed: {err}"),
        }
    }

    #[test]
    fn finds_a_dual_stack_client_of_an_ipv4_listener() {
        // An AF_INET6 client socket connected to ::ffff:127.0.0.1 (the default
        // of Java's and .NET's sockets): the listener sees a plain IPv4 peer.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("::ffff:127.0.0.1", port)).unwrap();
        assert!(client.local_addr().unwrap().is_ipv6());
        let (_server_end, peer) = listener.accept().unwrap();
        assert!(peer.is_ipv4());
        let local = listener.local_addr().unwrap();
        match netlink_owner(peer, local) {
            Ok(uid) => assert_eq!(uid, Some(geteuid_raw())),
            Err(NetlinkError::Unavailable(err)) => {
                println!("SKIPPED: sock_diag unavailable here: {err}")
            }
            Err(NetlinkError::Io(err)) => panic!("sock_diag failed: {err}"),
        }
        assert_eq!(proc_owner(peer, local).unwrap(), Some(geteuid_raw()));
    }
}
