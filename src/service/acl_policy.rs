//! Which Windows ACLs make the service's config.xml unsafe: the pure policy
//! of the Windows config guard (the Linux one is `config_guard`), kept free
//! of Win32 so its tests run everywhere. `service::windows::config_acl`
//! reads each path's owner and DACL and asks [`check_chain`].
//!
//! The file decides which web origins may drive every user's desktop, so
//! only administrators may change it, or swap it for another file.
//!
//! # The policy
//!
//! Trusted accounts: SYSTEM (`S-1-5-18`), Administrators (`S-1-5-32-544`),
//! TrustedInstaller, and the account the service itself runs as (LocalSystem
//! under the SCM; the caller passes it, as the Linux guard accepts the
//! service's own uid). The service's per-service SID (`NT SERVICE\wsconnector`)
//! is not accepted: nothing grants it rights on the config, and accepting it
//! would need the SID's SHA-1 derivation for no gain. Under Wine the
//! service runs as the Wine user, whom Wine reports as the owner of every
//! file with full control: trusted there as the service's own account.
//!
//! | checked                     | refused when an *allow* ACE for an untrusted SID grants |
//! |-----------------------------|----------------------------------------------------------|
//! | config.xml                  | write data, append data, write EA, DELETE, WRITE_DAC, WRITE_OWNER, GENERIC_WRITE, GENERIC_ALL |
//! | every folder above it       | delete child, DELETE, WRITE_DAC, WRITE_OWNER, GENERIC_WRITE, GENERIC_ALL |
//!
//! and for each of them: a NULL DACL (everyone has full access), or an owner
//! that is not trusted (an owner may always rewrite the DACL).
//!
//! Why folders may grant *add file* and *add subfolder*: on a default
//! Windows install `C:\` grants Authenticated Users "add subfolder" on itself,
//! `C:\ProgramData` grants Users "write data / add file, append data / add
//! subfolder, write EA, write attributes" on itself **and every folder
//! created below it** (an inherited container-inherit ACE that is not
//! inherit-only), so `C:\ProgramData\wsconnector` normally lets users add new
//! entries too. Adding a *new* name cannot replace `config.xml` or a folder
//! on its path: replacing an existing entry needs DELETE on it or
//! "delete child" on its folder (or rights on the file itself), and taking
//! over a folder needs WRITE_DAC/WRITE_OWNER or ownership. A guard that
//! refused that default layout would be turned off, which is worse than
//! none. GENERIC_WRITE on a folder maps to add file/subfolder only, but it
//! never appears in a default layout and is refused to keep the rule simple.
//!
//! Write attributes is allowed everywhere: it changes timestamps and the
//! read-only flag, not what the service reads (and the read-only flag does
//! not grant anyone write access).
//!
//! Ignored ACEs: deny ACEs (they only take rights away), inherit-only ACEs
//! (they apply to children created later, not to the object itself, e.g.
//! `CREATOR OWNER:(OI)(CI)(IO)(F)` on ProgramData), and an effective ACE
//! for CREATOR OWNER (`S-1-3-0`), which matches no token (the SID is only a
//! placeholder for inheritance). An ACE type that carries no plain SID
//! (object or compound ACEs, unheard of on files) is treated as untrusted.

use std::path::PathBuf;

/// `FILE_WRITE_DATA` on a file, `FILE_ADD_FILE` on a folder.
pub const FILE_WRITE_DATA: u32 = 0x0002;
/// `FILE_APPEND_DATA` on a file, `FILE_ADD_SUBDIRECTORY` on a folder.
pub const FILE_APPEND_DATA: u32 = 0x0004;
/// `FILE_WRITE_EA`: extended attributes.
pub const FILE_WRITE_EA: u32 = 0x0010;
/// `FILE_DELETE_CHILD`: delete or rename any entry of the folder.
pub const FILE_DELETE_CHILD: u32 = 0x0040;
/// `FILE_WRITE_ATTRIBUTES`: timestamps and flags (allowed, see above).
pub const FILE_WRITE_ATTRIBUTES: u32 = 0x0100;
/// `DELETE`: delete or rename the object itself.
pub const DELETE: u32 = 0x0001_0000;
/// `WRITE_DAC`: change the DACL.
pub const WRITE_DAC: u32 = 0x0004_0000;
/// `WRITE_OWNER`: take ownership.
pub const WRITE_OWNER: u32 = 0x0008_0000;
/// `GENERIC_ALL`.
pub const GENERIC_ALL: u32 = 0x1000_0000;
/// `GENERIC_WRITE`.
pub const GENERIC_WRITE: u32 = 0x4000_0000;

/// Full control (`FA` in SDDL), for tests and fixtures.
pub const FILE_ALL_ACCESS: u32 = 0x001F_01FF;
/// Read & execute (`0x1200a9`), what Users get on ProgramData.
pub const FILE_READ_EXECUTE: u32 = 0x0012_00A9;

/// LocalSystem.
pub const SYSTEM: &str = "S-1-5-18";
/// BUILTIN\Administrators.
pub const ADMINISTRATORS: &str = "S-1-5-32-544";
/// NT SERVICE\TrustedInstaller.
pub const TRUSTED_INSTALLER: &str =
    "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464";
/// CREATOR OWNER: a placeholder that only means something in inheritable ACEs.
pub const CREATOR_OWNER: &str = "S-1-3-0";
/// BUILTIN\Users.
pub const USERS: &str = "S-1-5-32-545";
/// Everyone.
pub const EVERYONE: &str = "S-1-1-0";
/// NT AUTHORITY\Authenticated Users.
pub const AUTHENTICATED_USERS: &str = "S-1-5-11";

/// Rights on the file itself that let someone change what the service reads.
const FILE_FORBIDDEN: &[(u32, &str)] = &[
    (FILE_WRITE_DATA, "write data"),
    (FILE_APPEND_DATA, "append data"),
    (FILE_WRITE_EA, "write extended attributes"),
    (DELETE, "delete or rename it"),
    (WRITE_DAC, "change its permissions (WRITE_DAC)"),
    (WRITE_OWNER, "take ownership (WRITE_OWNER)"),
    (GENERIC_WRITE, "write (GENERIC_WRITE)"),
    (GENERIC_ALL, "full control (GENERIC_ALL)"),
];

/// Rights on a folder of the path that let someone replace an existing entry.
const FOLDER_FORBIDDEN: &[(u32, &str)] = &[
    (
        FILE_DELETE_CHILD,
        "delete or rename its entries (delete child)",
    ),
    (DELETE, "delete or rename it"),
    (WRITE_DAC, "change its permissions (WRITE_DAC)"),
    (WRITE_OWNER, "take ownership (WRITE_OWNER)"),
    (GENERIC_WRITE, "write (GENERIC_WRITE)"),
    (GENERIC_ALL, "full control (GENERIC_ALL)"),
];

/// One ACE of a DACL, as read from Windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// The trustee, `S-1-…` (or a description when the ACE type carries no
    /// plain SID; such an ACE is then untrusted).
    pub sid: String,
    /// The access mask.
    pub mask: u32,
    /// `INHERIT_ONLY_ACE`: applies to children only, not to this object.
    pub inherit_only: bool,
    /// An allow ACE (`false`: deny, which never adds rights).
    pub allow: bool,
}

impl Ace {
    /// An effective allow ACE (fixtures, tests).
    pub fn allow(sid: &str, mask: u32) -> Ace {
        Ace {
            sid: sid.into(),
            mask,
            inherit_only: false,
            allow: true,
        }
    }
}

/// What one path of the chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The config file itself.
    File,
    /// Its folder or any folder above it.
    Folder,
}

/// The owner and DACL of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file or folder.
    pub path: PathBuf,
    /// File or folder.
    pub kind: Kind,
    /// The owner's SID.
    pub owner: String,
    /// The DACL; `None` is a NULL DACL (no protection at all).
    pub dacl: Option<Vec<Ace>>,
}

/// Why the configuration file is not safe for the Windows service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// An untrusted account holds a right that lets it change or swap the file.
    #[error(
        "{path}: {account} ({sid}) may {right} (access mask {mask:#x}): users could change or \
         replace it. Fix (as an administrator): icacls \"{path}\" /inheritance:d \
         && icacls \"{path}\" /remove:g *{sid}"
    )]
    Grants {
        /// The file or folder.
        path: PathBuf,
        /// The trustee's SID.
        sid: String,
        /// Its well-known name, or "account".
        account: &'static str,
        /// The first offending right, in words.
        right: &'static str,
        /// The ACE's whole mask.
        mask: u32,
    },
    /// No DACL: everyone has full access.
    #[error(
        "{path} has a NULL DACL (everyone has full access): users could change or replace \
         it. Fix (as an administrator): icacls \"{path}\" /reset"
    )]
    NullDacl {
        /// The file or folder.
        path: PathBuf,
    },
    /// Owned by an account that is not trusted (an owner can always
    /// rewrite the DACL).
    #[error(
        "{path} is owned by {account} ({sid}), who may change its permissions: users could \
         change or replace it. Fix (as an administrator): icacls \"{path}\" \
         /setowner *S-1-5-32-544"
    )]
    Owner {
        /// The file or folder.
        path: PathBuf,
        /// The owner's SID.
        sid: String,
        /// Its well-known name, or "account".
        account: &'static str,
    },
    /// Reading the security descriptor failed.
    #[error("cannot check {path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// A name for well-known SIDs in messages.
pub fn account_name(sid: &str) -> &'static str {
    match sid {
        SYSTEM => "SYSTEM",
        ADMINISTRATORS => "BUILTIN\\Administrators",
        TRUSTED_INSTALLER => "NT SERVICE\\TrustedInstaller",
        CREATOR_OWNER => "CREATOR OWNER",
        USERS => "BUILTIN\\Users",
        EVERYONE => "Everyone",
        AUTHENTICATED_USERS => "NT AUTHORITY\\Authenticated Users",
        "S-1-5-32-546" => "BUILTIN\\Guests",
        "S-1-5-4" => "NT AUTHORITY\\INTERACTIVE",
        "S-1-3-4" => "OWNER RIGHTS",
        "S-1-5-7" => "ANONYMOUS LOGON",
        _ => "account",
    }
}

/// Whether `sid` may write the configuration: the machine's own accounts,
/// or `own` (the account the service runs as).
fn trusted(sid: &str, own: Option<&str>) -> bool {
    matches!(sid, SYSTEM | ADMINISTRATORS | TRUSTED_INSTALLER) || own == Some(sid)
}

/// Checks one path (see the module doc for the table).
pub fn check_entry(entry: &Entry, own: Option<&str>) -> Result<(), AclError> {
    if !trusted(&entry.owner, own) {
        return Err(AclError::Owner {
            path: entry.path.clone(),
            sid: entry.owner.clone(),
            account: account_name(&entry.owner),
        });
    }
    let Some(dacl) = &entry.dacl else {
        return Err(AclError::NullDacl {
            path: entry.path.clone(),
        });
    };
    let forbidden = match entry.kind {
        Kind::File => FILE_FORBIDDEN,
        Kind::Folder => FOLDER_FORBIDDEN,
    };
    for ace in dacl {
        if !ace.allow || ace.inherit_only || ace.sid == CREATOR_OWNER || trusted(&ace.sid, own) {
            continue;
        }
        if let Some((_, right)) = forbidden.iter().find(|(bit, _)| ace.mask & bit != 0) {
            return Err(AclError::Grants {
                path: entry.path.clone(),
                sid: ace.sid.clone(),
                account: account_name(&ace.sid),
                right,
                mask: ace.mask,
            });
        }
    }
    Ok(())
}

/// Checks the file and every folder above it; the first problem wins.
pub fn check_chain(entries: &[Entry], own: Option<&str>) -> Result<(), AclError> {
    entries.iter().try_for_each(|e| check_entry(e, own))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "S-1-5-21-1-2-3-1001";
    /// What `BUILTIN\Users:(CI)(WD,AD,WEA,WA)` on ProgramData is.
    const USERS_ADD: u32 =
        FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_WRITE_EA | FILE_WRITE_ATTRIBUTES;

    fn admins_and_system() -> Vec<Ace> {
        vec![
            Ace::allow(SYSTEM, FILE_ALL_ACCESS),
            Ace::allow(ADMINISTRATORS, FILE_ALL_ACCESS),
        ]
    }

    fn inherit_only(sid: &str, mask: u32) -> Ace {
        Ace {
            inherit_only: true,
            ..Ace::allow(sid, mask)
        }
    }

    /// A default install: `C:\`, `C:\ProgramData`, the wsconnector folder
    /// an elevated installer created there (inheriting ProgramData's ACEs),
    /// and config.xml in it.
    fn default_layout() -> Vec<Entry> {
        let mut root = admins_and_system();
        root.push(Ace::allow(USERS, FILE_READ_EXECUTE));
        root.push(inherit_only(AUTHENTICATED_USERS, 0x0013_01BF));
        root.push(Ace::allow(AUTHENTICATED_USERS, FILE_APPEND_DATA));
        let mut program_data = admins_and_system();
        program_data.push(inherit_only(CREATOR_OWNER, GENERIC_ALL));
        program_data.push(Ace::allow(USERS, FILE_READ_EXECUTE));
        program_data.push(Ace::allow(USERS, USERS_ADD));
        let own_folder = program_data.clone();
        let mut file = admins_and_system();
        file.push(Ace::allow(USERS, FILE_READ_EXECUTE));
        vec![
            Entry {
                path: r"C:\ProgramData\wsconnector\config.xml".into(),
                kind: Kind::File,
                owner: ADMINISTRATORS.into(),
                dacl: Some(file),
            },
            Entry {
                path: r"C:\ProgramData\wsconnector".into(),
                kind: Kind::Folder,
                owner: ADMINISTRATORS.into(),
                dacl: Some(own_folder),
            },
            Entry {
                path: r"C:\ProgramData".into(),
                kind: Kind::Folder,
                owner: SYSTEM.into(),
                dacl: Some(program_data),
            },
            Entry {
                path: r"C:\".into(),
                kind: Kind::Folder,
                owner: TRUSTED_INSTALLER.into(),
                dacl: Some(root),
            },
        ]
    }

    fn with(mut chain: Vec<Entry>, index: usize, edit: impl FnOnce(&mut Entry)) -> Vec<Entry> {
        edit(&mut chain[index]);
        chain
    }

    fn grant(chain: Vec<Entry>, index: usize, ace: Ace) -> Vec<Entry> {
        with(chain, index, |e| e.dacl.as_mut().unwrap().push(ace))
    }

    #[test]
    fn the_default_program_data_layout_passes() {
        assert_eq!(check_chain(&default_layout(), Some(SYSTEM)), Ok(()));
        assert_eq!(check_chain(&default_layout(), None), Ok(()));
    }

    #[test]
    fn users_write_on_the_file_is_refused_naming_path_sid_and_right() {
        let chain = grant(default_layout(), 0, Ace::allow(USERS, FILE_WRITE_DATA));
        let err = check_chain(&chain, Some(SYSTEM)).unwrap_err();
        assert_eq!(
            err,
            AclError::Grants {
                path: r"C:\ProgramData\wsconnector\config.xml".into(),
                sid: USERS.into(),
                account: "BUILTIN\\Users",
                right: "write data",
                mask: FILE_WRITE_DATA,
            }
        );
        let text = err.to_string();
        assert!(
            text.contains(r"C:\ProgramData\wsconnector\config.xml"),
            "{text}"
        );
        assert!(
            text.contains("BUILTIN\\Users (S-1-5-32-545) may write data"),
            "{text}"
        );
        assert!(text.contains("icacls"), "{text}");
    }

    #[test]
    fn every_write_right_on_the_file_is_refused() {
        for bit in [
            FILE_WRITE_DATA,
            FILE_APPEND_DATA,
            FILE_WRITE_EA,
            DELETE,
            WRITE_DAC,
            WRITE_OWNER,
            GENERIC_WRITE,
            GENERIC_ALL,
        ] {
            let chain = grant(default_layout(), 0, Ace::allow(ALICE, bit));
            assert!(
                matches!(check_chain(&chain, None), Err(AclError::Grants { mask, .. }) if mask == bit),
                "{bit:#x}"
            );
        }
    }

    #[test]
    fn write_attributes_alone_is_allowed() {
        let chain = grant(
            default_layout(),
            0,
            Ace::allow(USERS, FILE_WRITE_ATTRIBUTES),
        );
        assert_eq!(check_chain(&chain, None), Ok(()));
    }

    #[test]
    fn everyone_generic_all_is_refused_on_the_file_and_on_folders() {
        for index in 0..4 {
            let chain = grant(default_layout(), index, Ace::allow(EVERYONE, GENERIC_ALL));
            match check_chain(&chain, None) {
                Err(AclError::Grants {
                    sid, account, path, ..
                }) => {
                    assert_eq!(sid, EVERYONE);
                    assert_eq!(account, "Everyone");
                    assert_eq!(path, default_layout()[index].path);
                }
                other => panic!("{index}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_null_dacl_is_refused() {
        let chain = with(default_layout(), 1, |e| e.dacl = None);
        let err = check_chain(&chain, None).unwrap_err();
        assert_eq!(
            err,
            AclError::NullDacl {
                path: r"C:\ProgramData\wsconnector".into()
            }
        );
        assert!(err.to_string().contains("everyone has full access"));
    }

    #[test]
    fn an_empty_dacl_passes_it_grants_nothing() {
        let chain = with(default_layout(), 0, |e| e.dacl = Some(Vec::new()));
        assert_eq!(check_chain(&chain, None), Ok(()));
    }

    #[test]
    fn a_non_admin_owner_is_refused_on_the_file_and_on_folders() {
        for index in 0..4 {
            let chain = with(default_layout(), index, |e| e.owner = ALICE.into());
            let err = check_chain(&chain, Some(SYSTEM)).unwrap_err();
            assert_eq!(
                err,
                AclError::Owner {
                    path: default_layout()[index].path.clone(),
                    sid: ALICE.into(),
                    account: "account",
                }
            );
            assert!(err.to_string().contains("/setowner"), "{err}");
        }
    }

    #[test]
    fn the_services_own_account_is_trusted_as_owner_and_trustee() {
        let chain = with(default_layout(), 0, |e| {
            e.owner = ALICE.into();
            e.dacl
                .as_mut()
                .unwrap()
                .push(Ace::allow(ALICE, FILE_ALL_ACCESS));
        });
        assert_eq!(check_chain(&chain, Some(ALICE)), Ok(()));
        assert!(check_chain(&chain, Some(SYSTEM)).is_err());
    }

    #[test]
    fn deny_aces_are_ignored() {
        let deny = Ace {
            allow: false,
            ..Ace::allow(EVERYONE, GENERIC_ALL)
        };
        let chain = grant(default_layout(), 0, deny);
        assert_eq!(check_chain(&chain, None), Ok(()));
    }

    #[test]
    fn inherit_only_aces_are_ignored() {
        let chain = grant(default_layout(), 1, inherit_only(USERS, GENERIC_ALL));
        assert_eq!(check_chain(&chain, None), Ok(()));
    }

    #[test]
    fn an_effective_creator_owner_ace_grants_nobody_anything() {
        let chain = grant(
            default_layout(),
            0,
            Ace::allow(CREATOR_OWNER, FILE_ALL_ACCESS),
        );
        assert_eq!(check_chain(&chain, None), Ok(()));
    }

    #[test]
    fn folders_may_let_users_add_entries_but_not_delete_or_take_them() {
        for index in 1..4 {
            let add = grant(
                default_layout(),
                index,
                Ace::allow(AUTHENTICATED_USERS, FILE_WRITE_DATA | FILE_APPEND_DATA),
            );
            assert_eq!(check_chain(&add, None), Ok(()), "{index}");
            for (bit, right) in [
                (
                    FILE_DELETE_CHILD,
                    "delete or rename its entries (delete child)",
                ),
                (DELETE, "delete or rename it"),
                (WRITE_DAC, "change its permissions (WRITE_DAC)"),
                (WRITE_OWNER, "take ownership (WRITE_OWNER)"),
                (GENERIC_WRITE, "write (GENERIC_WRITE)"),
            ] {
                let chain = grant(default_layout(), index, Ace::allow(USERS, bit));
                match check_chain(&chain, None) {
                    Err(AclError::Grants { right: got, .. }) => assert_eq!(got, right),
                    other => panic!("{index} {bit:#x}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn the_first_problem_from_the_file_up_is_reported() {
        let chain = grant(default_layout(), 3, Ace::allow(USERS, FILE_DELETE_CHILD));
        let chain = grant(chain, 1, Ace::allow(EVERYONE, WRITE_DAC));
        match check_chain(&chain, None) {
            Err(AclError::Grants { path, sid, .. }) => {
                assert_eq!(path, PathBuf::from(r"C:\ProgramData\wsconnector"));
                assert_eq!(sid, EVERYONE);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unparsed_ace_trustee_is_untrusted() {
        let chain = grant(
            default_layout(),
            0,
            Ace::allow("(object ACE type 5)", FILE_WRITE_DATA),
        );
        assert!(matches!(
            check_chain(&chain, None),
            Err(AclError::Grants {
                account: "account",
                ..
            })
        ));
    }
}
