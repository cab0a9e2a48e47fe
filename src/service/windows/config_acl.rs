//! The Windows service's config guard: reads the owner and DACL of
//! config.xml and of every folder above it up to the drive root, and asks
//! the pure policy (`service::acl_policy`, where the rules and their reasons
//! are) whether users could change or swap the file. The log folder is
//! checked by the same rules (`log_acl`).

use std::io;
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::{LocalFree, ERROR_SUCCESS};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, GetNamedSecurityInfoW, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    GetAce, ACE_HEADER, ACL, DACL_SECURITY_INFORMATION, INHERIT_ONLY_ACE,
    OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
};

use super::wide;
use crate::service::acl_policy::{self, Ace, AclError, Entry, Kind};

/// `ACCESS_ALLOWED_ACE_TYPE` and `ACCESS_ALLOWED_CALLBACK_ACE_TYPE`: an
/// access mask then the SID (`ACCESS_ALLOWED_ACE` layout).
const ALLOWED_WITH_SID: [u8; 2] = [0, 9];
/// `ACCESS_DENIED_ACE_TYPE` and `ACCESS_DENIED_CALLBACK_ACE_TYPE`.
const DENIED: [u8; 2] = [1, 10];

/// Checks `file` and every folder above it. `own` is the SID the service
/// runs as (trusted like the Linux guard's service uid).
pub fn check(file: &Path, own: Option<&str>) -> Result<(), AclError> {
    check_from(file, Kind::File, own)
}

/// Checks `folder` and every folder above it by the same rules (the
/// service's log folder: a user must not own it or be able to swap it).
pub fn check_folder(folder: &Path, own: Option<&str>) -> Result<(), AclError> {
    check_from(folder, Kind::Folder, own)
}

fn check_from(first: &Path, first_kind: Kind, own: Option<&str>) -> Result<(), AclError> {
    let first = std::path::absolute(first).map_err(|e| AclError::Io {
        path: first.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut current = Some(first.as_path());
    let mut kind = first_kind;
    while let Some(path) = current {
        let entry = read(path, kind).map_err(|e| AclError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        acl_policy::check_entry(&entry, own)?;
        kind = Kind::Folder;
        current = path.parent();
    }
    Ok(())
}

/// The owner and DACL of `path`, as Windows reports them.
pub fn read(path: &Path, kind: Kind) -> io::Result<Entry> {
    let wide_path = wide(path);
    let mut owner: PSID = std::ptr::null_mut();
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `wide_path` is NUL-terminated; `owner` and `dacl` point into
    // `sd`, which the API LocalAlloc's and we free below after the last use.
    let status = unsafe {
        GetNamedSecurityInfoW(
            wide_path.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut owner,
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut sd,
        )
    };
    if status != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    let result = describe(path, kind, owner, dacl);
    // SAFETY: allocated by GetNamedSecurityInfoW; `owner` and `dacl` are
    // not used after this.
    unsafe { LocalFree(sd) };
    result
}

/// The [`Entry`] for an owner SID and a DACL (null: a NULL DACL).
fn describe(path: &Path, kind: Kind, owner: PSID, dacl: *mut ACL) -> io::Result<Entry> {
    if owner.is_null() {
        return Err(io::Error::other("no owner in the security descriptor"));
    }
    let owner = sid_string(owner)?;
    let dacl = if dacl.is_null() {
        None
    } else {
        // SAFETY: `dacl` is a valid ACL inside the live descriptor.
        let count = unsafe { (*dacl).AceCount };
        let mut aces = Vec::with_capacity(usize::from(count));
        for index in 0..u32::from(count) {
            let mut ace: *mut core::ffi::c_void = std::ptr::null_mut();
            // SAFETY: `index` < AceCount; `ace` receives a pointer into the ACL.
            if unsafe { GetAce(dacl, index, &mut ace) } == 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: every ACE starts with an ACE_HEADER.
            let header = unsafe { std::ptr::read_unaligned(ace.cast::<ACE_HEADER>()) };
            if DENIED.contains(&header.AceType) {
                continue;
            }
            // Every ACE type has its access mask right after the header.
            // SAFETY: ACEs are at least header + mask long.
            let mask = unsafe { std::ptr::read_unaligned(ace.cast::<u8>().add(4).cast::<u32>()) };
            let sid = if ALLOWED_WITH_SID.contains(&header.AceType) {
                // SAFETY: for these types the SID starts after the mask.
                sid_string(unsafe { ace.cast::<u8>().add(8) }.cast())?
            } else {
                format!("(ACE type {} without a plain SID)", header.AceType)
            };
            aces.push(Ace {
                sid,
                mask,
                inherit_only: u32::from(header.AceFlags) & INHERIT_ONLY_ACE != 0,
                allow: true,
            });
        }
        Some(aces)
    };
    Ok(Entry {
        path: PathBuf::from(path),
        kind,
        owner,
        dacl,
    })
}

/// `S-1-5-…` for a SID.
fn sid_string(sid: PSID) -> io::Result<String> {
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: `sid` is a valid SID; the API LocalAlloc's `text`, freed below.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut len = 0;
    // SAFETY: `text` is NUL-terminated.
    while unsafe { *text.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` units precede the NUL.
    let id = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, len) });
    // SAFETY: allocated by ConvertSidToStringSidW.
    unsafe { LocalFree(text.cast()) };
    Ok(id)
}
