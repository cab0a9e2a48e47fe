//! Windows by title on X11, through the window manager (EWMH): the managed
//! windows come from `_NET_CLIENT_LIST`, titles from `_NET_WM_NAME` (UTF-8)
//! or `WM_NAME`; focus is a `_NET_ACTIVE_WINDOW` request, size and position
//! a `_NET_MOVERESIZE_WINDOW` request, closing a `_NET_CLOSE_WINDOW`
//! request. Asking the window manager (instead of configuring the window
//! directly) is what EWMH prescribes for pagers and keeps the WM's focus
//! stealing rules in charge. Wayland has no such protocol for other clients'
//! windows: there the answer is `NotSupported`.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt as _, EventMask, Window,
};
use x11rb::rust_connection::RustConnection;

use crate::platform::{ActionError, WindowRequest};

/// EWMH source indication: "pager", the kind of tool that acts for the user.
const SOURCE_PAGER: u32 = 2;
/// `_NET_MOVERESIZE_WINDOW` flag bits for x, y, width, height.
const MOVE_X: u32 = 1 << 8;
const MOVE_Y: u32 = 1 << 9;
const SIZE_W: u32 = 1 << 10;
const SIZE_H: u32 = 1 << 11;
/// Longest title read from a window, in bytes.
const MAX_TITLE: u32 = 4096;

pub(super) fn failed(what: &str, e: impl std::fmt::Display) -> ActionError {
    ActionError::Failed(format!("{what}: {e}"))
}

/// The X display and its default screen's number, or why there is none.
pub(super) fn connect_screen() -> Result<(RustConnection, usize), ActionError> {
    let display = std::env::var_os("DISPLAY").filter(|d| !d.is_empty());
    if display.is_none() {
        let wayland = std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty());
        return Err(ActionError::NotSupported(if wayland {
            "windows of other programs (focus, resize, the pickup window) need X11; this is a Wayland session without X \
             (Wayland lets no program move or focus another program's windows)"
                .into()
        } else {
            "no X display (DISPLAY is not set)".into()
        }));
    }
    x11rb::connect(None).map_err(|e| failed("cannot connect to the X display", e))
}

/// The X display and its root window, or why there is none.
fn connect() -> Result<(RustConnection, Window), ActionError> {
    let (conn, screen) = connect_screen()?;
    let root = conn
        .setup()
        .roots
        .get(screen)
        .map(|s| s.root)
        .ok_or_else(|| ActionError::Failed("the X display has no such screen".into()))?;
    Ok((conn, root))
}

struct Atoms {
    client_list: u32,
    wm_name: u32,
    utf8: u32,
    active: u32,
    moveresize: u32,
    close: u32,
}

pub(super) fn atom(conn: &RustConnection, name: &str) -> Result<u32, ActionError> {
    conn.intern_atom(false, name.as_bytes())
        .map_err(|e| failed("X request failed", e))?
        .reply()
        .map(|r| r.atom)
        .map_err(|e| failed("X request failed", e))
}

fn atoms(conn: &RustConnection) -> Result<Atoms, ActionError> {
    Ok(Atoms {
        client_list: atom(conn, "_NET_CLIENT_LIST")?,
        wm_name: atom(conn, "_NET_WM_NAME")?,
        utf8: atom(conn, "UTF8_STRING")?,
        active: atom(conn, "_NET_ACTIVE_WINDOW")?,
        moveresize: atom(conn, "_NET_MOVERESIZE_WINDOW")?,
        close: atom(conn, "_NET_CLOSE_WINDOW")?,
    })
}

fn title_of(conn: &RustConnection, a: &Atoms, w: Window) -> Option<String> {
    let read = |prop: u32, kind: u32| {
        conn.get_property(false, w, prop, kind, 0, MAX_TITLE / 4)
            .ok()?
            .reply()
            .ok()
            .filter(|r| !r.value.is_empty())
            .map(|r| String::from_utf8_lossy(&r.value).into_owned())
    };
    read(a.wm_name, a.utf8).or_else(|| read(AtomEnum::WM_NAME.into(), AtomEnum::ANY.into()))
}

/// The managed window whose title equals `title`, else the first whose title
/// contains it (in the window manager's list order).
fn find(
    conn: &RustConnection,
    root: Window,
    a: &Atoms,
    title: &str,
) -> Result<Window, ActionError> {
    let list = conn
        .get_property(
            false,
            root,
            a.client_list,
            AtomEnum::WINDOW,
            0,
            u32::MAX / 4,
        )
        .map_err(|e| failed("X request failed", e))?
        .reply()
        .map_err(|e| failed("X request failed", e))?;
    let Some(windows) = list.value32() else {
        return Err(ActionError::NotSupported(
            "the window manager does not publish _NET_CLIENT_LIST (no EWMH window manager running)"
                .into(),
        ));
    };
    let titled: Vec<(Window, String)> = windows
        .filter_map(|w| title_of(conn, a, w).map(|t| (w, t)))
        .collect();
    titled
        .iter()
        .find(|(_, t)| t == title)
        .or_else(|| titled.iter().find(|(_, t)| t.contains(title)))
        .map(|(w, _)| *w)
        .ok_or_else(|| ActionError::NotFound(format!("no window titled {title:?}")))
}

fn send(
    conn: &RustConnection,
    root: Window,
    window: Window,
    kind: u32,
    data: [u32; 5],
) -> Result<(), ActionError> {
    let event = ClientMessageEvent::new(32, window, kind, data);
    conn.send_event(
        false,
        root,
        EventMask::SUBSTRUCTURE_REDIRECT | EventMask::SUBSTRUCTURE_NOTIFY,
        event,
    )
    .map_err(|e| failed("X request failed", e))?;
    Ok(())
}

/// Waits until the server has processed everything sent (and reports an error if it failed).
fn sync(conn: &RustConnection) -> Result<(), ActionError> {
    conn.get_input_focus()
        .map_err(|e| failed("X request failed", e))?
        .reply()
        .map_err(|e| failed("X request failed", e))?;
    Ok(())
}

/// The data of a `_NET_MOVERESIZE_WINDOW` request, or `None` when both sizes
/// are zero (the legacy "keep the original size"). A resized window goes to
/// the legacy position: `x` from the left, at the top.
pub(super) fn moveresize_data(request: &WindowRequest) -> Option<[u32; 5]> {
    if request.width == 0 && request.height == 0 {
        return None;
    }
    let mut flags = MOVE_X | MOVE_Y | (SOURCE_PAGER << 12);
    if request.width > 0 {
        flags |= SIZE_W;
    }
    if request.height > 0 {
        flags |= SIZE_H;
    }
    // The protocol carries x as a 32-bit value; a negative x is passed through as two's complement.
    let x = u32::from_ne_bytes(request.x.to_ne_bytes());
    Some([flags, x, 0, request.width, request.height])
}

/// `setSizeWindow`: find, resize (unless both sizes are zero), focus.
pub(super) fn window(request: &WindowRequest) -> Result<(), ActionError> {
    let (conn, root) = connect()?;
    let a = atoms(&conn)?;
    let w = find(&conn, root, &a, &request.title)?;
    if let Some(data) = moveresize_data(request) {
        send(&conn, root, w, a.moveresize, data)?;
    }
    if request.focus {
        // Timestamp 0 (CurrentTime): we have no user event to point at.
        send(&conn, root, w, a.active, [SOURCE_PAGER, 0, 0, 0, 0])?;
    }
    conn.flush().map_err(|e| failed("X request failed", e))?;
    sync(&conn)
}

/// Ask the window titled `title` to close (the WM sends it `WM_DELETE_WINDOW`).
pub(super) fn close(title: &str) -> Result<(), ActionError> {
    let (conn, root) = connect()?;
    let a = atoms(&conn)?;
    let w = find(&conn, root, &a, title)?;
    send(&conn, root, w, a.close, [0, SOURCE_PAGER, 0, 0, 0])?;
    conn.flush().map_err(|e| failed("X request failed", e))?;
    sync(&conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(x: i32, width: u32, height: u32) -> WindowRequest {
        WindowRequest {
            title: "t".into(),
            x,
            width,
            height,
            focus: true,
        }
    }

    #[test]
    fn zero_sizes_keep_the_window_as_it_is() {
        assert_eq!(moveresize_data(&req(10, 0, 0)), None);
    }

    #[test]
    fn a_resize_moves_to_the_legacy_position_and_sets_only_given_sizes() {
        let d = moveresize_data(&req(10, 800, 600)).unwrap();
        assert_eq!(d[0], MOVE_X | MOVE_Y | SIZE_W | SIZE_H | (2 << 12));
        assert_eq!(&d[1..], &[10, 0, 800, 600]);
        let d = moveresize_data(&req(0, 800, 0)).unwrap();
        assert_eq!(d[0] & (SIZE_W | SIZE_H), SIZE_W);
    }
}
