//! The configuration parser (`config::parse_str`) on arbitrary text; the
//! corpus seeds are valid config.xml files, so mutations explore XML close
//! to real configurations.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsconnector::fuzzing::config_text(data));
