//! The pickup dialog as a small always-on-top X11 window, for sessions whose
//! notification service cannot show buttons (or has none): the caller text,
//! and one button. A click on the button is `PickedUp`; closing the window
//! (the window manager's close, `WM_DELETE_WINDOW`) is `Dismissed`; after
//! the timeout it closes itself with `TimedOut`. Text is drawn with the core
//! `fixed` font, so only ASCII is shown as is.

use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, PropMode, Rectangle,
    WindowClass,
};
use x11rb::protocol::Event;
use x11rb::wrapper::ConnectionExt as _;

use super::x11::{atom, connect_screen, failed};
use crate::platform::{ActionError, PickupDialog, PickupOutcome};

const WIDTH: u16 = 380;
const HEIGHT: u16 = 110;
/// The button: x, y, width, height inside the window.
const BUTTON: (i16, i16, u16, u16) = (120, 58, 140, 34);
/// How often the window looks for events while it waits (it also has a deadline).
const POLL: Duration = Duration::from_millis(25);
/// Longest text drawn on one line, in characters.
const MAX_LINE: usize = 56;

fn x_err(e: impl std::fmt::Display) -> ActionError {
    failed("X request failed", e)
}

/// ASCII only (the core font), cut to one line.
fn line(text: &str) -> Vec<u8> {
    text.chars()
        .take(MAX_LINE)
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c as u8
            } else {
                b'?'
            }
        })
        .collect()
}

/// True when (x, y) is inside the button.
pub(crate) fn on_button(x: i16, y: i16) -> bool {
    let (bx, by, bw, bh) = BUTTON;
    x >= bx
        && y >= by
        && i32::from(x) < i32::from(bx) + i32::from(bw)
        && i32::from(y) < i32::from(by) + i32::from(bh)
}

/// Shows the window and blocks until it ends.
pub(super) fn pickup(dialog: &PickupDialog) -> Result<PickupOutcome, ActionError> {
    let (conn, screen_num) = connect_screen()?;
    let screen = conn
        .setup()
        .roots
        .get(screen_num)
        .cloned()
        .ok_or_else(|| ActionError::Failed("the X display has no such screen".into()))?;
    let win = conn.generate_id().map_err(x_err)?;
    let x = i16::try_from(screen.width_in_pixels.saturating_sub(WIDTH) / 2).unwrap_or(0);
    let y = i16::try_from(screen.height_in_pixels.saturating_sub(HEIGHT) / 3).unwrap_or(0);
    conn.create_window(
        x11rb::COPY_DEPTH_FROM_PARENT,
        win,
        screen.root,
        x,
        y,
        WIDTH,
        HEIGHT,
        1,
        WindowClass::INPUT_OUTPUT,
        x11rb::COPY_FROM_PARENT,
        &CreateWindowAux::new()
            .background_pixel(screen.white_pixel)
            .border_pixel(screen.black_pixel)
            .event_mask(
                EventMask::EXPOSURE | EventMask::BUTTON_PRESS | EventMask::STRUCTURE_NOTIFY,
            ),
    )
    .map_err(x_err)?;
    let utf8 = atom(&conn, "UTF8_STRING")?;
    let wm_protocols = atom(&conn, "WM_PROTOCOLS")?;
    let wm_delete = atom(&conn, "WM_DELETE_WINDOW")?;
    let title = dialog.title.as_bytes();
    conn.change_property8(
        PropMode::REPLACE,
        win,
        atom(&conn, "_NET_WM_NAME")?,
        utf8,
        title,
    )
    .map_err(x_err)?;
    conn.change_property8(
        PropMode::REPLACE,
        win,
        AtomEnum::WM_NAME,
        AtomEnum::STRING,
        &line(&dialog.title),
    )
    .map_err(x_err)?;
    conn.change_property32(
        PropMode::REPLACE,
        win,
        wm_protocols,
        AtomEnum::ATOM,
        &[wm_delete],
    )
    .map_err(x_err)?;
    // Above other windows, and a dialog for the window manager.
    let above = atom(&conn, "_NET_WM_STATE_ABOVE")?;
    conn.change_property32(
        PropMode::REPLACE,
        win,
        atom(&conn, "_NET_WM_STATE")?,
        AtomEnum::ATOM,
        &[above],
    )
    .map_err(x_err)?;
    let dialog_type = atom(&conn, "_NET_WM_WINDOW_TYPE_DIALOG")?;
    conn.change_property32(
        PropMode::REPLACE,
        win,
        atom(&conn, "_NET_WM_WINDOW_TYPE")?,
        AtomEnum::ATOM,
        &[dialog_type],
    )
    .map_err(x_err)?;
    let font = conn.generate_id().map_err(x_err)?;
    conn.open_font(font, b"fixed").map_err(x_err)?;
    let gc = conn.generate_id().map_err(x_err)?;
    conn.create_gc(
        gc,
        win,
        &CreateGCAux::new()
            .foreground(screen.black_pixel)
            .background(screen.white_pixel)
            .font(font),
    )
    .map_err(x_err)?;
    conn.map_window(win).map_err(x_err)?;
    conn.flush().map_err(x_err)?;

    let draw = || -> Result<(), ActionError> {
        conn.image_text8(win, gc, 16, 30, &line(&dialog.title))
            .map_err(x_err)?;
        let (bx, by, bw, bh) = BUTTON;
        conn.poly_rectangle(
            win,
            gc,
            &[Rectangle {
                x: bx,
                y: by,
                width: bw,
                height: bh,
            }],
        )
        .map_err(x_err)?;
        let label = line(&dialog.button_text);
        // The fixed font is 6 pixels wide.
        let text_w = i16::try_from(label.len() * 6).unwrap_or(0);
        conn.image_text8(
            win,
            gc,
            bx + (i16::try_from(bw).unwrap_or(0) - text_w) / 2,
            by + 21,
            &label,
        )
        .map_err(x_err)?;
        conn.flush().map_err(x_err)
    };

    let deadline = Instant::now() + dialog.timeout;
    let outcome = 'wait: loop {
        while let Some(event) = conn.poll_for_event().map_err(x_err)? {
            match event {
                Event::Expose(e) if e.count == 0 => draw()?,
                Event::ButtonPress(e) if on_button(e.event_x, e.event_y) => {
                    break 'wait PickupOutcome::PickedUp
                }
                Event::ClientMessage(e)
                    if e.type_ == wm_protocols && e.data.as_data32()[0] == wm_delete =>
                {
                    break 'wait PickupOutcome::Dismissed
                }
                Event::DestroyNotify(_) => break 'wait PickupOutcome::Dismissed,
                _ => {}
            }
        }
        if Instant::now() >= deadline {
            break PickupOutcome::TimedOut;
        }
        std::thread::sleep(POLL);
    };
    let _ = conn.destroy_window(win);
    let _ = conn.free_gc(gc);
    let _ = conn.close_font(font);
    let _ = conn.flush();
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_hit_test_and_text_lines() {
        assert!(on_button(120, 58));
        assert!(on_button(259, 91));
        assert!(!on_button(260, 58));
        assert!(!on_button(119, 60));
        assert_eq!(line("Call from Zoë\n"), b"Call from Zo??".to_vec());
        assert_eq!(line(&"x".repeat(100)).len(), MAX_LINE);
    }
}
