//! Test helper for tests/platform_windows.rs (built as the example
//! `argv_marker`): writes the arguments it received after the first one, as
//! a JSON array, to the file named by the first one. That proves a launched
//! program got exactly the argv we meant, quoting and all. Written to a
//! temporary name and renamed, so a reader never sees half a file.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(marker) = args.next() else {
        eprintln!("usage: argv_marker MARKER_FILE [ARGS...]");
        std::process::exit(2);
    };
    let rest: Vec<String> = args.collect();
    let json = serde_json::to_string(&rest).map_err(std::io::Error::other)?;
    let partial = format!("{marker}.partial");
    std::fs::write(&partial, json)?;
    std::fs::rename(&partial, &marker)
}
