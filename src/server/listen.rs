//! Binding the loopback listeners: 127.0.0.1 **and** [::1] on one port,
//! never a wildcard address.
//!
//! A browser tries `localhost` on ::1 first, so a port we hold on 127.0.0.1
//! only would let another program answer on ::1 and receive the traffic
//! (DESIGN.md §4.1). If either address is taken we refuse to start.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::{TcpListener, TcpSocket};

/// How often an ephemeral port (port 0) is retried when ::1 already has the
/// port the kernel picked for 127.0.0.1.
const EPHEMERAL_TRIES: usize = 16;
/// Pending connections per listener.
const BACKLOG: u32 = 512;

/// The two bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// 127.0.0.1:port
    pub v4: TcpListener,
    /// [::1]:port
    pub v6: TcpListener,
}

impl Listeners {
    /// The port both listeners share.
    pub fn port(&self) -> u16 {
        self.v4.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Both bound addresses, IPv4 first.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        [self.v4.local_addr(), self.v6.local_addr()]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Binding failed; the message names the address.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}{hint}")]
pub struct BindError {
    /// The address that could not be bound.
    pub addr: SocketAddr,
    /// The OS error.
    #[source]
    pub source: io::Error,
    /// Advice for the operator.
    hint: &'static str,
}

fn bind_one(addr: SocketAddr) -> Result<TcpListener, BindError> {
    let fail = |source: io::Error| {
        let hint = match source.kind() {
            io::ErrorKind::AddrInUse => {
                " (another program, or another wsconnector, already uses this port: stop it or choose another Socket-port)"
            }
            io::ErrorKind::AddrNotAvailable => {
                " (this loopback address is not configured on the machine)"
            }
            _ => "",
        };
        BindError { addr, source, hint }
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(fail)?;
    // Unix: SO_REUSEADDR lets us rebind right after a restart while old
    // connections sit in TIME_WAIT; it does NOT let a second listener share
    // the port. On Windows the same option would allow port stealing, so it
    // is never set there; SO_EXCLUSIVEADDRUSE instead forbids any other
    // socket (even one with SO_REUSEADDR, even another user's) to bind our
    // address while we hold it.
    #[cfg(unix)]
    socket.set_reuseaddr(true).map_err(fail)?;
    #[cfg(windows)]
    exclusive_addr_use(&socket).map_err(fail)?;
    socket.bind(addr).map_err(fail)?;
    socket.listen(BACKLOG).map_err(fail)
}

/// Sets `SO_EXCLUSIVEADDRUSE` on a socket not bound yet. Neither tokio nor
/// socket2 exposes this option, so it is one `setsockopt` call on the raw
/// socket.
#[cfg(windows)]
#[allow(unsafe_code)]
fn exclusive_addr_use(socket: &TcpSocket) -> io::Result<()> {
    use std::os::windows::io::AsRawSocket;
    use windows_sys::Win32::Networking::WinSock::{setsockopt, SOL_SOCKET, SO_EXCLUSIVEADDRUSE};

    let on: i32 = 1;
    // SAFETY: the raw socket is owned by `socket` and open for the call;
    // `on` is a readable BOOL-sized (4-byte) value that outlives it.
    let rc = unsafe {
        setsockopt(
            socket.as_raw_socket() as usize,
            SOL_SOCKET,
            SO_EXCLUSIVEADDRUSE,
            (&on as *const i32).cast(),
            std::mem::size_of::<i32>() as i32,
        )
    };
    if rc != 0 {
        // Winsock errors map onto io::Error codes (WSAGetLastError).
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bind 127.0.0.1:`port` and [::1]:`port`. With `port` 0 the kernel picks a
/// port for 127.0.0.1 and the same port is then bound on ::1 (retried a few
/// times if ::1 has it taken).
pub fn bind(port: u16) -> Result<Listeners, BindError> {
    let v4_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6_at = |p: u16| SocketAddr::from((Ipv6Addr::LOCALHOST, p));
    if port != 0 {
        let v4 = bind_one(v4_addr)?;
        let v6 = bind_one(v6_at(port))?;
        return Ok(Listeners { v4, v6 });
    }
    let mut last = None;
    for _ in 0..EPHEMERAL_TRIES {
        let v4 = bind_one(v4_addr)?;
        let chosen = v4.local_addr().map_err(|source| BindError {
            addr: v4_addr,
            source,
            hint: "",
        })?;
        match bind_one(v6_at(chosen.port())) {
            Ok(v6) => return Ok(Listeners { v4, v6 }),
            Err(e) if e.source.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| BindError {
        addr: v6_at(0),
        source: io::Error::from(io::ErrorKind::AddrInUse),
        hint: "",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_both_loopback_families_on_one_port() {
        let l = bind(0).unwrap();
        let addrs = l.addrs();
        assert_eq!(addrs.len(), 2);
        assert!(addrs[0].ip().is_loopback() && addrs[0].is_ipv4());
        assert!(addrs[1].ip().is_loopback() && addrs[1].is_ipv6());
        assert_eq!(addrs[0].port(), addrs[1].port());
    }

    #[tokio::test]
    async fn a_taken_address_is_named_in_the_error() {
        let l = bind(0).unwrap();
        let err = bind(l.port()).unwrap_err();
        assert_eq!(err.addr, SocketAddr::from((Ipv4Addr::LOCALHOST, l.port())));
        assert!(err.to_string().contains(&format!("127.0.0.1:{}", l.port())));
        // Only ::1 taken: the error names ::1.
        let v6only = bind_one(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).unwrap();
        let port = v6only.local_addr().unwrap().port();
        let err = bind(port).unwrap_err();
        assert_eq!(err.addr, SocketAddr::from((Ipv6Addr::LOCALHOST, port)));
        assert!(err.to_string().contains(&format!("[::1]:{port}")), "{err}");
    }
}
