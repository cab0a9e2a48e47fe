//! The hub's parser and dispatcher on text: one frame per line, optionally
//! prefixed with the sending session's digit (seeded with the JSON examples
//! of docs/protocol.md, so mutations stay close to real requests).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsconnector::fuzzing::hub_frames(data));
