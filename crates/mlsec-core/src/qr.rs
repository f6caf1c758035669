//! QR codes for TOTP enrolment: SVG for the console and API, block characters for a terminal.

use qrcodegen::{QrCode, QrCodeEcc};

use crate::error::CoreError;

fn encode(text: &str) -> Result<QrCode, CoreError> {
    QrCode::encode_text(text, QrCodeEcc::Medium)
        .map_err(|e| CoreError::Key(format!("QR code: {e:?}")))
}

pub fn svg(text: &str) -> Result<String, CoreError> {
    let qr = encode(text)?;
    let border = 4;
    let size = qr.size() + 2 * border;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

/// Two modules per character cell (upper and lower half blocks), dark on light.
pub fn terminal(text: &str) -> Result<String, CoreError> {
    let qr = encode(text)?;
    let border = 2;
    let dark =
        |x: i32, y: i32| x >= 0 && y >= 0 && x < qr.size() && y < qr.size() && qr.get_module(x, y);
    let mut out = String::new();
    let mut y = -border;
    while y < qr.size() + border {
        for x in -border..qr.size() + border {
            out.push(match (dark(x, y), dark(x, y + 1)) {
                (false, false) => '█',
                (true, false) => '▄',
                (false, true) => '▀',
                (true, true) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    Ok(out)
}
