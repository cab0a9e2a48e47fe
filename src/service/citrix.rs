//! Citrix published-application sessions and the session agent (issue 8):
//! the list in `LogoffCheckSysModules` that lets such a session log off
//! while our agent still runs.
//!
//! In a published-application (seamless) session Citrix logs the user off
//! when the last published application exits, but it waits for every other
//! process of the session unless that process's file name is in the REG_SZ
//! value `LogoffCheckSysModules` under
//! `HKLM\SYSTEM\CurrentControlSet\Control\Citrix\wfshell\TWI`, a
//! comma-separated list of executable file names (`ssonsvr.exe,other.exe`).
//! The service starts `wsconnector.exe agent` in every session, so without
//! our name there no published-app session would ever end.
//!
//! This module edits that list as text, platform-neutral so it is tested
//! everywhere; the registry I/O is `service::windows::citrix`. The rules:
//! file names compare case-insensitively with the spaces around them
//! trimmed; every other name keeps its spelling and place; what we write is
//! the names joined by bare commas (no spaces, no empty entries), because
//! the VDA reportedly stops reading the list at a space.

/// The key whose existence says "this is a Citrix host" (the VDA creates
/// it): only then is the value written.
pub const CITRIX_KEY: &str = r"SYSTEM\CurrentControlSet\Control\Citrix";
/// The key holding the value, under HKLM.
pub const TWI_KEY: &str = r"SYSTEM\CurrentControlSet\Control\Citrix\wfshell\TWI";
/// The value's name.
pub const VALUE_NAME: &str = "LogoffCheckSysModules";

/// Whether entry `entry` of the list names `exe`.
fn same_module(entry: &str, exe: &str) -> bool {
    entry.trim().to_lowercase() == exe.trim().to_lowercase()
}

/// Whether `list` already names `exe`.
pub fn contains_module(list: &str, exe: &str) -> bool {
    list.split(',').any(|entry| same_module(entry, exe))
}

/// The file names of `list`, trimmed, without empty entries, in order.
fn entries(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|e| !e.is_empty())
}

/// `list` in the form we write: its names, trimmed, joined by bare commas.
/// Administrators report that the VDA stops reading the list at a space
/// (docs/deployment.md), so an entry written after `", "` could be ignored.
pub fn normalized(list: &str) -> String {
    entries(list).collect::<Vec<_>>().join(",")
}

/// `list` with `exe` appended, or `None` when the value is already right
/// (it names `exe` and is in [`normalized`] form). The other names keep
/// their spelling and order; spaces and empty entries go:
/// `"a.exe, B.exe"` → `"a.exe,B.exe,exe"`, `""` → `"exe"`.
pub fn add_module(list: &str, exe: &str) -> Option<String> {
    let mut names: Vec<&str> = entries(list).collect();
    if !contains_module(list, exe) {
        names.push(exe);
    }
    let new = names.join(",");
    (new != list).then_some(new)
}

/// `list` without any entry naming `exe` (in [`normalized`] form), or
/// `None` when it names no such entry (the value is then left exactly as
/// it is). `Some("")` means nothing else is left.
pub fn remove_module(list: &str, exe: &str) -> Option<String> {
    if !contains_module(list, exe) {
        return None;
    }
    Some(
        entries(list)
            .filter(|entry| !same_module(entry, exe))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Whether a list holds no file name at all (only spaces and commas).
pub fn is_empty_list(list: &str) -> bool {
    entries(list).next().is_none()
}

/// The command an administrator runs by hand to set the value to `value`
/// (images built without our installer, or when install could not write).
pub fn reg_add_command(value: &str) -> String {
    format!(r#"reg add "HKLM\{TWI_KEY}" /v {VALUE_NAME} /t REG_SZ /d "{value}" /f"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "wsconnector.exe";

    #[test]
    fn add_to_an_empty_or_missing_value() {
        assert_eq!(add_module("", EXE).as_deref(), Some(EXE));
        assert_eq!(add_module("  ", EXE).as_deref(), Some(EXE));
        assert_eq!(add_module(" ,, ", EXE).as_deref(), Some(EXE));
    }

    #[test]
    fn add_appends_and_keeps_the_others_names_and_order() {
        assert_eq!(
            add_module("ssonsvr.exe, Other.EXE", EXE).as_deref(),
            Some("ssonsvr.exe,Other.EXE,wsconnector.exe")
        );
        assert_eq!(
            add_module("ssonsvr.exe", EXE).as_deref(),
            Some("ssonsvr.exe,wsconnector.exe")
        );
    }

    #[test]
    fn add_drops_empty_entries_and_spaces() {
        assert_eq!(
            add_module("a.exe,,b.exe ,", EXE).as_deref(),
            Some("a.exe,b.exe,wsconnector.exe")
        );
        assert_eq!(
            add_module(" a.exe, ", EXE).as_deref(),
            Some("a.exe,wsconnector.exe")
        );
    }

    #[test]
    fn add_is_a_no_op_when_present_in_any_case() {
        assert_eq!(add_module("wsconnector.exe", EXE), None);
        assert_eq!(add_module("a.exe,WSConnector.EXE,b.exe", EXE), None);
        // Idempotent: adding to the result of an add changes nothing.
        let once = add_module("ssonsvr.exe, Other.EXE", EXE).unwrap();
        assert_eq!(add_module(&once, EXE), None);
    }

    #[test]
    fn add_when_present_after_a_space_rewrites_without_spaces() {
        // Present, but where the VDA may not read it: made readable, ours
        // is not added twice.
        assert_eq!(
            add_module("a.exe, WSConnector.EXE ,b.exe", EXE).as_deref(),
            Some("a.exe,WSConnector.EXE,b.exe")
        );
        assert_eq!(
            add_module("a.exe,,wsconnector.exe,", EXE).as_deref(),
            Some("a.exe,wsconnector.exe")
        );
    }

    #[test]
    fn a_longer_or_shorter_name_is_not_ours() {
        assert!(!contains_module(
            "my-wsconnector.exe,wsconnector.exe.bak",
            EXE
        ));
        assert_eq!(
            add_module("my-wsconnector.exe", EXE).as_deref(),
            Some("my-wsconnector.exe,wsconnector.exe")
        );
        assert_eq!(remove_module("my-wsconnector.exe,wsconnector", EXE), None);
    }

    #[test]
    fn remove_keeps_the_others_and_their_order() {
        assert_eq!(
            remove_module("ssonsvr.exe,Other.EXE,wsconnector.exe", EXE).as_deref(),
            Some("ssonsvr.exe,Other.EXE")
        );
        assert_eq!(
            remove_module("b.exe, WSCONNECTOR.exe ,a.exe", EXE).as_deref(),
            Some("b.exe,a.exe")
        );
        assert_eq!(
            remove_module("a.exe,,wsconnector.exe,b.exe ,", EXE).as_deref(),
            Some("a.exe,b.exe")
        );
    }

    #[test]
    fn remove_takes_every_copy() {
        assert_eq!(
            remove_module("wsconnector.exe,a.exe,WsConnector.exe", EXE).as_deref(),
            Some("a.exe")
        );
    }

    #[test]
    fn remove_when_absent_changes_nothing() {
        assert_eq!(remove_module("", EXE), None);
        // Not even the spaces: the value is not ours to tidy.
        assert_eq!(remove_module("ssonsvr.exe, Other.EXE", EXE), None);
    }

    #[test]
    fn remove_of_the_only_entry_leaves_an_empty_list() {
        assert_eq!(remove_module("wsconnector.exe", EXE).as_deref(), Some(""));
        assert_eq!(
            remove_module(" wsconnector.exe ,", EXE).as_deref(),
            Some("")
        );
        assert!(is_empty_list(""));
        assert!(is_empty_list(" , ,"));
        assert!(!is_empty_list("a.exe"));
    }

    #[test]
    fn add_then_remove_gives_back_the_normalized_original() {
        for original in ["ssonsvr.exe, Other.EXE", "a.exe,,b.exe", "x.exe"] {
            let added = add_module(original, EXE).unwrap();
            assert_eq!(
                remove_module(&added, EXE),
                Some(normalized(original)),
                "{original}"
            );
        }
        assert_eq!(normalized(" a.exe ,, B.exe,"), "a.exe,B.exe");
    }

    #[test]
    fn the_manual_command_names_the_key_and_value() {
        assert_eq!(
            reg_add_command("ssonsvr.exe,wsconnector.exe"),
            r#"reg add "HKLM\SYSTEM\CurrentControlSet\Control\Citrix\wfshell\TWI" /v LogoffCheckSysModules /t REG_SZ /d "ssonsvr.exe,wsconnector.exe" /f"#
        );
    }
}
