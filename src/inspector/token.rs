//! How the inspector knows it is the local user: a one-time token in a file
//! only that user can read, exchanged once for a session cookie.
//!
//! `wsconnector inspect` (another process of the same user) writes a fresh
//! token to `<runtime dir>/inspector-<port>.token` (mode 0600, directory
//! 0700) and opens `http://127.0.0.1:<port>/inspector?token=...`. The daemon
//! reads that file when the URL is loaded, checks the token (constant-time,
//! at most [`TOKEN_TTL`] old, the file owned by the daemon's user and
//! private), deletes the file so the token cannot serve twice, and answers
//! with an HttpOnly, SameSite=Strict cookie naming a random session.
//! Sessions live in memory only: a daemon restart ends them.
//!
//! Service mode (Unix): the service cannot read users' private folders, so
//! every user's `wsconnector inspect` writes into one shared folder the
//! service creates (`<AgentSocket folder>/inspector`, mode 1733: anyone may
//! create a file, nobody but the service may list it, the sticky bit stops
//! users deleting each other's files), under a name with the user's uid.
//! The service takes the token from the file named by the uid of the
//! *browser's* socket and requires that file to be owned by that uid, and
//! the session the token opens serves that user only: a token read or
//! planted by another user opens nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::header::COOKIE;
use http::HeaderMap;
use serde::{Deserialize, Serialize};

/// How long a token written by `wsconnector inspect` may wait to be used.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);
/// How long an inspector session (its cookie) lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most inspector sessions at once; the oldest is dropped for a new one.
pub const MAX_SESSIONS: usize = 16;
/// The session cookie's name.
pub const COOKIE_NAME: &str = "wsc_inspector";
/// Environment variable naming the directory for token files (tests, and
/// hosts whose runtime directory is elsewhere). Both the daemon and
/// `wsconnector inspect` read it.
pub const RUNTIME_DIR_ENV: &str = "WSCONNECTOR_RUNTIME_DIR";

/// Why a token could not be written or redeemed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No directory for the token file could be found.
    #[error("no runtime directory for the inspector token: set {RUNTIME_DIR_ENV}")]
    NoDirectory,
    /// Reading or writing the file failed.
    #[error("inspector token file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// No token is waiting (never issued, already used, or another port).
    #[error("no inspector token is waiting: run `wsconnector inspect` again")]
    Missing,
    /// The token does not match the one waiting.
    #[error("wrong inspector token")]
    Mismatch,
    /// The token waited longer than [`TOKEN_TTL`].
    #[error("the inspector token expired: run `wsconnector inspect` again")]
    Expired,
    /// The file is readable by others or owned by another user: not ours.
    #[error("inspector token file {0} is not private to this user: refused")]
    NotPrivate(PathBuf),
    /// The file's content is not a token we wrote.
    #[error("inspector token file {0} is malformed")]
    Malformed(PathBuf),
    /// The OS random source failed.
    #[error("the OS random source failed: {0}")]
    Random(String),
}

/// The content of a token file.
#[derive(Debug, Serialize, Deserialize)]
struct TokenFile {
    /// 32 hex digits.
    token: String,
    /// The daemon port it is for.
    port: u16,
    /// When it was written, in milliseconds since the Unix epoch.
    issued_ms: u64,
}

/// The directory for token files: `$WSCONNECTOR_RUNTIME_DIR`, else the
/// user's runtime directory (`$XDG_RUNTIME_DIR/wsconnector` on Linux), else
/// the user's local data directory (`%LOCALAPPDATA%\wsconnector` on
/// Windows, `~/.local/share/wsconnector` on Linux without a runtime dir).
pub fn runtime_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os(RUNTIME_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let dirs = directories::ProjectDirs::from("", "", "wsconnector")?;
    Some(
        dirs.runtime_dir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dirs.data_local_dir().to_path_buf()),
    )
}

/// The token file for the daemon on `port`.
pub fn token_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("inspector-{port}.token"))
}

/// 16 random bytes as 32 hex digits.
pub fn random_hex() -> Result<String, TokenError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn now_ms(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TokenError + '_ {
    move |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (0700 on Unix) when missing.
fn private_dir(dir: &Path) -> Result<(), TokenError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io(dir))
}

/// Writes a fresh token for the daemon on `port` into `dir` and returns it.
/// The file is written beside its final name with mode 0600 and renamed
/// over it, so the daemon never reads half a token and an older unused
/// token stops working.
pub fn issue(dir: &Path, port: u16) -> Result<String, TokenError> {
    private_dir(dir)?;
    write_token(dir, &token_path(dir, port), port, 0o600)
}

/// Service mode: the shared folder for every user's token files (created
/// by the service, see the module comment).
pub fn shared_dir(agent_socket: &Path) -> PathBuf {
    agent_socket
        .parent()
        .map_or_else(|| PathBuf::from("inspector"), |p| p.join("inspector"))
}

/// Service mode: the token file of user `uid` for the service on `port`.
pub fn user_token_path(dir: &Path, port: u16, uid: u32) -> PathBuf {
    dir.join(format!("inspector-{port}-{uid}.token"))
}

/// Service mode: writes a fresh token of this process's user into the
/// shared folder (which must exist: the service creates it). Readable by
/// the service (0644); worthless to anyone else (see the module comment).
#[cfg(unix)]
pub fn issue_shared(dir: &Path, port: u16) -> Result<String, TokenError> {
    if !dir.is_dir() {
        return Err(TokenError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the service's inspector folder does not exist (is `wsconnector service run` running?)",
            ),
        });
    }
    let uid = nix::unistd::geteuid().as_raw();
    write_token(dir, &user_token_path(dir, port, uid), port, 0o644)
}

/// Writes a token file at `path` (through a temporary file in `dir`).
fn write_token(dir: &Path, path: &Path, port: u16, mode: u32) -> Result<String, TokenError> {
    #[cfg(not(unix))]
    let _ = mode;
    let token = random_hex()?;
    let file = TokenFile {
        token: token.clone(),
        port,
        issued_ms: now_ms(SystemTime::now()),
    };
    let text = serde_json::to_string(&file).map_err(|e| TokenError::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    let tmp = dir.join(format!("inspector-{port}.{}.tmp", random_hex()?));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    #[cfg(unix)]
    options.mode(mode);
    let opened = options.open(&tmp);
    // The umask may have cut the mode; set it exactly.
    #[cfg(unix)]
    let opened = opened.and_then(|f| {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        Ok(f)
    });
    finish(opened, &tmp, path, &text, token)
}

fn finish(
    opened: std::io::Result<std::fs::File>,
    tmp: &Path,
    path: &Path,
    text: &str,
    token: String,
) -> Result<String, TokenError> {
    let written = opened
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(tmp);
        return Err(io(path)(e));
    }
    Ok(token)
}

/// Equal bytes, in time that depends only on the lengths: the comparison
/// must not tell an attacker how many leading characters were right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses a token file that another user owns or others may read.
#[cfg(unix)]
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), TokenError> {
    use std::os::unix::fs::MetadataExt;
    if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0 {
        return Err(TokenError::NotPrivate(path.to_path_buf()));
    }
    Ok(())
}

/// On Windows the per-user profile directory's ACL keeps others out.
#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), TokenError> {
    Ok(())
}

/// Checks `presented` against the token waiting in `dir` for `port` and
/// deletes the file whatever the outcome, so a token is tried at most once.
/// The caller serializes calls (see `Inspector::redeem`).
pub fn redeem(dir: &Path, port: u16, presented: &str, now: SystemTime) -> Result<(), TokenError> {
    redeem_at(token_path(dir, port), port, presented, now, check_private)
}

/// Service mode: checks `presented` against the token user `uid` (the
/// owner of the browser's socket) wrote into the shared folder; the file
/// must be that user's and writable by nobody else. Deleted whatever the
/// outcome, like [`redeem`].
#[cfg(unix)]
pub fn redeem_shared(
    dir: &Path,
    port: u16,
    uid: u32,
    presented: &str,
    now: SystemTime,
) -> Result<(), TokenError> {
    use std::os::unix::fs::MetadataExt;
    redeem_at(
        user_token_path(dir, port, uid),
        port,
        presented,
        now,
        |path, meta| {
            if meta.uid() != uid || meta.mode() & 0o022 != 0 {
                return Err(TokenError::NotPrivate(path.to_path_buf()));
            }
            Ok(())
        },
    )
}

fn redeem_at(
    path: PathBuf,
    port: u16,
    presented: &str,
    now: SystemTime,
    check: impl FnOnce(&Path, &std::fs::Metadata) -> Result<(), TokenError>,
) -> Result<(), TokenError> {
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(TokenError::Missing),
        Err(e) => return Err(io(&path)(e)),
    };
    if !meta.file_type().is_file() {
        return Err(TokenError::NotPrivate(path));
    }
    check(&path, &meta)?;
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    // One try per token: a wrong guess burns it too.
    std::fs::remove_file(&path).map_err(io(&path))?;
    let file: TokenFile =
        serde_json::from_str(&text).map_err(|_| TokenError::Malformed(path.clone()))?;
    if file.port != port {
        return Err(TokenError::Malformed(path));
    }
    if !constant_time_eq(file.token.as_bytes(), presented.as_bytes()) {
        return Err(TokenError::Mismatch);
    }
    let age = now_ms(now).saturating_sub(file.issued_ms);
    if u128::from(age) > TOKEN_TTL.as_millis() {
        return Err(TokenError::Expired);
    }
    Ok(())
}

/// Service mode: tokens minted for a native client of a user
/// (`getInspectorToken`), waiting in memory for that user's browser. Needs
/// no shared folder, so it works where the service cannot offer one
/// (Windows); the trust is the same: the socket's owner, as the OS reports
/// it, asks for the token and must present it.
#[derive(Debug, Default)]
pub struct PendingTokens {
    /// OS user id -> the one token waiting for that user and when it was
    /// minted. A new token replaces the user's older one.
    waiting: Mutex<std::collections::HashMap<String, (String, Instant)>>,
}

impl PendingTokens {
    /// A fresh token for `user_id`, valid once for [`TOKEN_TTL`].
    pub fn mint(&self, user_id: &str, now: Instant) -> Result<String, TokenError> {
        let token = random_hex()?;
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        // Forget the expired ones of everybody (at most one per user).
        waiting.retain(|_, (_, at)| now.saturating_duration_since(*at) <= TOKEN_TTL);
        waiting.insert(user_id.to_string(), (token.clone(), now));
        Ok(token)
    }

    /// Whether a token for `user_id` is waiting at all.
    pub fn has(&self, user_id: &str) -> bool {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.contains_key(user_id)
    }

    /// Checks `presented` against `user_id`'s waiting token and forgets it
    /// whatever the outcome: one try per token.
    pub fn redeem(&self, user_id: &str, presented: &str, now: Instant) -> Result<(), TokenError> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let (token, at) = waiting.remove(user_id).ok_or(TokenError::Missing)?;
        if !constant_time_eq(token.as_bytes(), presented.as_bytes()) {
            return Err(TokenError::Mismatch);
        }
        if now.saturating_duration_since(at) > TOKEN_TTL {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

/// The open inspector sessions: random ids carried by the cookie.
#[derive(Debug, Default)]
pub struct Sessions {
    /// Session id -> when it expires, and (service mode) the OS user id it
    /// serves. A std mutex: held for a scan of at most [`MAX_SESSIONS`]
    /// entries, never across `.await`.
    open: Mutex<Vec<(String, Instant, Option<String>)>>,
}

impl Sessions {
    /// A new session; its id goes into the cookie.
    pub fn create(&self, now: Instant) -> Result<String, TokenError> {
        self.create_for(now, None)
    }

    /// A new session that serves only OS user `user` (service mode).
    pub fn create_for(&self, now: Instant, user: Option<String>) -> Result<String, TokenError> {
        let id = random_hex()?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(_, expires, _)| *expires > now);
        if open.len() >= MAX_SESSIONS {
            open.remove(0);
        }
        open.push((id.clone(), now + SESSION_TTL, user));
        Ok(id)
    }

    /// True when a `Cookie` header names an open session. Every open
    /// session is compared in constant time.
    pub fn valid(&self, headers: &HeaderMap, now: Instant) -> bool {
        self.valid_for(headers, now, None)
    }

    /// As [`Sessions::valid`], and a session bound to a user (service mode)
    /// counts only when `user` is that user: another OS user's browser
    /// holding the cookie gets nothing.
    pub fn valid_for(&self, headers: &HeaderMap, now: Instant, user: Option<&str>) -> bool {
        let presented = cookie_values(headers, COOKIE_NAME);
        if presented.is_empty() {
            return false;
        }
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = false;
        for (id, expires, owner) in open.iter() {
            let same_user = owner.as_deref().is_none_or(|o| Some(o) == user);
            for p in &presented {
                found |=
                    constant_time_eq(id.as_bytes(), p.as_bytes()) && *expires > now && same_user;
            }
        }
        found
    }

    /// Open sessions (tests).
    pub fn len(&self) -> usize {
        self.open.lock().map_or(0, |o| o.len())
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// The `Set-Cookie` value for session `id`: HttpOnly (no script reads it),
/// SameSite=Strict (no other site's request carries it), scoped to
/// `/inspector`, `Secure` over TLS.
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={id}; Path=/inspector; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}
