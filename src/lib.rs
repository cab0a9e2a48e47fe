//! wsconnector: a loopback websocket daemon that lets CRM pages, desktop
//! applications and the contact-center toolbar on one PC share context.
//!
//! Data flows one way (DESIGN.md §3):
//!
//! ```text
//! server::listen   binds 127.0.0.1 and [::1] (never a wildcard)
//!   -> tls         optional WSS (PEM or PKCS#12; plain HTTP gets /health only)
//!   -> server::guard   Host, Origin, peer OS user (peer)  -> HTTP 4xx on refusal
//!   -> server::http    /health, CORS, websocket upgrade, embedded files (server::assets: demo, connector.js)
//!   -> server::connection  frames <-> text, ping/pong, bounded outbox
//!   -> hub         sessions and request dispatch (protocol)
//!        -> store  environments, subscriptions, events, replay
//!        -> hub::desktop -> platform   desktop actions, checked under the
//!                                      hub's lock, run outside it
//! ```
//!
//! `inspector` serves the local user's inspector page (`/inspector`) and
//! records the message trace while one is open; `cti` is the toolbar event
//! and request catalogue its simulator and `wsconnector simulate` share.
//!
//! `config` turns `config.xml` and flags into one validated `Config` before
//! anything runs; `reload` re-reads it live (file watcher, SIGHUP, tray);
//! `logging` sets up tracing; `cli` holds the clap types.
//!
//! The agent around the daemon: `agent` runs it (single-instance lock from
//! `instance`, the Tokio runtime, the `tray` icon on the main thread), and
//! `autostart` installs it to start at logon.
//! `xml` reads and writes the v1 XML form of the context; `ctl` is the
//! scripting client (`wsconnector ctl`) that talks to a running daemon.

// Safe Rust everywhere; on Windows the Win32 calls of src/platform/windows.rs
// need `unsafe`, which that module alone allows (deny, unlike forbid, lets
// one module opt in).
#![cfg_attr(not(windows), forbid(unsafe_code))]
#![cfg_attr(windows, deny(unsafe_code))]

pub mod agent;
pub mod app;
pub mod autostart;
pub mod browser_policy;
pub mod cli;
pub mod config;
pub mod cti;
pub mod ctl;
pub mod ctl_simulate;
#[doc(hidden)]
pub mod fuzzing;
pub mod hub;
pub mod inspector;
pub mod instance;
pub mod logging;
pub mod peer;
pub mod platform;
pub mod protocol;
pub mod reload;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;
pub mod tray;
pub mod xml;

/// Product version, as `getVersion` and the hello report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
