//! `wsconnector service install|uninstall` on Linux: the system unit of the
//! service and the global user unit of the session agents
//! (installer/linux/, embedded here so the binary installs what it was
//! built with), a `Mode = service` config.xml when there is none, and —
//! when systemd runs — daemon-reload and enable. `--sysroot` writes below
//! another root (image builds, tests) and never calls systemctl.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The service's system unit (installer/linux/wsconnector.service).
pub const SERVICE_UNIT: &str = include_str!("../../installer/linux/wsconnector.service");
/// The session agent's user unit (installer/linux/wsconnector-agent.service).
pub const AGENT_UNIT: &str = include_str!("../../installer/linux/wsconnector-agent.service");
/// Where the units' ExecStart expects the binary in the packages.
const PACKAGED_EXE: &str = "/usr/bin/wsconnector";

/// What install/uninstall did, for the user.
#[derive(Debug, Default)]
pub struct Report {
    /// Lines saying what was done.
    pub done: Vec<String>,
    /// Commands the administrator still has to run.
    pub todo: Vec<String>,
}

/// Why installing failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A file could not be written or removed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A systemctl command failed.
    #[error("`{0}` failed: {1}")]
    Systemctl(String, String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn under(sysroot: Option<&Path>, path: &str) -> PathBuf {
    match sysroot {
        Some(root) => root.join(path.trim_start_matches('/')),
        None => PathBuf::from(path),
    }
}

/// The paths install writes.
pub struct Paths {
    /// The system unit.
    pub service_unit: PathBuf,
    /// The global user unit.
    pub agent_unit: PathBuf,
    /// The machine configuration.
    pub config: PathBuf,
}

/// Where install writes below `sysroot` (or `/`).
pub fn paths(sysroot: Option<&Path>) -> Paths {
    Paths {
        service_unit: under(sysroot, "/etc/systemd/system/wsconnector.service"),
        agent_unit: under(sysroot, "/etc/systemd/user/wsconnector-agent.service"),
        config: under(sysroot, "/etc/wsconnector/config.xml"),
    }
}

/// True when systemd is the init system here (and we are not writing into
/// another root).
fn systemd_running(sysroot: Option<&Path>) -> bool {
    sysroot.is_none() && Path::new("/run/systemd/system").is_dir()
}

fn systemctl(args: &[&str], report: &mut Report) -> Result<(), InstallError> {
    let line = format!("systemctl {}", args.join(" "));
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .map_err(|e| InstallError::Systemctl(line.clone(), e.to_string()))?;
    if !out.status.success() {
        return Err(InstallError::Systemctl(
            line,
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    report.done.push(format!("ran {line}"));
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), InstallError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::write(path, text).map_err(io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))
}

/// A starting configuration for service mode.
fn default_config() -> String {
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
     <!-- wsconnector on a shared host: see /usr/share/wsconnector/config.xml.example\n     \
     for every setting. Only root may write this file. -->\n\
     <configuration>\n  <Mode>service</Mode>\n  <Socket-port>8443</Socket-port>\n  \
     <Log-level>INFO</Log-level>\n  <!-- <AllowedHosts>https://crm.example.com</AllowedHosts> -->\n\
     </configuration>\n"
        .to_string()
}

/// Installs the units (ExecStart naming `exe`), a config.xml when missing,
/// and enables both units when systemd runs; otherwise says what to run.
pub fn install(exe: &Path, sysroot: Option<&Path>) -> Result<Report, InstallError> {
    let p = paths(sysroot);
    let mut report = Report::default();
    let exe = exe.display().to_string();
    write(
        &p.service_unit,
        &SERVICE_UNIT.replace(PACKAGED_EXE, &exe),
        0o644,
    )?;
    report
        .done
        .push(format!("wrote {}", p.service_unit.display()));
    write(
        &p.agent_unit,
        &AGENT_UNIT.replace(PACKAGED_EXE, &exe),
        0o644,
    )?;
    report
        .done
        .push(format!("wrote {}", p.agent_unit.display()));
    if p.config.exists() {
        report.done.push(format!(
            "kept {} (set <Mode>service</Mode> in it)",
            p.config.display()
        ));
    } else {
        write(&p.config, &default_config(), 0o644)?;
        report
            .done
            .push(format!("wrote {} (Mode = service)", p.config.display()));
    }
    let commands = [
        vec!["daemon-reload"],
        vec!["enable", "--now", "wsconnector.service"],
        vec!["--global", "enable", "wsconnector-agent.service"],
    ];
    if systemd_running(sysroot) {
        for args in &commands {
            systemctl(args, &mut report)?;
        }
    } else {
        for args in &commands {
            report.todo.push(format!("systemctl {}", args.join(" ")));
        }
    }
    Ok(report)
}

/// Disables and removes what [`install`] wrote (config.xml is kept: it is
/// the administrator's).
pub fn uninstall(sysroot: Option<&Path>) -> Result<Report, InstallError> {
    let p = paths(sysroot);
    let mut report = Report::default();
    if systemd_running(sysroot) {
        let _ = systemctl(
            &["--global", "disable", "wsconnector-agent.service"],
            &mut report,
        );
        let _ = systemctl(&["disable", "--now", "wsconnector.service"], &mut report);
    }
    for unit in [&p.service_unit, &p.agent_unit] {
        match std::fs::remove_file(unit) {
            Ok(()) => report.done.push(format!("removed {}", unit.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(unit)(e)),
        }
    }
    if systemd_running(sysroot) {
        systemctl(&["daemon-reload"], &mut report)?;
    }
    if report.done.is_empty() {
        report.done.push("nothing to remove".into());
    }
    report.done.push(format!("kept {}", p.config.display()));
    Ok(report)
}
