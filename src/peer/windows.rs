//! Peer identity on Windows: the account (SID) owning the client socket of
//! a loopback TCP connection.
//!
//! `GetExtendedTcpTable` (`TCP_TABLE_OWNER_PID_ALL`, IPv4 and IPv6) gives
//! the process id owning the socket whose local end is the client address
//! and whose remote end is ours; that process's token gives the user SID
//! (`S-1-5-21-…`, the comparable id) and `DOMAIN\user` (for people). The
//! answer is an exact 4-tuple match or an error: nothing is guessed.
//!
//! Antivirus and proxy products that intercept loopback traffic own the
//! sockets we then see, often as SYSTEM: when a lookup finds nothing or
//! another user, the owning program's path is logged so the refusal can be
//! explained.
//!
//! The table is read from bytes (safe code, unit-tested); only the Win32
//! calls are `unsafe`, each with a `// SAFETY:` note.

// Win32 is a C API: every call is `unsafe`. The crate denies unsafe code
// everywhere else.
#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use windows_sys::Win32::Foundation::{
    CloseHandle, LocalFree, ERROR_INSUFFICIENT_BUFFER, HANDLE, NO_ERROR,
};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    GetExtendedTcpTable, MIB_TCP6ROW_OWNER_PID, MIB_TCPROW_OWNER_PID, MIB_TCP_STATE_TIME_WAIT,
    TCP_TABLE_OWNER_PID_ALL,
};
use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6};
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{
    GetTokenInformation, LookupAccountSidW, TokenSessionId, TokenUser, PSID, SID_NAME_USE,
    TOKEN_INFORMATION_CLASS, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, QueryFullProcessImageNameW,
    PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::{canonical, OsUser, PeerError, PeerIdentity};

/// First size tried for a TCP table: a few hundred rows, enough for most
/// desktops in one call.
const TABLE_INITIAL_BYTES: u32 = 32 * 1024;
/// Calls of `GetExtendedTcpTable` per table: the table may grow between the
/// size query and the read, but a lookup must stay cheap and bounded, so a
/// peer opening sockets in a loop cannot keep us spinning (issue 6).
const TABLE_TRIES: usize = 4;
/// Larger tables (about 300 000 IPv6 rows) are refused: fail closed rather
/// than allocate without bound.
const TABLE_MAX_BYTES: u32 = 16 * 1024 * 1024;
/// At most this many related sockets are logged when a lookup fails.
const MAX_DIAGNOSTIC_ROWS: usize = 4;
/// Id of the daemon's user when its own token cannot be read: not a SID, so
/// it equals no peer's id and every comparison fails closed.
const UNKNOWN_CURRENT_ID: &str = "sid:unknown";

/// Peer identity through the TCP owner tables and process tokens.
#[derive(Debug)]
pub struct SystemPeerIdentity {
    /// The daemon's user, looked up once: it does not change while we run.
    current: OsUser,
    /// The daemon's session, for the debug log about a peer's session.
    current_session: Option<u32>,
}

impl SystemPeerIdentity {
    /// Reads the daemon's user from its own process token.
    pub fn new() -> Self {
        // SAFETY: the pseudo handle of the current process needs no closing
        // and is valid for the life of the process.
        let process = unsafe { GetCurrentProcess() };
        match token_identity(process) {
            Ok((current, session)) => SystemPeerIdentity {
                current,
                current_session: session,
            },
            Err(err) => {
                tracing::warn!(error = %err, "cannot read this process's user; every connection will be refused");
                SystemPeerIdentity {
                    current: OsUser {
                        id: UNKNOWN_CURRENT_ID.to_string(),
                        name: UNKNOWN_CURRENT_ID.to_string(),
                    },
                    current_session: None,
                }
            }
        }
    }
}

impl PeerIdentity for SystemPeerIdentity {
    fn owner_of(&self, peer: SocketAddr, local: SocketAddr) -> Result<OsUser, PeerError> {
        let Some(pid) = owner_pid_settled(peer, local)? else {
            log_related_sockets(peer, local);
            return Err(PeerError::NotFound { peer, local });
        };
        let process = Handle::open_process(pid).inspect_err(|err| {
            tracing::info!(pid, %peer, error = %err, "cannot open the process owning the connection");
        })?;
        let (user, session) = token_identity(process.0)?;
        // The trait has no notion of sessions (one user logged on twice, e.g.
        // on a terminal server, is one user); keep it in the debug log.
        tracing::debug!(pid, %peer, user = %user.name, session = ?session, our_session = ?self.current_session, "peer socket owner");
        if user.id != self.current.id {
            // Often an antivirus or proxy product relaying the browser's
            // traffic: name the program so the refusal can be explained.
            tracing::info!(
                pid,
                %peer,
                owner = %user.name,
                sid = %user.id,
                program = %image_path(process.0).unwrap_or_else(|| "?".to_string()),
                "connection owned by another user's program"
            );
        }
        Ok(user)
    }

    fn current_user(&self) -> OsUser {
        self.current.clone()
    }
}

/// One row of a TCP owner table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    /// The socket's own address.
    local: SocketAddr,
    /// The address it is connected to.
    remote: SocketAddr,
    /// `MIB_TCP_STATE`.
    state: u32,
    /// The owning process (0 for TIME_WAIT remnants).
    pid: u32,
}

/// Extra looks for a client row that is not in the table yet, with the
/// pause before each: 14 ms in all, and only when the first look failed.
const LATE_ROW_PAUSES_MS: [u64; 3] = [2, 4, 8];

/// [`owner_pid`], looking again briefly when no row matched: the lookup
/// runs right after `accept`, and a client whose connect has completed may
/// not be listed with its pid yet (Wine lists a socket's owner only once
/// the client has used it; a busy machine can be slow to fill the row).
/// Runs on the blocking pool, so the pauses block no connection.
fn owner_pid_settled(peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    if let Some(pid) = owner_pid(peer, local)? {
        return Ok(Some(pid));
    }
    for pause in LATE_ROW_PAUSES_MS {
        std::thread::sleep(std::time::Duration::from_millis(pause));
        if let Some(pid) = owner_pid(peer, local)? {
            return Ok(Some(pid));
        }
    }
    Ok(None)
}

/// The owning process of the socket `peer -> local`, `None` when no live
/// socket has that 4-tuple.
fn owner_pid(peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    let (peer, local) = (canonical(peer), canonical(local));
    let wanted = |rows: &[Row]| find_owner(rows, peer, local);
    match (peer, local) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) => {
            if let Some(pid) = wanted(&v4_rows(&tcp_table(AF_INET)?)) {
                return Ok(Some(pid));
            }
            // A dual-stack AF_INET6 client (.NET and Java's default) talking
            // to 127.0.0.1 is listed in the IPv6 table with mapped addresses;
            // `v6_rows` unwraps them, so the same tuple matches.
            Ok(wanted(&v6_rows(&tcp_table(AF_INET6)?)))
        }
        (SocketAddr::V6(_), SocketAddr::V6(_)) => Ok(wanted(&v6_rows(&tcp_table(AF_INET6)?))),
        _ => Ok(None),
    }
}

/// The pid of the live row whose local end is `peer` and remote end `local`.
fn find_owner(rows: &[Row], peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    rows.iter()
        .find(|row| {
            row.local == peer
                && row.remote == local
                // TIME_WAIT rows carry pid 0, which is no owner.
                && row.state != MIB_TCP_STATE_TIME_WAIT as u32
                && row.pid != 0
        })
        .map(|row| row.pid)
}

/// Logs the sockets that share the client's endpoint when the exact tuple
/// was not found (a redirecting proxy keeps one end), with their programs.
fn log_related_sockets(peer: SocketAddr, local: SocketAddr) {
    let (peer, local) = (canonical(peer), canonical(local));
    let family = if peer.is_ipv4() { AF_INET } else { AF_INET6 };
    let rows = match tcp_table(family) {
        Ok(table) if family == AF_INET => v4_rows(&table),
        Ok(table) => v6_rows(&table),
        Err(_) => return,
    };
    let related = rows.iter().filter(|row| {
        row.pid != 0 && row.local != local && (row.local == peer || row.remote == peer)
    });
    for row in related.take(MAX_DIAGNOSTIC_ROWS) {
        let program = Handle::open_process(row.pid)
            .ok()
            .and_then(|process| image_path(process.0))
            .unwrap_or_else(|| "?".to_string());
        tracing::info!(%peer, %local, socket_local = %row.local, socket_remote = %row.remote, pid = row.pid, %program, "no exact socket owner; related socket");
    }
}

/// A copy of the `family` TCP owner table, `MIB_TCP{,6}TABLE_OWNER_PID`.
fn tcp_table(family: u16) -> io::Result<Vec<u8>> {
    let mut size = TABLE_INITIAL_BYTES;
    for _ in 0..TABLE_TRIES {
        // u32 words: the table's fields are 4-byte aligned.
        let mut words = vec![0u32; size.div_ceil(4) as usize];
        let mut len = size;
        // SAFETY: `words` is writable for `len` bytes and outlives the call;
        // the API writes at most `len` bytes and reports the needed size
        // through `len` when that is too small.
        let rc = unsafe {
            GetExtendedTcpTable(
                words.as_mut_ptr().cast(),
                &mut len,
                0,
                u32::from(family),
                TCP_TABLE_OWNER_PID_ALL,
                0,
            )
        };
        match rc {
            NO_ERROR => return Ok(words.iter().flat_map(|w| w.to_ne_bytes()).collect()),
            ERROR_INSUFFICIENT_BUFFER => {
                // Room for the rows opened since the size was measured.
                size = len.saturating_add(len / 4).saturating_add(4096);
                if size > TABLE_MAX_BYTES {
                    return Err(io::Error::other(format!(
                        "TCP table larger than {TABLE_MAX_BYTES} bytes"
                    )));
                }
            }
            code => return Err(io::Error::from_raw_os_error(code as i32)),
        }
    }
    Err(io::Error::other("TCP table kept growing while it was read"))
}

/// The `u32` at `offset` as stored (native byte order).
fn word(bytes: &[u8], offset: usize) -> Option<u32> {
    let chunk = bytes.get(offset..offset + 4)?;
    Some(u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
}

/// A port field: the port in network byte order in the low 16 bits, i.e.
/// the first two bytes in memory, whatever the host's endianness.
fn port(bytes: &[u8], offset: usize) -> Option<u16> {
    let chunk = bytes.get(offset..offset + 2)?;
    Some(u16::from_be_bytes([chunk[0], chunk[1]]))
}

/// Rows of the table's first `dwNumEntries`, as many as `bytes` holds.
fn rows_of(bytes: &[u8], row_size: usize, parse: impl Fn(&[u8]) -> Option<Row>) -> Vec<Row> {
    let count = word(bytes, 0).unwrap_or(0) as usize;
    // Rows start after dwNumEntries (4 bytes; every row field is 4-aligned).
    bytes
        .get(4..)
        .unwrap_or_default()
        .chunks_exact(row_size)
        .take(count)
        .filter_map(parse)
        .collect()
}

/// Rows of a `MIB_TCPTABLE_OWNER_PID`.
fn v4_rows(bytes: &[u8]) -> Vec<Row> {
    const SIZE: usize = std::mem::size_of::<MIB_TCPROW_OWNER_PID>();
    // dwState, dwLocalAddr, dwLocalPort, dwRemoteAddr, dwRemotePort, dwOwningPid
    rows_of(bytes, SIZE, |row| {
        let addr = |offset: usize| {
            let b = row.get(offset..offset + 4)?;
            Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        };
        Some(Row {
            state: word(row, 0)?,
            local: SocketAddr::new(addr(4)?.into(), port(row, 8)?),
            remote: SocketAddr::new(addr(12)?.into(), port(row, 16)?),
            pid: word(row, 20)?,
        })
    })
}

/// Rows of a `MIB_TCP6TABLE_OWNER_PID`, mapped IPv4 addresses unwrapped.
fn v6_rows(bytes: &[u8]) -> Vec<Row> {
    const SIZE: usize = std::mem::size_of::<MIB_TCP6ROW_OWNER_PID>();
    // ucLocalAddr[16], dwLocalScopeId, dwLocalPort, ucRemoteAddr[16],
    // dwRemoteScopeId, dwRemotePort, dwState, dwOwningPid
    rows_of(bytes, SIZE, |row| {
        let addr = |offset: usize| {
            let b: [u8; 16] = row.get(offset..offset + 16)?.try_into().ok()?;
            Some(Ipv6Addr::from(b))
        };
        Some(Row {
            local: canonical(SocketAddr::new(addr(0)?.into(), port(row, 20)?)),
            remote: canonical(SocketAddr::new(addr(24)?.into(), port(row, 44)?)),
            state: word(row, 48)?,
            pid: word(row, 52)?,
        })
    })
}

/// An owned kernel handle, closed on drop.
struct Handle(HANDLE);

impl Handle {
    /// `OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION)`: the least right
    /// that reads a token and an image path, granted for most processes.
    fn open_process(pid: u32) -> io::Result<Handle> {
        // SAFETY: plain call; a null result is checked.
        let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Handle(handle))
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: we own the handle and close it exactly once.
        unsafe { CloseHandle(self.0) };
    }
}

/// The user and session of process `pid` (service mode checks the other
/// end of its named pipes with it).
pub(crate) fn process_identity(pid: u32) -> io::Result<(OsUser, Option<u32>)> {
    let process = Handle::open_process(pid)?;
    token_identity(process.0)
}

/// The full path of process `pid`'s executable, for diagnostics only.
pub(crate) fn process_image(pid: u32) -> Option<String> {
    Handle::open_process(pid)
        .ok()
        .and_then(|process| image_path(process.0))
}

/// The user and session of `process`'s primary token.
fn token_identity(process: HANDLE) -> io::Result<(OsUser, Option<u32>)> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: `process` is a valid process handle; `token` receives a new
    // handle, owned by the `Handle` below.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let token = Handle(token);
    token_owner(token.0)
}

/// The user and session of an open token (`TOKEN_QUERY` access); service
/// mode reads the session user's token with it.
pub(crate) fn token_owner(token: HANDLE) -> io::Result<(OsUser, Option<u32>)> {
    let user_info = token_information(token, TokenUser)?;
    if user_info.len() * 8 < std::mem::size_of::<TOKEN_USER>() {
        return Err(io::Error::other("short TOKEN_USER"));
    }
    // SAFETY: the buffer holds a TOKEN_USER written by the API, 8-aligned
    // (u64 words); its SID pointer points into the same buffer, which lives
    // until the end of this function.
    let sid = unsafe { (*user_info.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let id = sid_string(sid)?;
    let name = account_name(sid).unwrap_or_else(|| id.clone());
    let session = token_information(token, TokenSessionId)
        .ok()
        .and_then(|words| words.first().map(|w| w.to_ne_bytes()))
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    Ok((OsUser { id, name }, session))
}

/// `GetTokenInformation(class)` into an 8-aligned buffer sized by the API.
fn token_information(token: HANDLE, class: TOKEN_INFORMATION_CLASS) -> io::Result<Vec<u64>> {
    let mut needed = 0u32;
    // SAFETY: a size query: null buffer of length 0.
    unsafe { GetTokenInformation(token, class, std::ptr::null_mut(), 0, &mut needed) };
    if needed == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buffer = vec![0u64; (needed as usize).div_ceil(8)];
    // SAFETY: `buffer` is writable for at least `needed` bytes.
    let ok = unsafe {
        GetTokenInformation(
            token,
            class,
            buffer.as_mut_ptr().cast(),
            needed,
            &mut needed,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(buffer)
}

/// `S-1-5-21-…` for a SID.
fn sid_string(sid: PSID) -> io::Result<String> {
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: `sid` is a valid SID; the API allocates `text` with
    // LocalAlloc, freed below once copied.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `text` is a NUL-terminated wide string from the API.
    let id = unsafe { from_wide_ptr(text) };
    // SAFETY: allocated by ConvertSidToStringSidW with LocalAlloc.
    unsafe { LocalFree(text.cast()) };
    Ok(id)
}

/// `DOMAIN\user` for a SID, `None` when the account cannot be resolved
/// (deleted account, unreachable domain controller).
fn account_name(sid: PSID) -> Option<String> {
    let (mut name_len, mut domain_len) = (0u32, 0u32);
    let mut usage: SID_NAME_USE = 0;
    // SAFETY: a size query with null buffers and zero lengths.
    unsafe {
        LookupAccountSidW(
            std::ptr::null(),
            sid,
            std::ptr::null_mut(),
            &mut name_len,
            std::ptr::null_mut(),
            &mut domain_len,
            &mut usage,
        )
    };
    if name_len == 0 {
        return None;
    }
    let mut name = vec![0u16; name_len as usize];
    let mut domain = vec![0u16; domain_len.max(1) as usize];
    domain_len = domain.len() as u32;
    // SAFETY: both buffers are writable for the lengths passed.
    let ok = unsafe {
        LookupAccountSidW(
            std::ptr::null(),
            sid,
            name.as_mut_ptr(),
            &mut name_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut usage,
        )
    };
    if ok == 0 {
        return None;
    }
    // On success the lengths exclude the terminating NUL.
    let name = String::from_utf16_lossy(name.get(..name_len as usize)?);
    let domain = String::from_utf16_lossy(domain.get(..domain_len as usize)?);
    Some(if domain.is_empty() {
        name
    } else {
        format!("{domain}\\{name}")
    })
}

/// The full path of `process`'s executable, for diagnostics only.
fn image_path(process: HANDLE) -> Option<String> {
    // Long paths (\\?\…) may exceed MAX_PATH; 32 767 is the NT limit.
    let mut buffer = vec![0u16; 32 * 1024];
    let mut len = buffer.len() as u32;
    // SAFETY: `buffer` is writable for `len` characters.
    let ok = unsafe {
        QueryFullProcessImageNameW(process, PROCESS_NAME_WIN32, buffer.as_mut_ptr(), &mut len)
    };
    if ok == 0 {
        return None;
    }
    Some(String::from_utf16_lossy(buffer.get(..len as usize)?))
}

/// Copies a NUL-terminated wide string.
///
/// # Safety
/// `text` must point to a readable NUL-terminated UTF-16 string.
unsafe fn from_wide_ptr(text: *const u16) -> String {
    let mut len = 0;
    // SAFETY: the caller guarantees a terminating NUL within the allocation.
    while unsafe { *text.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: the `len` characters before the NUL are readable.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, len) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use windows_sys::Win32::NetworkManagement::IpHelper::MIB_TCP_STATE_ESTAB;

    fn v4_row(state: u32, local: ([u8; 4], u16), remote: ([u8; 4], u16), pid: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(state.to_ne_bytes());
        for (ip, port) in [local, remote] {
            out.extend(ip);
            // The port field as Windows stores it: network order first.
            out.extend(port.to_be_bytes());
            out.extend([0, 0]);
        }
        out.extend(pid.to_ne_bytes());
        out
    }

    fn table(rows: &[Vec<u8>]) -> Vec<u8> {
        let mut out = (rows.len() as u32).to_ne_bytes().to_vec();
        for row in rows {
            out.extend(row);
        }
        out
    }

    #[test]
    fn row_layouts_match_windows_sys() {
        assert_eq!(std::mem::size_of::<MIB_TCPROW_OWNER_PID>(), 24);
        assert_eq!(std::mem::size_of::<MIB_TCP6ROW_OWNER_PID>(), 56);
    }

    #[test]
    fn parses_ipv4_rows_with_network_order_ports() {
        let bytes = table(&[
            v4_row(5, ([127, 0, 0, 1], 50000), ([127, 0, 0, 1], 8443), 1234),
            v4_row(11, ([127, 0, 0, 1], 50001), ([127, 0, 0, 1], 8443), 0),
        ]);
        let rows = v4_rows(&bytes);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].local, "127.0.0.1:50000".parse().unwrap());
        assert_eq!(rows[0].remote, "127.0.0.1:8443".parse().unwrap());
        assert_eq!((rows[0].state, rows[0].pid), (5, 1234));
        let peer = rows[0].local;
        let local = rows[0].remote;
        assert_eq!(find_owner(&rows, peer, local), Some(1234));
        // Reversed direction (our accepted end) and TIME_WAIT: no owner.
        assert_eq!(find_owner(&rows, local, peer), None);
        assert_eq!(find_owner(&rows, rows[1].local, local), None);
    }

    #[test]
    fn parses_ipv6_rows_and_unwraps_mapped_addresses() {
        let mut row = Vec::new();
        row.extend(Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets());
        row.extend(0u32.to_ne_bytes());
        row.extend([0xC3, 0x50, 0, 0]); // port 50000
        row.extend(Ipv6Addr::LOCALHOST.octets());
        row.extend(0u32.to_ne_bytes());
        row.extend([0x20, 0xFB, 0, 0]); // port 8443
        row.extend(5u32.to_ne_bytes());
        row.extend(77u32.to_ne_bytes());
        let rows = v6_rows(&table(&[row]));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].local, "127.0.0.1:50000".parse().unwrap());
        assert_eq!(rows[0].remote, "[::1]:8443".parse().unwrap());
        assert_eq!((rows[0].state, rows[0].pid), (5, 77));
    }

    #[test]
    fn a_count_beyond_the_buffer_is_bounded() {
        let mut bytes = table(&[v4_row(5, ([127, 0, 0, 1], 1), ([127, 0, 0, 1], 2), 9)]);
        bytes[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(v4_rows(&bytes).len(), 1);
        assert!(v4_rows(&[1, 0]).is_empty());
        assert!(v6_rows(&[]).is_empty());
    }

    #[test]
    fn the_live_table_finds_our_own_connection() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server_end, peer) = listener.accept().unwrap();
        let local = listener.local_addr().unwrap();
        // Wine (CI) keeps a socket's Unix fd in wineserver until the client
        // first sends or receives; only then does the owner table show the
        // client's pid. Real clients have sent their HTTP request by then.
        client.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        server_end.read_exact(&mut byte).unwrap();
        assert_eq!(owner_pid(peer, local).unwrap(), Some(std::process::id()));
        // A client port nobody holds.
        let bogus = SocketAddr::new(peer.ip(), 1);
        assert_eq!(owner_pid(bogus, local).unwrap(), None);
    }

    #[test]
    fn the_live_ipv6_table_lists_our_connection() {
        use std::io::{Read, Write};
        let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
            eprintln!("SKIPPED: no IPv6 loopback here");
            return;
        };
        let local = listener.local_addr().unwrap();
        let mut client = std::net::TcpStream::connect(local).unwrap();
        let (mut server_end, peer) = listener.accept().unwrap();
        client.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        server_end.read_exact(&mut byte).unwrap();
        let rows = v6_rows(&tcp_table(AF_INET6).unwrap());
        let row = rows
            .iter()
            .find(|row| row.local == peer && row.remote == local)
            .unwrap_or_else(|| panic!("{peer} -> {local} not in {rows:?}"));
        assert_eq!(row.state, MIB_TCP_STATE_ESTAB as u32);
        // Wine 8 reports owner pid 0 for every IPv6 row (its IPv4 rows have
        // the right pid); Windows has ours.
        assert!(row.pid == std::process::id() || row.pid == 0, "{row:?}");
    }
}
