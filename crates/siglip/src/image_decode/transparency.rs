//! Colour-key transparency, the one thing transformers changes before resizing.
//!
//! `load_image` converts to RGB, which drops an alpha channel but keeps Pillow's
//! `info["transparency"]` colour key (PNG `tRNS`, GIF transparent index). The processor's
//! `convert_to_rgb` then sees that key, converts to RGBA (pixels of exactly the key colour become
//! transparent) and composites onto white: every pixel of the key colour turns white. The key
//! is what Pillow computes, including its quirks (16-bit and integer keys compared on the low
//! byte, `(k, 0, 0)` for 1-bit and 16-bit grayscale). These readers only look at headers, never
//! trust them for sizes, and never panic.

use image::{Rgb, RgbImage};

/// What the PNG header says that the pixels alone do not.
#[derive(Debug, Default, PartialEq)]
pub(super) struct PngHeader {
    /// 16-bit grayscale, which Pillow opens as `I;16` (so RGB is the value clamped to 255).
    pub gray16: bool,
    /// The colour that transformers turns white, if any.
    pub key: Option<[u8; 3]>,
}

/// Reads IHDR, PLTE and tRNS (the chunks before the image data).
pub(super) fn png_header(bytes: &[u8]) -> PngHeader {
    let (mut depth, mut color_type, mut palette, mut trns) = (0, 0, &[][..], None);
    let mut pos = 8;
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(data) = bytes.get(pos + 8..).and_then(|rest| rest.get(..len)) else {
            break;
        };
        match &head[4..8] {
            b"IHDR" if len >= 10 => (depth, color_type) = (data[8], data[9]),
            b"PLTE" => palette = data,
            b"tRNS" => trns = Some(data),
            b"IDAT" | b"IEND" => break,
            _ => {}
        }
        pos += 12 + len;
    }
    let gray16 = depth == 16 && color_type == 0;
    let key = trns.and_then(|t| png_key(depth, color_type, palette, t));
    PngHeader { gray16, key }
}

/// The key colour Pillow derives from a tRNS chunk (`PngImagePlugin.chunk_tRNS`, then
/// `Image.convert("RGB")`, then `convert_transparent`, which compares low bytes).
fn png_key(depth: u8, color_type: u8, palette: &[u8], trns: &[u8]) -> Option<[u8; 3]> {
    let sample = |i: usize| {
        trns.get(2 * i..2 * i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    match color_type {
        // Palette: only a "simple" tRNS (one 0x00 entry, all others 0xff) is a colour key;
        // Pillow's `^\xff*\x00\xff*$` also accepts one trailing newline.
        3 => {
            let body = trns.strip_suffix(b"\n").unwrap_or(trns);
            let index = body.iter().position(|&a| a == 0)?;
            let simple = body
                .iter()
                .enumerate()
                .all(|(i, &a)| a == 0xff || i == index);
            let color = palette.get(3 * index..3 * index + 3).unwrap_or(&[0; 3]);
            simple.then(|| [color[0], color[1], color[2]])
        }
        0 => {
            let value = sample(0)?;
            Some(match depth {
                1 => [if value != 0 { 255 } else { 0 }, 0, 0],
                16 => [value as u8, 0, 0],
                _ => [value.min(255) as u8; 3],
            })
        }
        2 => Some([sample(0)? as u8, sample(1)? as u8, sample(2)? as u8]),
        _ => None,
    }
}

/// Pillow's view of a GIF's first frame that the `image` crate does not give.
#[derive(Debug, PartialEq)]
pub(super) struct GifFirstFrame {
    /// Left, top, width and height of the first frame on the logical screen.
    pub rect: [u32; 4],
    /// Colour of the screen outside the frame: the transparent index's, else index 0's.
    pub fill: [u8; 3],
    /// The transparent index's colour, which transformers turns white.
    pub key: Option<[u8; 3]>,
}

/// Walks the blocks before the first image descriptor. `None` if the structure is unexpected.
pub(super) fn gif_first_frame(bytes: &[u8]) -> Option<GifFirstFrame> {
    let flags = *bytes.get(10)?;
    let table_len = |flags: u8| {
        if flags & 0x80 != 0 {
            3 << ((flags & 7) + 1)
        } else {
            0
        }
    };
    let global = bytes.get(13..13 + table_len(flags))?;
    let mut pos = 13 + global.len();
    let mut transparent = None;
    loop {
        match *bytes.get(pos)? {
            0x21 => {
                let label = *bytes.get(pos + 1)?;
                pos += 2;
                if label == 0xf9 && *bytes.get(pos)? >= 4 {
                    // Like Pillow, a later control block without the flag keeps the index.
                    let block = bytes.get(pos + 1..pos + 5)?;
                    if block[0] & 1 != 0 {
                        transparent = Some(block[3]);
                    }
                }
                while *bytes.get(pos)? != 0 {
                    pos += 1 + usize::from(bytes[pos]);
                }
                pos += 1;
            }
            0x2c => {
                let d = bytes.get(pos + 1..pos + 10)?;
                let field = |i: usize| u32::from(u16::from_le_bytes([d[i], d[i + 1]]));
                let rect = [field(0), field(2), field(4), field(6)];
                let local = bytes.get(pos + 10..pos + 10 + table_len(d[8]))?;
                let palette = if local.is_empty() { global } else { local };
                let color = |i: u8| {
                    let c = palette.get(3 * usize::from(i)..3 * usize::from(i) + 3);
                    c.map_or([0; 3], |c| [c[0], c[1], c[2]])
                };
                let fill = color(transparent.unwrap_or(0));
                return Some(GifFirstFrame {
                    rect,
                    fill,
                    key: transparent.map(color),
                });
            }
            _ => return None,
        }
    }
}

/// Paints `fill` outside `rect`, where the `image` crate leaves transparent black.
pub(super) fn fill_outside(rgb: &mut RgbImage, rect: [u32; 4], fill: [u8; 3]) {
    let [left, top, width, height] = rect.map(u64::from);
    for (x, y, pixel) in rgb.enumerate_pixels_mut() {
        let (x, y) = (u64::from(x), u64::from(y));
        if x < left || y < top || x >= left + width || y >= top + height {
            *pixel = Rgb(fill);
        }
    }
}

/// transformers' `convert_to_rgb` on an image with a colour key: key-coloured pixels turn white.
pub(super) fn whiten(rgb: &mut RgbImage, key: [u8; 3]) {
    for pixel in rgb.pixels_mut().filter(|p| p.0 == key) {
        *pixel = Rgb([255; 3]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_pillows_rules() {
        let palette = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(png_key(8, 3, &palette, b"\xff\x00"), Some([4, 5, 6]));
        assert_eq!(png_key(8, 3, &palette, b"\xff\x00\n"), Some([4, 5, 6]));
        assert_eq!(png_key(8, 3, &palette, b"\x00\x00"), None);
        assert_eq!(png_key(8, 3, &palette, b"\x80\xff"), None);
        assert_eq!(
            png_key(8, 3, &palette, b"\xff\xff\xff\xff\x00"),
            Some([0, 0, 0])
        );
        assert_eq!(png_key(8, 0, &[], b"\x01\x2c"), Some([255; 3]));
        assert_eq!(png_key(1, 0, &[], b"\x00\x01"), Some([255, 0, 0]));
        assert_eq!(png_key(16, 0, &[], b"\x02\x05"), Some([5, 0, 0]));
        assert_eq!(
            png_key(16, 2, &[], b"\x0a\x05\x14\x00\x1e\x00"),
            Some([5, 0, 0])
        );
        assert_eq!(png_key(8, 2, &[], b"\x00\x05"), None);
    }

    #[test]
    fn gif_first_frame_reads_the_control_block_and_descriptor() {
        let mut gif = b"GIF89a\x0c\x00\x09\x00\x80\x00\x00".to_vec();
        gif.extend_from_slice(&[10, 20, 30, 40, 50, 60]);
        gif.extend_from_slice(b"\x21\xf9\x04\x01\x00\x00\x01\x00");
        gif.extend_from_slice(b"\x2c\x02\x00\x03\x00\x07\x00\x05\x00\x00");
        let frame = gif_first_frame(&gif).unwrap();
        assert_eq!(
            frame,
            GifFirstFrame {
                rect: [2, 3, 7, 5],
                fill: [40, 50, 60],
                key: Some([40, 50, 60])
            }
        );
        assert_eq!(gif_first_frame(&gif[..20]), None);
    }
}
