//! The handshake guard (`server::guard::check`) on arbitrary header sets:
//! `Name: value` lines (Host and Origin values, duplicates, unreadable bytes)
//! and `@peer` directives; see `wsconnector::fuzzing::guard_headers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsconnector::fuzzing::guard_headers(data));
