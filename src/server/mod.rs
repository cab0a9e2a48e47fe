//! The network side: listeners, handshake guard, HTTP routes and websocket
//! connection tasks.

pub mod shutdown;
