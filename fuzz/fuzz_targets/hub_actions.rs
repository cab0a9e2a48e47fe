//! The hub's parser and dispatcher, structure-aware: an `Arbitrary` script of
//! protocol actions with arbitrary fields, mangled actions and raw frames,
//! sent by three sessions (fuzz/src/actions.rs builds the frames,
//! `wsconnector::fuzzing::HubHarness` checks every reply).
#![no_main]

#[path = "../src/actions.rs"]
mod actions;

libfuzzer_sys::fuzz_target!(|data: &[u8]| actions::run(data));
