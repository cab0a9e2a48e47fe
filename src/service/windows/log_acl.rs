//! The Windows service's log folder: readable by SYSTEM and Administrators
//! only, because the machine's log names every user of the host.
//!
//! Folders under `%ProgramData%` inherit an ACL that lets every user read
//! (Users: read & execute), so the service replaces the folder's DACL with a
//! protected one (no inherited entries) that grants full control to SYSTEM
//! and Administrators, inherited by the log files in it. Each user's own
//! lines reach that user's log through their session agent
//! (src/service/user_log.rs), which writes into the user's profile.
//!
//! `%ProgramData%` lets every user create folders in it, so a user could
//! create `wsconnector\logs` before the service does: as its owner they
//! could rewrite any DACL we set, and a junction there would send our DACL
//! (and our log) to a folder of their choosing. So the folder must not be a
//! link, and it and every folder above it must pass the config guard's
//! folder rules (`service::acl_policy`: owned by SYSTEM, Administrators or
//! the service's account, nobody else may delete, rename or re-permission
//! it); otherwise the service refuses to start and says how to fix it.

use std::io;
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::{LocalFree, ERROR_SUCCESS};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW,
    SetNamedSecurityInfoW, SDDL_REVISION_1, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    GetSecurityDescriptorDacl, ACL, DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION,
    PSECURITY_DESCRIPTOR,
};

use super::wide;

/// The log folder's DACL: protected (`P`), full control for SYSTEM (`SY`)
/// and Administrators (`BA`), inherited by files and subfolders (`OICI`).
pub const LOG_FOLDER_SDDL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/// Where the service logs when config.xml sets no `Log-path`:
/// `%ProgramData%\wsconnector\logs`.
pub fn default_log_folder() -> PathBuf {
    let data = std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
    PathBuf::from(data).join("wsconnector").join("logs")
}

/// Creates `folder` if needed, checks that no user owns it or could swap it
/// (see the module doc; `own` is the service's account SID) and gives it
/// [`LOG_FOLDER_SDDL`].
pub fn restrict_to_administrators(folder: &Path, own: Option<&str>) -> Result<(), String> {
    std::fs::create_dir_all(folder)
        .map_err(|e| format!("cannot create the log folder {}: {e}", folder.display()))?;
    // std reports junctions (mount points) as symlinks too.
    let link = std::fs::symlink_metadata(folder)
        .map_err(|e| format!("the log folder {}: {e}", folder.display()))?
        .file_type()
        .is_symlink();
    if link {
        return Err(format!(
            "the log folder {} is a link or junction: the log could land anywhere. Fix (as an \
             administrator): rmdir \"{}\" (the service creates the folder itself)",
            folder.display(),
            folder.display()
        ));
    }
    super::config_acl::check_folder(folder, own).map_err(|e| {
        format!("the log folder is not safe: {e} (or, as an administrator, delete the folder: the service creates it itself)")
    })?;
    let text = wide(LOG_FOLDER_SDDL);
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `text` is NUL-terminated; the API allocates `sd` with
    // LocalAlloc, freed below.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            text.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(format!(
            "the log folder's security descriptor {LOG_FOLDER_SDDL}: {}",
            io::Error::last_os_error()
        ));
    }
    let result = set_dacl_from(sd, folder);
    // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
    unsafe { LocalFree(sd) };
    result
}

/// Sets the DACL of `sd` on `folder` as a protected DACL.
fn set_dacl_from(sd: PSECURITY_DESCRIPTOR, folder: &Path) -> Result<(), String> {
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl: *mut ACL = std::ptr::null_mut();
    // SAFETY: `sd` is a valid descriptor; `dacl` points into it and is only
    // used while `sd` lives (the caller frees it afterwards).
    let ok = unsafe { GetSecurityDescriptorDacl(sd, &mut present, &mut dacl, &mut defaulted) };
    if ok == 0 || present == 0 {
        return Err(format!(
            "the log folder's DACL: {}",
            io::Error::last_os_error()
        ));
    }
    let path = wide(folder);
    // SAFETY: `path` is NUL-terminated; owner, group and SACL are not set
    // (null); `dacl` is valid for the call.
    let status = unsafe {
        SetNamedSecurityInfoW(
            path.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            dacl,
            std::ptr::null(),
        )
    };
    if status != ERROR_SUCCESS {
        return Err(format!(
            "cannot restrict the log folder {} to SYSTEM and Administrators: {}",
            folder.display(),
            io::Error::from_raw_os_error(status as i32)
        ));
    }
    Ok(())
}

/// The DACL of `path` in SDDL, as Windows reports it (tests, diagnostics).
pub fn dacl_sddl(path: &Path) -> Result<String, String> {
    let wide_path = wide(path);
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `wide_path` is NUL-terminated; only the descriptor is asked
    // for (the other out-pointers are null); it is LocalAlloc'd and freed
    // below.
    let status = unsafe {
        GetNamedSecurityInfoW(
            wide_path.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut sd,
        )
    };
    if status != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(status as i32).to_string());
    }
    let mut text: *mut u16 = std::ptr::null_mut();
    let mut len = 0u32;
    // SAFETY: `sd` is valid; the API allocates `text` (LocalFree'd below).
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd,
            SDDL_REVISION_1,
            DACL_SECURITY_INFORMATION,
            &mut text,
            &mut len,
        )
    };
    let result = if ok == 0 {
        Err(io::Error::last_os_error().to_string())
    } else {
        // SAFETY: `text` holds `len` UTF-16 units (with the NUL).
        let units = unsafe { std::slice::from_raw_parts(text, len as usize) };
        Ok(String::from_utf16_lossy(units)
            .trim_end_matches('\0')
            .to_string())
    };
    // SAFETY: both were allocated by the APIs above (null is fine).
    unsafe {
        LocalFree(text.cast());
        LocalFree(sd);
    }
    result
}
