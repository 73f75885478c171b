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
//!    `convert_to_rgb` makes it (the `transparency` submodule) when its `do_convert_rgb` is
//!    on ([`ColourKey`]: SigLIP 1's processor has it on, SigLIP 2's leaves it off);
//! 5. the EXIF orientation (or, as Pillow falls back to, the XMP `tiff:Orientation`) is applied.
//!
//! JPEG goes through libjpeg-turbo's own decoder at Pillow's settings (the `jpeg` submodule,
//! the `libjpeg` feature), bit-identical to Pillow; without the feature, through the `image`
//! crate's zune-jpeg, a few levels off on chroma-subsampled files.
//!
//! Known differences from Pillow: lossy WebP pixels come from image-webp, not libwebp; lossless
//! JPEG (SOF3), which Pillow's libjpeg-turbo 3 decodes, is refused. 16-bit BMPs expand 5/6-bit
//! channels with rounding where Pillow truncates (±1).
//! Not read: orientation in a PNG "Raw profile type exif" text chunk or in an eXIf chunk placed
//! after the image data.

#[cfg(feature = "libjpeg")]
mod jpeg;
mod transparency;

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};

/// Bounds on what an untrusted upload may make the decoder allocate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted `width * height`, checked against the header before decoding.
    pub max_pixels: u64,
    /// Longest accepted side: a 40,000,000x1 image passes the pixel limit but would make the
    /// resize filter tables huge.
    pub max_side: u32,
}

impl Default for DecodeLimits {
    /// 40 megapixels: larger than any camera photo in common use, small enough that the decoded
    /// buffer (at most 8 bytes a pixel for 16-bit RGBA) stays around 320 MB.
    fn default() -> Self {
        Self {
            max_pixels: 40_000_000,
            max_side: 16_384,
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
    #[error("the image is {width}x{height} pixels, more than accepted ({max} pixels at most, and a limit per side)")]
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

/// What happens to a colour key (PNG `tRNS`, GIF transparent index): the image processor's
/// `do_convert_rgb`, whose `convert_to_rgb` paints it white.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColourKey {
    /// Pixels of the key colour turn white (`do_convert_rgb` on: SigLIP 1's processor).
    #[default]
    Whiten,
    /// Pixels keep their colour (`do_convert_rgb` off or unset: SigLIP 2's processors).
    Keep,
}

/// Decodes `bytes` into the upright RGB image that `SiglipImageProcessorPil` goes on to resize
/// (Pillow's `exif_transpose` + `convert("RGB")`, then the processor's colour-key whitening; see
/// the module docs). Never panics: a panic inside a third-party decoder is reported as
/// [`DecodeError::Corrupt`] (when the crate is built with `panic = "unwind"`).
pub fn decode_rgb(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, DecodeError> {
    decode_rgb_with(bytes, limits, ColourKey::Whiten)
}

/// [`decode_rgb`], with the colour key treated as `colour_key` says.
pub fn decode_rgb_with(
    bytes: &[u8],
    limits: &DecodeLimits,
    colour_key: ColourKey,
) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let format = accepted_format(bytes)?;
    // The decoders are meant never to panic, but they parse hostile data: keep a backstop so a
    // bug in one of them becomes a rejected upload rather than a crashed worker.
    catch_unwind(AssertUnwindSafe(|| {
        decode_accepted(bytes, format, limits, colour_key)
    }))
    .unwrap_or_else(|_| {
        Err(DecodeError::Corrupt {
            reason: "the decoder failed on malformed data".into(),
        })
    })
}

/// Bytes that decoding `bytes` holds at its peak, from the header alone: the decoded buffer in
/// the file's own layout plus the RGB image made from it and its upright copy. For callers that
/// budget memory across decodes; the header's limits are checked as [`decode_rgb`] checks them.
pub fn decoding_cost(bytes: &[u8], limits: &DecodeLimits) -> Result<u64, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let format = accepted_format(bytes)?;
    #[cfg(feature = "libjpeg")]
    if format == ImageFormat::Jpeg {
        return jpeg::decoding_cost(bytes, limits);
    }
    catch_unwind(AssertUnwindSafe(|| {
        let decoder = ImageReader::with_format(Cursor::new(bytes), format)
            .into_decoder()
            .map_err(from_image_error)?;
        let (width, height) = decoder.dimensions();
        check_dimensions(width, height, limits)?;
        let pixels = u64::from(width) * u64::from(height);
        Ok(pixels * (u64::from(decoder.color_type().bytes_per_pixel()) + 6))
    }))
    .unwrap_or_else(|_| {
        Err(DecodeError::Corrupt {
            reason: "the decoder failed on malformed data".into(),
        })
    })
}

/// Refuses an empty image, or one over the pixel or side limit.
fn check_dimensions(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::Empty);
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels
        || width.max(height) > limits.max_side
    {
        return Err(DecodeError::TooManyPixels {
            width,
            height,
            max: limits.max_pixels,
        });
    }
    Ok(())
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
    colour_key: ColourKey,
) -> Result<RgbImage, DecodeError> {
    #[cfg(feature = "libjpeg")]
    if format == ImageFormat::Jpeg {
        return jpeg::decode_jpeg(bytes, limits).map(jpeg::DecodedJpeg::into_upright);
    }
    // Room for the largest decoded layout (16-bit RGBA) plus the decoders' working buffers. The
    // PNG decoder takes this budget at construction, the others through `set_limits` below.
    let mut image_limits = Limits::default();
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(image_limits.clone());
    let mut decoder = reader.into_decoder().map_err(from_image_error)?;

    // Only the header has been read so far: refuse oversized images before any pixel buffer.
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
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
    if let (Some(key), ColourKey::Whiten) = (key, colour_key) {
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
pub(crate) fn xmp_orientation(xmp: &[u8]) -> Option<u8> {
    const KEY: &[u8] = b"tiff:Orientation";
    (0..xmp.len()).find_map(|start| {
        let rest = xmp[start..].strip_prefix(KEY)?;
        let rest = rest
            .strip_prefix(b"=\"")
            .or_else(|| rest.strip_prefix(b">"))?;
        rest.first()
            .filter(|d| d.is_ascii_digit())
            .map(|d| d - b'0')
    })
}

/// Pillow's `convert("RGB")` on what Pillow would have opened.
///
/// 16-bit RGB(A) and gray+alpha: Pillow unpacks the most significant byte. 16-bit grayscale
/// opens as `I;16`, whose conversion to RGB clamps each value to 255 (so most such images turn
/// white). The PNG decoder turns a gray `tRNS` into an alpha channel, hence `png_gray16`.
/// Colour keys are handled afterwards, in the `transparency` submodule.
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
mod tests;
