//! Image bytes -> the upright 8-bit RGB image transformers' SigLIP processor resizes.
//!
//! The zero-shot pipeline's `load_image` opens the upload with Pillow, applies
//! `ImageOps.exif_transpose` and `convert("RGB")`; `SiglipImageProcessorPil` then calls
//! `convert_to_rgb` again. [`decode_rgb`] reproduces that chain with the `image` crate:
//!
//! 1. the format is sniffed from the bytes (JPEG, PNG, WebP, GIF first frame, BMP);
//! 2. the header's dimensions are checked against [`DecodeLimits`] before any pixel buffer exists;
//! 3. the pixels are converted as Pillow's `convert("RGB")` does: alpha is dropped (never
//!    composited), gray is replicated, palettes are looked up, 16-bit samples keep their high
//!    byte, 16-bit grayscale (Pillow's `I;16`) is clamped to 255;
//! 4. a colour key (PNG `tRNS`, GIF transparent index) turns white, as the processor's
//!    `convert_to_rgb` makes it (see [`transparency`]);
//! 5. the EXIF orientation (or, as Pillow falls back to, the XMP `tiff:Orientation`) is applied.
//!
//! Known differences from Pillow: JPEG and lossy WebP pixels come from other decoders
//! (zune-jpeg / image-webp rather than libjpeg-turbo / libwebp); JPEG differs by a few levels on
//! some pixels. 16-bit BMPs expand 5/6-bit channels with rounding where Pillow truncates (±1).
//! Not read: orientation in a PNG "Raw profile type exif" text chunk or in an eXIf chunk placed
//! after the image data.

mod transparency;

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::metadata::Orientation;
use image::{
    DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits,
    RgbImage,
};

/// Bounds on what an untrusted upload may make the decoder allocate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted `width * height`, checked against the header before decoding.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    /// 40 megapixels: larger than any camera photo in common use, small enough that the decoded
    /// buffer (at most 8 bytes a pixel for 16-bit RGBA) stays around 320 MB.
    fn default() -> Self {
        Self {
            max_pixels: 40_000_000,
        }
    }
}

/// Why an upload could not be turned into an RGB image. Messages are safe to show to clients.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The input has no bytes, or the image has zero width or height.
    #[error("the image is empty")]
    Empty,
    /// The bytes are not one of the accepted formats, or use a feature the decoder lacks.
    #[error("unsupported image: {0}")]
    Unsupported(String),
    /// The header declares more pixels than [`DecodeLimits::max_pixels`].
    #[error("the image is {width}x{height} pixels, more than the {max} pixels accepted")]
    TooManyPixels {
        /// Width declared by the header.
        width: u32,
        /// Height declared by the header.
        height: u32,
        /// The limit that was exceeded.
        max: u64,
    },
    /// The bytes claim a supported format but cannot be decoded.
    #[error("the image data is corrupt: {reason}")]
    Corrupt {
        /// What the decoder reported.
        reason: String,
    },
}

/// Decodes `bytes` into an upright RGB image with Pillow's `exif_transpose` + `convert("RGB")`
/// semantics. Never panics: a panic inside a third-party decoder is reported as
/// [`DecodeError::Corrupt`] (when the crate is built with `panic = "unwind"`).
pub fn decode_rgb(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let format = accepted_format(bytes)?;
    // The decoders are meant never to panic, but they parse hostile data: keep a backstop so a
    // bug in one of them becomes a rejected upload rather than a crashed worker.
    catch_unwind(AssertUnwindSafe(|| decode_accepted(bytes, format, limits))).unwrap_or_else(
        |_| {
            Err(DecodeError::Corrupt {
                reason: "the decoder failed on malformed data".into(),
            })
        },
    )
}

/// Sniffs the format from the magic bytes, as `PIL.Image.open` does, and keeps the five we serve.
fn accepted_format(bytes: &[u8]) -> Result<ImageFormat, DecodeError> {
    match image::guess_format(bytes) {
        Ok(
            format @ (ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Bmp),
        ) => Ok(format),
        Ok(other) => Err(DecodeError::Unsupported(format!(
            "{other:?} images are not accepted; send JPEG, PNG, WebP, GIF or BMP"
        ))),
        Err(_) => Err(DecodeError::Unsupported(
            "the format is not recognised; send JPEG, PNG, WebP, GIF or BMP".into(),
        )),
    }
}

fn decode_accepted(
    bytes: &[u8],
    format: ImageFormat,
    limits: &DecodeLimits,
) -> Result<RgbImage, DecodeError> {
    // Room for the largest decoded layout (16-bit RGBA) plus the decoders' working buffers. The
    // PNG decoder takes this budget at construction, the others through `set_limits` below.
    let mut image_limits = Limits::default();
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(image_limits.clone());
    let mut decoder = reader.into_decoder().map_err(from_image_error)?;

    // Only the header has been read so far: refuse oversized images before any pixel buffer.
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(DecodeError::Empty);
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(DecodeError::TooManyPixels {
            width,
            height,
            max: limits.max_pixels,
        });
    }
    // Strict limits: a decoder may not produce more than the header announced.
    image_limits.max_image_width = Some(width);
    image_limits.max_image_height = Some(height);
    decoder.set_limits(image_limits).map_err(from_image_error)?;

    let orientation = pil_orientation(&mut decoder);
    let png = match format {
        ImageFormat::Png => transparency::png_header(bytes),
        _ => transparency::PngHeader::default(),
    };
    let decoded = DynamicImage::from_decoder(decoder).map_err(from_image_error)?;
    let mut rgb = convert_rgb_like_pil(decoded, png.gray16);
    let mut key = png.key;
    if format == ImageFormat::Gif {
        if let Some(frame) = transparency::gif_first_frame(bytes) {
            transparency::fill_outside(&mut rgb, frame.rect, frame.fill);
            key = frame.key;
        }
    }
    if let Some(key) = key {
        transparency::whiten(&mut rgb, key);
    }
    let mut rgb = DynamicImage::ImageRgb8(rgb);
    rgb.apply_orientation(orientation);
    Ok(rgb.into_rgb8())
}

/// Pillow's `getexif()` orientation: the EXIF tag when present, otherwise the first
/// `tiff:Orientation` in the XMP packet. Unreadable metadata means "no rotation", as in Pillow.
fn pil_orientation(decoder: &mut impl ImageDecoder) -> Orientation {
    let from_exif = decoder
        .exif_metadata()
        .ok()
        .flatten()
        .and_then(|exif| Orientation::from_exif_chunk(&exif));
    from_exif
        .or_else(|| {
            let xmp = decoder.xmp_metadata().ok().flatten()?;
            Orientation::from_exif(xmp_orientation(&xmp)?)
        })
        .unwrap_or(Orientation::NoTransforms)
}

/// The digit after the first `tiff:Orientation="` or `tiff:Orientation>`, like Pillow's regex
/// `tiff:Orientation(="|>)([0-9])`.
fn xmp_orientation(xmp: &[u8]) -> Option<u8> {
    const KEY: &[u8] = b"tiff:Orientation";
    (0..xmp.len()).find_map(|start| {
        let rest = xmp[start..].strip_prefix(KEY)?;
        let rest = rest
            .strip_prefix(b"=\"")
            .or_else(|| rest.strip_prefix(b">"))?;
        rest.first().filter(|d| d.is_ascii_digit()).map(|d| d - b'0')
    })
}

/// Pillow's `convert("RGB")` on what Pillow would have opened.
///
/// 16-bit RGB(A) and gray+alpha: Pillow unpacks the most significant byte. 16-bit grayscale
/// opens as `I;16`, whose conversion to RGB clamps each value to 255 (so most such images turn
/// white). The PNG decoder turns a gray `tRNS` into an alpha channel, hence `png_gray16`.
/// Colour keys are handled afterwards, in [`transparency`].
fn convert_rgb_like_pil(image: DynamicImage, png_gray16: bool) -> RgbImage {
    let (width, height) = (image.width(), image.height());
    let rgb = |pixels: &mut dyn Iterator<Item = [u8; 3]>| {
        let mut data = Vec::with_capacity(width as usize * height as usize * 3);
        pixels.for_each(|p| data.extend_from_slice(&p));
        RgbImage::from_raw(width, height, data).expect("one RGB triple per source pixel")
    };
    let high = |v: u16| (v >> 8) as u8;
    let clamp = |v: u16| v.min(255) as u8;
    let gray16: fn(u16) -> u8 = if png_gray16 { clamp } else { high };
    match image {
        DynamicImage::ImageRgb8(img) => img,
        DynamicImage::ImageRgba8(img) => rgb(&mut img.pixels().map(|p| [p[0], p[1], p[2]])),
        DynamicImage::ImageLuma8(img) => rgb(&mut img.pixels().map(|p| [p[0]; 3])),
        DynamicImage::ImageLumaA8(img) => rgb(&mut img.pixels().map(|p| [p[0]; 3])),
        DynamicImage::ImageRgb16(img) => rgb(&mut img.pixels().map(|p| p.0.map(high))),
        DynamicImage::ImageRgba16(img) => {
            rgb(&mut img.pixels().map(|p| [high(p[0]), high(p[1]), high(p[2])]))
        }
        DynamicImage::ImageLuma16(img) => rgb(&mut img.pixels().map(|p| [clamp(p[0]); 3])),
        DynamicImage::ImageLumaA16(img) => rgb(&mut img.pixels().map(|p| [gray16(p[0]); 3])),
        other => other.into_rgb8(),
    }
}

/// Maps the `image` crate's errors onto the client-facing kinds.
fn from_image_error(error: ImageError) -> DecodeError {
    match error {
        ImageError::Unsupported(e) => DecodeError::Unsupported(e.to_string()),
        ImageError::Limits(e) => DecodeError::Corrupt {
            reason: format!("decoding needs more memory than the header declares ({e})"),
        },
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Corrupt {
                reason: "the data is truncated".into(),
            }
        }
        other => DecodeError::Corrupt {
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgba};

    /// A small image with alpha, encoded in every accepted format by the `image` crate.
    fn samples() -> Vec<(ImageFormat, Vec<u8>)> {
        let rgba = ImageBuffer::from_fn(23, 17, |x, y| Rgba([x as u8 * 11, y as u8 * 15, 99, 200]));
        let formats = [ImageFormat::Png, ImageFormat::Gif, ImageFormat::WebP, ImageFormat::Bmp];
        let mut out: Vec<_> = formats
            .into_iter()
            .map(|format| {
                let mut bytes = Cursor::new(Vec::new());
                DynamicImage::ImageRgba8(rgba.clone()).write_to(&mut bytes, format).unwrap();
                (format, bytes.into_inner())
            })
            .collect();
        let mut jpeg = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(rgba).to_rgb8().write_to(&mut jpeg, ImageFormat::Jpeg).unwrap();
        out.push((ImageFormat::Jpeg, jpeg.into_inner()));
        out
    }

    #[test]
    fn truncated_and_corrupted_inputs_are_errors_not_panics() {
        let limits = DecodeLimits::default();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for (format, bytes) in samples() {
            // Straight into the decoders, without the `catch_unwind` backstop.
            let rgb = decode_accepted(&bytes, format, &limits).unwrap();
            assert_eq!(rgb.dimensions(), (23, 17), "{format:?}");
            for len in 0..bytes.len() {
                let result = decode_accepted(&bytes[..len], format, &limits);
                assert!(result.is_err() || format == ImageFormat::Gif, "{format:?} cut at {len}");
            }
            for _ in 0..300 {
                let mut broken = bytes.clone();
                for _ in 0..4 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let at = 2 + (seed % (broken.len() as u64 - 2)) as usize;
                    broken[at] = (seed >> 32) as u8;
                }
                let _ = decode_rgb(&broken, &limits);
                let _ = decode_accepted(&broken, format, &limits);
            }
        }
    }

    #[test]
    fn empty_and_foreign_inputs_are_refused() {
        let limits = DecodeLimits::default();
        assert_eq!(decode_rgb(b"", &limits), Err(DecodeError::Empty));
        assert!(matches!(decode_rgb(b"hello", &limits), Err(DecodeError::Unsupported(_))));
        let tiff = b"II*\x00\x08\x00\x00\x00";
        assert!(matches!(decode_rgb(tiff, &limits), Err(DecodeError::Unsupported(_))));
        let message = decode_rgb(b"\x89PNG\r\n\x1a\n", &limits).unwrap_err().to_string();
        assert!(message.starts_with("the image data is corrupt"), "{message}");
    }

    #[test]
    fn oversized_headers_are_refused_before_decoding() {
        let limits = DecodeLimits { max_pixels: 1_000_000 };
        // A PNG that declares 100000 x 100000 pixels and holds none.
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend_from_slice(&[0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0, 8, 2, 0, 0, 0]);
        png.extend_from_slice(&[0x4b, 0x7c, 0x5e, 0x8c]);
        let refused = DecodeError::TooManyPixels { width: 100_000, height: 100_000, max: 1_000_000 };
        assert_eq!(decode_rgb(&png, &limits), Err(refused));
        // A GIF whose logical screen is 65535 x 65535.
        let gif = b"GIF89a\xff\xff\xff\xff\x00\x00\x00\x3b";
        assert!(matches!(decode_rgb(gif, &limits), Err(DecodeError::TooManyPixels { .. })));
        let (_, small) = samples().remove(0);
        let tiny = DecodeLimits { max_pixels: 23 * 17 - 1 };
        assert!(matches!(decode_rgb(&small, &tiny), Err(DecodeError::TooManyPixels { .. })));
    }

    #[test]
    fn alpha_is_dropped_not_composited() {
        for (format, bytes) in samples() {
            if matches!(format, ImageFormat::Png | ImageFormat::WebP | ImageFormat::Bmp) {
                let rgb = decode_rgb(&bytes, &DecodeLimits::default()).unwrap();
                assert_eq!(rgb.get_pixel(2, 3).0, [22, 45, 99], "{format:?}");
            }
        }
    }

    #[test]
    fn xmp_orientation_follows_pillows_pattern() {
        assert_eq!(xmp_orientation(b"<x tiff:Orientation=\"6\"/>"), Some(6));
        assert_eq!(xmp_orientation(b"<tiff:Orientation>3</tiff:Orientation>"), Some(3));
        assert_eq!(xmp_orientation(b"tiff:Orientation=\"x\" tiff:Orientation=\"8\""), Some(8));
        assert_eq!(xmp_orientation(b"exif:Orientation=\"6\""), None);
    }
}
