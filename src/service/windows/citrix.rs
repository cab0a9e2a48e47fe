//! `LogoffCheckSysModules` in the registry (see [`crate::service::citrix`]
//! for why and for the list's rules): `service install` adds the agent's
//! file name, `service uninstall` takes it out again.
//!
//! Only Citrix hosts are touched: when `HKLM\SYSTEM\CurrentControlSet\
//! Control\Citrix` does not exist (no VDA installed) install writes
//! nothing, so plain Windows and RDS-only hosts get no Citrix keys. The
//! value is read and written in the 64-bit registry view, where the VDA
//! reads it. A failure is reported as a WARNING with the command that fixes
//! it by hand, never as a failed install: the service works either way,
//! only published-app sessions would not log off on their own.

use std::io;

use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_MORE_DATA, ERROR_SUCCESS};
use windows_sys::Win32::System::Registry::{
    RegCloseKey, RegCreateKeyExW, RegDeleteValueW, RegGetValueW, RegOpenKeyExW, RegSetValueExW,
    HKEY, HKEY_LOCAL_MACHINE, KEY_QUERY_VALUE, KEY_SET_VALUE, KEY_WOW64_64KEY,
    REG_OPTION_NON_VOLATILE, REG_SZ, RRF_NOEXPAND, RRF_RT_REG_EXPAND_SZ, RRF_RT_REG_SZ,
};

use super::wide;
use crate::service::citrix::{
    add_module, is_empty_list, reg_add_command, remove_module, CITRIX_KEY, TWI_KEY, VALUE_NAME,
};

/// A registry call that failed.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct CitrixError {
    /// What was attempted.
    pub what: String,
    /// The OS error (e.g. access denied: not run as administrator).
    pub source: io::Error,
}

/// What [`add`] or [`remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// No `...\Control\Citrix` key: not a Citrix host, nothing written.
    NotCitrix,
    /// The name was appended (or, already there, the list rewritten
    /// without the spaces the VDA stops at); the value now holds this.
    Added(String),
    /// The value already named the agent, without spaces; left as it is.
    AlreadyThere(String),
    /// The name was taken out; the value now holds this, or was deleted
    /// (`None`) because nothing else was in it.
    Removed(Option<String>),
    /// The value (or its key) did not name the agent; nothing written.
    NotThere,
}

/// An open registry key, closed when dropped.
struct Key(HKEY);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: the handle came from RegOpenKeyExW/RegCreateKeyExW and is
        // closed once, here.
        unsafe { RegCloseKey(self.0) };
    }
}

fn failed(what: String, code: u32) -> CitrixError {
    CitrixError {
        what,
        // Win32 error codes fit an i32.
        source: io::Error::from_raw_os_error(code as i32),
    }
}

/// Opens `HKLM\<path>` in the 64-bit view; `None` when it does not exist.
fn open(path: &str, access: u32) -> Result<Option<Key>, CitrixError> {
    let name = wide(path);
    let mut key: HKEY = std::ptr::null_mut();
    // SAFETY: `name` is NUL-terminated and outlives the call; `key` is ours.
    let code = unsafe {
        RegOpenKeyExW(
            HKEY_LOCAL_MACHINE,
            name.as_ptr(),
            0,
            access | KEY_WOW64_64KEY,
            &mut key,
        )
    };
    match code {
        ERROR_SUCCESS => Ok(Some(Key(key))),
        ERROR_FILE_NOT_FOUND => Ok(None),
        code => Err(failed(format!("open HKLM\\{path}"), code)),
    }
}

/// Opens `HKLM\<path>` for reading and writing, creating it when missing.
fn create(path: &str) -> Result<Key, CitrixError> {
    let name = wide(path);
    let mut key: HKEY = std::ptr::null_mut();
    // SAFETY: `name` is NUL-terminated and outlives the call; no class, no
    // security attributes (the key inherits its parent's), `key` is ours.
    let code = unsafe {
        RegCreateKeyExW(
            HKEY_LOCAL_MACHINE,
            name.as_ptr(),
            0,
            std::ptr::null(),
            REG_OPTION_NON_VOLATILE,
            KEY_QUERY_VALUE | KEY_SET_VALUE | KEY_WOW64_64KEY,
            std::ptr::null(),
            &mut key,
            std::ptr::null_mut(),
        )
    };
    if code != ERROR_SUCCESS {
        return Err(failed(format!("create HKLM\\{path}"), code));
    }
    Ok(Key(key))
}

/// The value's text (REG_SZ, or REG_EXPAND_SZ unexpanded); `None` when it
/// does not exist. A value of another type is an error: it is left alone.
fn read_value(key: &Key) -> Result<Option<String>, CitrixError> {
    let value = wide(VALUE_NAME);
    let flags = RRF_RT_REG_SZ | RRF_RT_REG_EXPAND_SZ | RRF_NOEXPAND;
    let what = || format!("read HKLM\\{TWI_KEY}\\{VALUE_NAME}");
    let mut bytes: u32 = 0;
    // The value may grow between the size query and the read: try again.
    for _ in 0..4 {
        // SAFETY: a size query (no buffer) on an open key.
        let code = unsafe {
            RegGetValueW(
                key.0,
                std::ptr::null(),
                value.as_ptr(),
                flags,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut bytes,
            )
        };
        match code {
            ERROR_SUCCESS => {}
            ERROR_FILE_NOT_FOUND => return Ok(None),
            code => return Err(failed(what(), code)),
        }
        let mut buf = vec![0u16; (bytes as usize).div_ceil(2) + 1];
        let mut size = u32::try_from(buf.len() * 2).unwrap_or(u32::MAX);
        // SAFETY: `buf` holds `size` bytes and outlives the call.
        let code = unsafe {
            RegGetValueW(
                key.0,
                std::ptr::null(),
                value.as_ptr(),
                flags,
                std::ptr::null_mut(),
                buf.as_mut_ptr().cast(),
                &mut size,
            )
        };
        match code {
            ERROR_SUCCESS => {
                // `size` counts the bytes written, the terminating NUL too.
                let len = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
                return Ok(Some(String::from_utf16_lossy(&buf[..len])));
            }
            ERROR_MORE_DATA => bytes = size,
            ERROR_FILE_NOT_FOUND => return Ok(None),
            code => return Err(failed(what(), code)),
        }
    }
    Err(failed(what(), ERROR_MORE_DATA))
}

/// Writes the value as REG_SZ.
fn write_value(key: &Key, text: &str) -> Result<(), CitrixError> {
    let name = wide(VALUE_NAME);
    let data = wide(text);
    let bytes = u32::try_from(data.len() * 2).unwrap_or(u32::MAX);
    // SAFETY: `data` is a NUL-terminated UTF-16 string of `bytes` bytes
    // (the NUL included, as REG_SZ wants), alive during the call.
    let code =
        unsafe { RegSetValueExW(key.0, name.as_ptr(), 0, REG_SZ, data.as_ptr().cast(), bytes) };
    if code != ERROR_SUCCESS {
        return Err(failed(format!("write HKLM\\{TWI_KEY}\\{VALUE_NAME}"), code));
    }
    Ok(())
}

fn delete_value(key: &Key) -> Result<(), CitrixError> {
    let name = wide(VALUE_NAME);
    // SAFETY: `name` is NUL-terminated and outlives the call.
    let code = unsafe { RegDeleteValueW(key.0, name.as_ptr()) };
    match code {
        ERROR_SUCCESS | ERROR_FILE_NOT_FOUND => Ok(()),
        code => Err(failed(
            format!("delete HKLM\\{TWI_KEY}\\{VALUE_NAME}"),
            code,
        )),
    }
}

/// The value as it is now: `None` when it (or its key) does not exist.
pub fn read() -> Result<Option<String>, CitrixError> {
    match open(TWI_KEY, KEY_QUERY_VALUE)? {
        Some(key) => read_value(&key),
        None => Ok(None),
    }
}

/// Appends `exe` (a file name such as `wsconnector.exe`) to the value on a
/// Citrix host, creating the TWI key or the value when missing.
pub fn add(exe: &str) -> Result<Change, CitrixError> {
    if open(CITRIX_KEY, KEY_QUERY_VALUE)?.is_none() {
        return Ok(Change::NotCitrix);
    }
    let key = create(TWI_KEY)?;
    let now = read_value(&key)?.unwrap_or_default();
    match add_module(&now, exe) {
        None => Ok(Change::AlreadyThere(now)),
        Some(new) => match write_value(&key, &new) {
            Ok(()) => Ok(Change::Added(new)),
            Err(e) => Err(CitrixError {
                what: format!(
                    "{}; to fix, as administrator: {}",
                    e.what,
                    reg_add_command(&new)
                ),
                source: e.source,
            }),
        },
    }
}

/// Takes `exe` out of the value, keeping every other entry; deletes the
/// value when nothing else is left in it (it is then as before `add`
/// created it). Deletes nothing else.
pub fn remove(exe: &str) -> Result<Change, CitrixError> {
    let Some(key) = open(TWI_KEY, KEY_QUERY_VALUE | KEY_SET_VALUE)? else {
        return Ok(Change::NotThere);
    };
    let Some(now) = read_value(&key)? else {
        return Ok(Change::NotThere);
    };
    match remove_module(&now, exe) {
        None => Ok(Change::NotThere),
        Some(left) if is_empty_list(&left) => {
            delete_value(&key)?;
            Ok(Change::Removed(None))
        }
        Some(left) => {
            write_value(&key, &left)?;
            Ok(Change::Removed(Some(left)))
        }
    }
}

/// `service install`'s report line for [`add`].
pub fn install_line(exe: &str) -> String {
    let at = format!(r"HKLM\{TWI_KEY}\{VALUE_NAME}");
    match add(exe) {
        Ok(Change::NotCitrix) => format!(
            "Citrix: not a Citrix host (no HKLM\\{CITRIX_KEY}): {VALUE_NAME} not set \
             (run service install again after installing the Citrix VDA)"
        ),
        Ok(Change::Added(v)) => {
            format!("Citrix: {at} = {v} (published-app sessions log off while {exe} runs)")
        }
        Ok(Change::AlreadyThere(v)) => format!("Citrix: {at} already lists {exe}: {v}"),
        Ok(other) => format!("Citrix: {at}: {other:?}"),
        Err(e) => format!(
            "WARNING: Citrix: {exe} not added to {at}, so published-app sessions will not \
             log off while the agent runs: {e} (add {exe} to the comma-separated list, \
             keeping its other entries: reg query \"HKLM\\{TWI_KEY}\" /v {VALUE_NAME}, then {})",
            reg_add_command(&format!("<other entries>,{exe}"))
        ),
    }
}

/// `service uninstall`'s report line for [`remove`].
pub fn uninstall_line(exe: &str) -> String {
    let at = format!(r"HKLM\{TWI_KEY}\{VALUE_NAME}");
    match remove(exe) {
        Ok(Change::Removed(Some(v))) => format!("Citrix: removed {exe} from {at}: now {v}"),
        Ok(Change::Removed(None)) => {
            format!("Citrix: removed {exe} from {at}: nothing else was in it, value deleted")
        }
        Ok(Change::NotThere | Change::NotCitrix) => {
            format!("Citrix: {at} does not list {exe}: nothing to remove")
        }
        Ok(other) => format!("Citrix: {at}: {other:?}"),
        Err(e) => format!(
            "WARNING: Citrix: {exe} not removed from {at}: {e} (remove it by hand, keeping \
             the other entries: {})",
            reg_add_command("<other entries>")
        ),
    }
}
