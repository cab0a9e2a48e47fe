//! Peer identity against real loopback sockets: our own connections on IPv4
//! and IPv6, a made-up 4-tuple, a client started as a second OS user (when
//! running as root), and a rough cost per lookup.

#[path = "support/skip.rs"]
mod skip;

use std::io;
use std::net::SocketAddr;

use wsconnector::peer::{FixedOwner, FixedPeerIdentity, OsUser, PeerError, PeerIdentity};

/// Tests against the real OS facility; only Linux has one so far.
#[cfg(target_os = "linux")]
mod linux {
    use std::io::{self, Read};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use wsconnector::peer::{self, OsUser, PeerError};

    /// Name of the throwaway account for the second-user test.
    const OTHER_USER: &str = "wsc-peer-test";

    /// How long a helper process may take to connect.
    const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

    /// A listener on `addr`, a client connected to it and the accepted end.
    /// Returns `(client, server_end, peer, local)`.
    fn connected_pair(addr: &str) -> (TcpStream, TcpStream, SocketAddr, SocketAddr) {
        let listener = TcpListener::bind(addr).unwrap();
        let local = listener.local_addr().unwrap();
        let client = TcpStream::connect(local).unwrap();
        let (server_end, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(server_end.local_addr().unwrap(), local);
        (client, server_end, peer, local)
    }

    #[test]
    fn own_connections_belong_to_the_current_user_on_both_families() {
        let identity = peer::system();
        let me = identity.current_user();
        assert_eq!(me.id, format!("uid:{}", nix::unistd::geteuid().as_raw()));
        assert!(!me.name.is_empty());
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let (_client, _server_end, peer, local) = connected_pair(addr);
            let owner = identity.owner_of(peer, local).unwrap();
            assert_eq!(owner, me, "{addr}");
        }
    }

    #[test]
    fn current_user_has_the_login_name() {
        let me = peer::system().current_user();
        let expected = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .map(|user| user.name)
            .unwrap_or_else(|| me.id.clone());
        assert_eq!(me.name, expected);
    }

    #[test]
    fn ipv4_mapped_addresses_are_looked_up_as_ipv4() {
        let identity = peer::system();
        let (_client, _server_end, peer, local) = connected_pair("127.0.0.1:0");
        let map = |a: SocketAddr| match a {
            SocketAddr::V4(v4) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
            SocketAddr::V6(_) => a,
        };
        let owner = identity.owner_of(map(peer), map(local)).unwrap();
        assert_eq!(owner, identity.current_user());
    }

    #[test]
    fn made_up_tuple_is_not_found() {
        let identity = peer::system();
        let (_client, _server_end, peer, local) = connected_pair("127.0.0.1:0");
        // Port 1 is never an ephemeral client port, so no real socket matches.
        let bogus_peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        for (p, l) in [
            (bogus_peer, local),
            ("[::1]:1".parse().unwrap(), "[::1]:2".parse().unwrap()),
            // Mixed families can never be one connection.
            (peer, "[::1]:2".parse().unwrap()),
        ] {
            match identity.owner_of(p, l) {
                Err(PeerError::NotFound { peer, local }) => {
                    assert_eq!((peer, local), (p, l));
                }
                other => panic!("{p} -> {l}: expected NotFound, got {other:?}"),
            }
        }
    }

    #[test]
    fn closed_connection_is_not_attributed_to_anyone() {
        let identity = peer::system();
        let (client, server_end, peer, local) = connected_pair("127.0.0.1:0");
        // The client closes first and so keeps the TIME_WAIT remnant, which the
        // kernel reports with uid 0; it must not come back as "root".
        drop(client);
        drop(server_end);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match identity.owner_of(peer, local) {
                Err(PeerError::NotFound { .. }) => break,
                Ok(owner) => {
                    // Still in FIN_WAIT for a moment: then it is still ours.
                    assert_eq!(owner, identity.current_user());
                    assert!(Instant::now() < deadline, "socket never went away");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(err) => panic!("unexpected error {err}"),
            }
        }
    }

    /// Runs `program args` to completion, for setup steps.
    fn run(program: &str, args: &[&str]) -> io::Result<std::process::Output> {
        Command::new(program).args(args).output()
    }

    /// Why the second-user test cannot run here, if it cannot.
    fn second_user_unavailable() -> Option<String> {
        if !nix::unistd::geteuid().is_root() {
            return Some("not running as root".into());
        }
        for tool in ["useradd", "setpriv", "bash"] {
            if run("sh", &["-c", &format!("command -v {tool}")])
                .map(|out| !out.status.success())
                .unwrap_or(true)
            {
                return Some(format!("{tool} is not installed"));
            }
        }
        None
    }

    /// Creates the test account if it does not exist yet and returns its uid.
    fn ensure_other_user() -> Result<u32, String> {
        if let Ok(Some(user)) = nix::unistd::User::from_name(OTHER_USER) {
            return Ok(user.uid.as_raw());
        }
        let out = run("useradd", &["-M", "-s", "/usr/sbin/nologin", OTHER_USER])
            .map_err(|err| format!("useradd: {err}"))?;
        // 9: the user exists already (created by a concurrent test run).
        if !out.status.success() && out.status.code() != Some(9) {
            return Err(format!(
                "useradd failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        nix::unistd::User::from_name(OTHER_USER)
            .map_err(|err| format!("getpwnam: {err}"))?
            .map(|user| user.uid.as_raw())
            .ok_or_else(|| "user missing after useradd".into())
    }

    /// A bash client running as `OTHER_USER`, connected to `local` and holding
    /// the connection until its stdin closes.
    fn spawn_foreign_client(local: SocketAddr) -> Child {
        let host = match local {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => v6.ip().to_string(),
        };
        let script = format!(
            "exec 3<>/dev/tcp/{host}/{}; read -r _ || true",
            local.port()
        );
        Command::new("setpriv")
            .args([
                &format!("--reuid={OTHER_USER}"),
                &format!("--regid={OTHER_USER}"),
                "--clear-groups",
                "bash",
                "-c",
                &script,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Accepts one connection, failing if the client exits or the deadline passes.
    fn accept_from(listener: &TcpListener, child: &mut Child) -> (TcpStream, SocketAddr) {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + CONNECT_DEADLINE;
        loop {
            match listener.accept() {
                Ok(pair) => return pair,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => panic!("accept: {err}"),
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    pipe.read_to_string(&mut stderr).unwrap();
                }
                panic!("foreign client exited with {status} before connecting: {stderr}");
            }
            assert!(Instant::now() < deadline, "foreign client never connected");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn second_os_user_is_identified() {
        if let Some(reason) = second_user_unavailable() {
            crate::skip::skipped("second-OS-user peer test", &reason.to_string());
            return;
        }
        let other_uid = match ensure_other_user() {
            Ok(uid) => uid,
            Err(reason) => {
                crate::skip::skipped("second-OS-user peer test", &reason.to_string());
                return;
            }
        };
        let identity = peer::system();
        let me = identity.current_user();
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let listener = TcpListener::bind(addr).unwrap();
            let local = listener.local_addr().unwrap();
            let mut child = spawn_foreign_client(local);
            let (_server_end, peer) = accept_from(&listener, &mut child);
            let owner = identity.owner_of(peer, local);
            // Let the client go before asserting so a failure leaves no process.
            drop(child.stdin.take());
            let status = child.wait().unwrap();
            let owner = owner.unwrap();
            assert_eq!(
                owner,
                OsUser {
                    id: format!("uid:{other_uid}"),
                    name: OTHER_USER.into()
                },
                "{addr}"
            );
            assert_ne!(owner.id, me.id);
            assert!(status.success(), "foreign client: {status}");
        }
    }

    #[test]
    fn lookup_cost() {
        const LOOKUPS: u32 = 200;
        let identity = peer::system();
        let (_client, _server_end, peer, local) = connected_pair("127.0.0.1:0");
        let started = Instant::now();
        for _ in 0..LOOKUPS {
            assert_eq!(
                identity.owner_of(peer, local).unwrap(),
                identity.current_user()
            );
        }
        let average = started.elapsed() / LOOKUPS;
        println!("peer lookup: {average:?} on average over {LOOKUPS} lookups");
    }
}

#[test]
fn fixed_identity_answers_and_counts() {
    let me = OsUser {
        id: "uid:1000".into(),
        name: "alice".into(),
    };
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:8443".parse().unwrap();

    let same = FixedPeerIdentity::same_user(me.clone());
    assert_eq!(same.lookups(), 0);
    assert_eq!(same.owner_of(peer, local).unwrap(), me);
    assert_eq!(same.current_user(), me);
    assert_eq!(same.lookups(), 1);

    let missing = FixedPeerIdentity::new(me.clone(), FixedOwner::NotFound);
    assert!(matches!(
        missing.owner_of(peer, local),
        Err(PeerError::NotFound { peer: p, local: l }) if p == peer && l == local
    ));
    let failing =
        FixedPeerIdentity::new(me.clone(), FixedOwner::Io(io::ErrorKind::PermissionDenied));
    assert!(matches!(
        failing.owner_of(peer, local),
        Err(PeerError::Io(err)) if err.kind() == io::ErrorKind::PermissionDenied
    ));
    let unsupported = FixedPeerIdentity::new(me, FixedOwner::Unsupported);
    assert!(matches!(
        unsupported.owner_of(peer, local),
        Err(PeerError::Unsupported)
    ));
    assert_eq!(unsupported.lookups(), 1);
}
