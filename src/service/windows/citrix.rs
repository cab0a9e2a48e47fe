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

use windows_registry::{Key, LOCAL_MACHINE};
use windows_result::HRESULT;
use windows_sys::Win32::Foundation::ERROR_FILE_NOT_FOUND;
use windows_sys::Win32::System::Registry::KEY_WOW64_64KEY;

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

/// Whether a registry error is "no such key or value".
fn not_found(e: &windows_result::Error) -> bool {
    e.code() == HRESULT::from_win32(ERROR_FILE_NOT_FOUND)
}

fn failed(what: String, e: windows_result::Error) -> CitrixError {
    CitrixError {
        what,
        // An HRESULT made from a Win32 code carries it in its low word;
        // io::Error then names it (e.g. "Access is denied").
        source: io::Error::from_raw_os_error(e.code().0 & 0xFFFF),
    }
}

/// Opens `HKLM\<path>` in the 64-bit view, where the VDA reads it; `None`
/// when it does not exist.
fn open(path: &str, write: bool) -> Result<Option<Key>, CitrixError> {
    let mut options = LOCAL_MACHINE.options();
    options.read().access(KEY_WOW64_64KEY);
    if write {
        options.write();
    }
    match options.open(path) {
        Ok(key) => Ok(Some(key)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(failed(format!("open HKLM\\{path}"), e)),
    }
}

/// Opens `HKLM\<path>` (64-bit view) for reading and writing, creating it
/// when missing (it inherits its parent's security).
fn create(path: &str) -> Result<Key, CitrixError> {
    LOCAL_MACHINE
        .options()
        .read()
        .write()
        .create()
        .access(KEY_WOW64_64KEY)
        .open(path)
        .map_err(|e| failed(format!("create HKLM\\{path}"), e))
}

/// The value's text (REG_SZ, or REG_EXPAND_SZ unexpanded); `None` when it
/// does not exist. A value of another type is an error: it is left alone.
fn read_value(key: &Key) -> Result<Option<String>, CitrixError> {
    match key.get_string(VALUE_NAME) {
        Ok(text) => Ok(Some(text)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(failed(format!("read HKLM\\{TWI_KEY}\\{VALUE_NAME}"), e)),
    }
}

/// Writes the value as REG_SZ.
fn write_value(key: &Key, text: &str) -> Result<(), CitrixError> {
    key.set_string(VALUE_NAME, text)
        .map_err(|e| failed(format!("write HKLM\\{TWI_KEY}\\{VALUE_NAME}"), e))
}

fn delete_value(key: &Key) -> Result<(), CitrixError> {
    match key.remove_value(VALUE_NAME) {
        Ok(()) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(failed(format!("delete HKLM\\{TWI_KEY}\\{VALUE_NAME}"), e)),
    }
}

/// The value as it is now: `None` when it (or its key) does not exist.
pub fn read() -> Result<Option<String>, CitrixError> {
    match open(TWI_KEY, false)? {
        Some(key) => read_value(&key),
        None => Ok(None),
    }
}

/// Appends `exe` (a file name such as `wsconnector.exe`) to the value on a
/// Citrix host, creating the TWI key or the value when missing.
pub fn add(exe: &str) -> Result<Change, CitrixError> {
    if open(CITRIX_KEY, false)?.is_none() {
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
    let Some(key) = open(TWI_KEY, true)? else {
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
