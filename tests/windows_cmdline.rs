//! The Windows command-line quoting (src/platform/windows/cmdline.rs) is pure
//! string code; this target compiles that file on every OS so its unit tests
//! (round trips through the Microsoft splitting rules) run on Linux CI too.
//! On Windows the library's own unit tests run them, and
//! tests/platform_windows.rs checks the real `CommandLineToArgvW` and a real
//! child process under Wine.

#![cfg(not(windows))]

#[allow(dead_code)] // the library uses `command_line`; here only its tests run
#[path = "../src/platform/windows/cmdline.rs"]
mod cmdline;
