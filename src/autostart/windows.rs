//! Windows autostart: a `wsconnector` value under the current user's Run key,
//! written with the system's `reg.exe` (no registry code of our own to get
//! wrong; `reg` reports its own errors).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{AutostartError, Report};

/// The per-user Run key.
pub const RUN_KEY: &str = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run";
/// The value's name.
pub const VALUE_NAME: &str = "wsconnector";

/// The Run value's data: `"EXE" run [--config "FILE"]`.
pub fn run_command(exe: &Path, config: Option<&Path>) -> String {
    let mut cmd = format!("\"{}\" run", exe.display());
    if let Some(c) = config {
        cmd.push_str(&format!(" --config \"{}\"", c.display()));
    }
    cmd
}

/// `%SystemRoot%\System32\reg.exe`, never whatever `reg` is on PATH.
fn reg_exe() -> PathBuf {
    let root = std::env::var_os("SystemRoot").unwrap_or_else(|| r"C:\Windows".into());
    PathBuf::from(root).join("System32").join("reg.exe")
}

fn reg(args: &[&str]) -> Result<(), AutostartError> {
    let out = Command::new(reg_exe())
        .args(args)
        .output()
        .map_err(|e| AutostartError::Tool {
            tool: "reg.exe".into(),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(AutostartError::Tool {
            tool: format!("reg {}", args.first().copied().unwrap_or_default()),
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// Writes the Run value.
pub fn install(exe: &Path, config: Option<&Path>) -> Result<Report, AutostartError> {
    let data = run_command(exe, config);
    reg(&[
        "add", RUN_KEY, "/v", VALUE_NAME, "/t", "REG_SZ", "/d", &data, "/f",
    ])?;
    Ok(Report {
        done: vec![format!("{RUN_KEY}\\{VALUE_NAME} = {data}")],
        notes: Vec::new(),
    })
}

/// Deletes the Run value (absent is fine).
pub fn uninstall() -> Result<Report, AutostartError> {
    let present = reg(&["query", RUN_KEY, "/v", VALUE_NAME]).is_ok();
    if !present {
        return Ok(Report {
            done: vec![format!("no {RUN_KEY}\\{VALUE_NAME}: nothing to remove")],
            notes: Vec::new(),
        });
    }
    reg(&["delete", RUN_KEY, "/v", VALUE_NAME, "/f"])?;
    Ok(Report {
        done: vec![format!("removed {RUN_KEY}\\{VALUE_NAME}")],
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_value_quotes_both_paths() {
        assert_eq!(
            run_command(
                Path::new(r"C:\Program Files\wsconnector\wsconnector.exe"),
                Some(Path::new(r"C:\ProgramData\wsconnector\config.xml"))
            ),
            r#""C:\Program Files\wsconnector\wsconnector.exe" run --config "C:\ProgramData\wsconnector\config.xml""#
        );
    }
}
