//! Loud skips: a check that cannot run here says so on stderr and in the
//! run's skip log (`WSC_SKIP_LOG`), which scripts/test.sh prints at the end,
//! so it never passes silently.

/// Report that a check was skipped, and why.
#[allow(dead_code)] // not every test binary has a check that can be skipped on every OS
pub fn skipped(what: &str, why: &str) {
    let line = format!("{what}: {why}");
    eprintln!("SKIPPED: {line}");
    if let Ok(path) = std::env::var("WSC_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
