//! The Windows command line for `CreateProcessW`: one string that the child's
//! C runtime (or `CommandLineToArgvW`) splits back into exactly the argv we
//! mean. Pure string code with no Win32 call, so its tests run on every OS
//! (tests/windows_cmdline.rs includes this file on non-Windows hosts).
//!
//! The splitting rules (Microsoft, "Parsing C++ command-line arguments";
//! `CommandLineToArgvW`):
//! - arguments are separated by spaces or tabs outside double quotes;
//! - `"` opens or closes a quoted part; inside it spaces and tabs are literal;
//! - `2n` backslashes followed by `"` give `n` backslashes and a quote
//!   *delimiter*; `2n + 1` backslashes followed by `"` give `n` backslashes
//!   and a literal `"`; backslashes not followed by `"` are literal;
//! - the first token (the program) is special: it ends at the next `"` if it
//!   starts with one, with no backslash processing at all.
//!
//! So an argument is emitted bare when it is non-empty and has no space,
//! tab, newline, vertical tab or quote; otherwise it is wrapped in quotes,
//! every `"` becomes `\"` with the backslashes before it doubled, and the
//! backslashes before the closing quote are doubled.

/// The longest command line `CreateProcessW` accepts, in UTF-16 units,
/// including the terminating NUL.
pub const MAX_COMMAND_LINE_UNITS: usize = 32_767;

/// Why no command line could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandLineError {
    /// NUL ends a wide string: the child would see a truncated argument.
    #[error("argument {0} contains a NUL character")]
    Nul(usize),
    /// The program path cannot be quoted (`"` is not allowed in Windows file names).
    #[error("the program path contains a double quote")]
    QuoteInProgram,
    /// Longer than `CreateProcessW` accepts.
    #[error("the command line is {0} UTF-16 units long; Windows accepts at most 32766")]
    TooLong(usize),
}

/// Builds the command line for `program` (argv[0], always quoted) followed
/// by `args`, each of which the child gets back unchanged as one argv entry.
pub fn command_line(program: &str, args: &[String]) -> Result<String, CommandLineError> {
    if program.contains('"') {
        return Err(CommandLineError::QuoteInProgram);
    }
    if program.contains('\0') {
        return Err(CommandLineError::Nul(0));
    }
    // argv[0] is read up to the next quote without backslash rules, so
    // quoting it whole is always right (and keeps a path with spaces whole).
    let mut line = String::with_capacity(program.len() + 2);
    line.push('"');
    line.push_str(program);
    line.push('"');
    for (index, arg) in args.iter().enumerate() {
        if arg.contains('\0') {
            return Err(CommandLineError::Nul(index + 1));
        }
        line.push(' ');
        push_quoted(&mut line, arg);
    }
    let units = line.encode_utf16().count() + 1;
    if units > MAX_COMMAND_LINE_UNITS {
        return Err(CommandLineError::TooLong(units));
    }
    Ok(line)
}

/// Appends one argument (not argv[0]) quoted by the rules in the module doc.
fn push_quoted(line: &mut String, arg: &str) {
    let needs_quotes = arg.is_empty() || arg.contains([' ', '\t', '\n', '\u{b}', '"']);
    if !needs_quotes {
        line.push_str(arg);
        return;
    }
    line.push('"');
    // Backslashes are only special right before a quote, so count them and
    // decide how many to write when the next character is known.
    let mut backslashes = 0usize;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                // 2n + 1 backslashes then `"`: n literal backslashes and a literal quote.
                push_backslashes(line, backslashes * 2 + 1);
                line.push('"');
                backslashes = 0;
            }
            _ => {
                push_backslashes(line, backslashes);
                line.push(c);
                backslashes = 0;
            }
        }
    }
    // The closing quote must stay a delimiter: double the backslashes before it.
    push_backslashes(line, backslashes * 2);
    line.push('"');
}

fn push_backslashes(line: &mut String, count: usize) {
    line.extend(std::iter::repeat_n('\\', count));
}

/// Splits a command line the way `CommandLineToArgvW` and the Microsoft C
/// runtime (2008 and later) do. Used by the tests to check that
/// [`command_line`] round-trips on any OS; the Wine tests check the real
/// `CommandLineToArgvW` and a real child process.
#[cfg(test)]
pub fn split(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut args = Vec::new();
    let mut i = 0;
    // argv[0]: up to the next quote if it starts quoted, else to whitespace.
    let mut program = String::new();
    if chars.first() == Some(&'"') {
        i = 1;
        while i < chars.len() && chars[i] != '"' {
            program.push(chars[i]);
            i += 1;
        }
        i += 1;
    } else {
        while i < chars.len() && chars[i] != ' ' && chars[i] != '\t' {
            program.push(chars[i]);
            i += 1;
        }
    }
    args.push(program);
    loop {
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let mut arg = String::new();
        let mut quoted = false;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                let start = i;
                while i < chars.len() && chars[i] == '\\' {
                    i += 1;
                }
                let n = i - start;
                if i < chars.len() && chars[i] == '"' {
                    arg.extend(std::iter::repeat_n('\\', n / 2));
                    if n % 2 == 1 {
                        arg.push('"');
                        i += 1;
                    }
                } else {
                    arg.extend(std::iter::repeat_n('\\', n));
                }
                continue;
            }
            if c == '"' {
                // `""` inside a quoted part is a literal quote (CRT 2008+).
                if quoted && chars.get(i + 1) == Some(&'"') {
                    arg.push('"');
                    i += 2;
                    continue;
                }
                quoted = !quoted;
                i += 1;
                continue;
            }
            if !quoted && (c == ' ' || c == '\t') {
                break;
            }
            arg.push(c);
            i += 1;
        }
        args.push(arg);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        command_line(r"C:\Program Files\App\app.exe", &args).unwrap()
    }

    #[test]
    fn plain_arguments_stay_bare_and_the_program_is_quoted() {
        assert_eq!(
            line(&["--flag", "value"]),
            r#""C:\Program Files\App\app.exe" --flag value"#
        );
    }

    #[test]
    fn tricky_arguments_are_quoted_exactly() {
        let cases: &[(&str, &str)] = &[
            ("", r#""""#),
            ("a b", r#""a b""#),
            ("tab\there", "\"tab\there\""),
            (r#"say "hi""#, r#""say \"hi\"""#),
            (r#"""#, r#""\"""#),
            // Backslashes not before a quote are literal, even when quoted.
            (r"C:\dir\file", r"C:\dir\file"),
            (r"C:\my dir\file", r#""C:\my dir\file""#),
            // A trailing backslash inside quotes must be doubled, else it
            // would escape the closing quote.
            (r"C:\my dir\", r#""C:\my dir\\""#),
            (r"C:\dir\", r"C:\dir\"),
            // Backslashes before a quote: doubled plus one.
            (r#"a\"b"#, r#""a\\\"b""#),
            (r#"a\\"b c"#, r#""a\\\\\"b c""#),
            ("x\ny", "\"x\ny\""),
        ];
        for (arg, want) in cases {
            let got = line(&[arg]);
            let want = format!(r#""C:\Program Files\App\app.exe" {want}"#);
            assert_eq!(got, want, "argument {arg:?}");
        }
    }

    #[test]
    fn every_tricky_argument_round_trips_through_the_splitter() {
        let args: Vec<String> = [
            "",
            " ",
            "a b",
            r#"""#,
            r#""""#,
            r"\",
            r"\\",
            r#"\""#,
            r#"a\\\"b"#,
            r"trailing\",
            r"trailing space\ ",
            r#"he said "C:\x\" ok"#,
            "tab\tand\nnewline",
            "ünïcödé ☎ 😀",
            "%PATH% ^& | < > ( )",
            r"\\server\share\file name.txt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let program = r"C:\Program Files\App\app.exe";
        let line = command_line(program, &args).unwrap();
        let mut want = vec![program.to_string()];
        want.extend(args);
        assert_eq!(split(&line), want, "line {line}");
    }

    #[test]
    fn nul_quotes_in_the_program_and_overlong_lines_are_refused() {
        let program = r"C:\app.exe";
        assert_eq!(
            command_line(program, &["ok".into(), "a\0b".into()]),
            Err(CommandLineError::Nul(2))
        );
        assert_eq!(
            command_line(r#"C:\a"b.exe"#, &[]),
            Err(CommandLineError::QuoteInProgram)
        );
        let long = "x".repeat(MAX_COMMAND_LINE_UNITS);
        assert!(matches!(
            command_line(program, &[long]),
            Err(CommandLineError::TooLong(_))
        ));
        // Just under the limit is fine: `"C:\app.exe" ` is 13 units + NUL.
        let fits = "x".repeat(MAX_COMMAND_LINE_UNITS - 14);
        assert!(command_line(program, &[fits]).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn any_arguments_round_trip(args in proptest::collection::vec(
            "[a-z \\\\\"\t\n']{0,12}", 0..6)) {
            let program = r"C:\Program Files\App\app.exe";
            let line = command_line(program, &args).unwrap();
            let mut want = vec![program.to_string()];
            want.extend(args);
            proptest::prop_assert_eq!(split(&line), want);
        }
    }
}
