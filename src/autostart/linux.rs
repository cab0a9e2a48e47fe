//! Linux autostart: a systemd user unit.
//!
//! `WantedBy=default.target` rather than `graphical-session.target`: many
//! desktops never reach the latter, and the agent is useful without a tray
//! (it warns and runs headless). Exit status 2 (bad configuration) and 3
//! (another agent runs) are not restarted: restarting cannot fix them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{AutostartError, Report};

/// The unit's file name.
pub const UNIT_NAME: &str = "wsconnector.service";

/// `~/.config/systemd/user/wsconnector.service` (honours `XDG_CONFIG_HOME`).
pub fn unit_path() -> Result<PathBuf, AutostartError> {
    let dirs = directories::BaseDirs::new().ok_or(AutostartError::NoConfigDir)?;
    Ok(dirs
        .config_dir()
        .join("systemd")
        .join("user")
        .join(UNIT_NAME))
}

/// The unit's text for `exe run [--config FILE]`.
pub fn unit_text(exe: &Path, config: Option<&Path>) -> String {
    let mut exec = format!("{} run", quote(&exe.display().to_string()));
    if let Some(c) = config {
        exec.push_str(&format!(" --config {}", quote(&c.display().to_string())));
    }
    format!(
        "# Written by `wsconnector install --user`; removed by `wsconnector uninstall --user`.\n\
[Unit]\n\
Description=wsconnector agent (local websocket connector)\n\
After=graphical-session.target\n\
\n\
[Service]\n\
Type=simple\n\
ExecStart={exec}\n\
Restart=on-failure\n\
RestartSec=5\n\
RestartPreventExitStatus=2 3\n\
\n\
[Install]\n\
WantedBy=default.target\n"
    )
}

/// One ExecStart word, double-quoted: systemd unquotes `\\` and `\"`, and
/// expands `%` specifiers and `$` variables, which are doubled to stay literal.
fn quote(word: &str) -> String {
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs `systemctl --user ARGS`; a failure becomes a note, not an error:
/// the unit file is what matters, and a shell without a user manager (SSH,
/// a container) can still write it.
fn systemctl(args: &[&str], notes: &mut Vec<String>) -> bool {
    let shown = format!("systemctl --user {}", args.join(" "));
    match Command::new("systemctl").arg("--user").args(args).output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            notes.push(format!(
                "`{shown}` failed ({}): {}; run it in your desktop session",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            false
        }
        Err(e) => {
            notes.push(format!(
                "`{shown}` could not run ({e}); run it in your desktop session"
            ));
            false
        }
    }
}

/// Writes and enables the unit.
pub fn install(exe: &Path, config: Option<&Path>) -> Result<Report, AutostartError> {
    let path = unit_path()?;
    let io = |source| AutostartError::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io)?;
    }
    fs::write(&path, unit_text(exe, config)).map_err(io)?;
    let mut report = Report {
        done: vec![format!("wrote the systemd user unit {}", path.display())],
        notes: Vec::new(),
    };
    if systemctl(&["daemon-reload"], &mut report.notes)
        && systemctl(&["enable", UNIT_NAME], &mut report.notes)
    {
        report
            .done
            .push(format!("enabled {UNIT_NAME}: it starts at your next logon"));
    }
    Ok(report)
}

/// Disables and removes the unit.
pub fn uninstall() -> Result<Report, AutostartError> {
    let path = unit_path()?;
    let mut report = Report {
        done: Vec::new(),
        notes: Vec::new(),
    };
    if !path.exists() {
        report
            .done
            .push(format!("no unit at {}: nothing to remove", path.display()));
        return Ok(report);
    }
    if systemctl(&["disable", UNIT_NAME], &mut report.notes) {
        report.done.push(format!("disabled {UNIT_NAME}"));
    }
    fs::remove_file(&path).map_err(|source| AutostartError::Io {
        path: path.clone(),
        source,
    })?;
    report.done.push(format!("removed {}", path.display()));
    systemctl(&["daemon-reload"], &mut report.notes);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_quotes_spaces_specifiers_and_variables() {
        let text = unit_text(
            Path::new("/opt/ws connector/bin/wsconnector"),
            Some(Path::new("/home/a/100%$HOME\"x\\y.xml")),
        );
        assert!(
            text.contains(
                "ExecStart=\"/opt/ws connector/bin/wsconnector\" run --config \"/home/a/100%%$$HOME\\\"x\\\\y.xml\"\n"
            ),
            "{text}"
        );
        assert!(text.contains("RestartPreventExitStatus=2 3\n"));
        assert!(text.contains("[Install]\nWantedBy=default.target\n"));
    }

    #[test]
    fn without_config_runs_plain() {
        let text = unit_text(Path::new("/usr/bin/wsconnector"), None);
        assert!(
            text.contains("ExecStart=\"/usr/bin/wsconnector\" run\n"),
            "{text}"
        );
    }
}
