//! JPEG bytes -> the RGB pixels Pillow 13 produces (`Image.open`, `convert("RGB")`), bit for bit
//! (the `libjpeg` feature; without it JPEG goes through the `image` crate like the other formats).
//!
//! Pillow decodes JPEG with libjpeg-turbo at libjpeg's defaults: accurate integer IDCT
//! (`JDCT_ISLOW`), fancy (triangle-filter) chroma upsampling, block smoothing, no scaling (no
//! `draft` on this path). This module uses the same code: the `mozjpeg` crate's vendored
//! libjpeg-turbo fork, whose decoder is libjpeg-turbo's, at those same defaults (nothing here
//! changes them), with arithmetic decoding compiled in (`mozjpeg-sys/arith_dec`).
//!
//! What Pillow does around libjpeg, reproduced here:
//! - mode by component count (`JpegImagePlugin.SOF`): 1 -> `L`, 3 -> `RGB`, 4 -> `CMYK`, anything
//!   else, or a sample precision other than 8 bits, is refused;
//! - `L`: libjpeg outputs grayscale, `convert("RGB")` replicates it;
//! - `RGB`: libjpeg's own colour-space guess (JFIF/YCbCr, Adobe transform 0 = RGB, ...) to RGB;
//! - `CMYK`: libjpeg outputs CMYK (converting YCCK itself when the Adobe marker says transform 2),
//!   Pillow always reads it as Adobe-inverted (`CMYK;I`), then `convert("RGB")` is `cmyk2rgb`
//!   of `libImaging/Convert.c` (see [`cmyk_to_rgb`]);
//! - libjpeg warnings are ignored (corrupt entropy data decodes as libjpeg recovers it), but
//!   running out of bytes before the last scanline is an error ("image file is truncated": Pillow
//!   only pads with grey under `LOAD_TRUNCATED_IMAGES`); running out later, in
//!   `jpeg_finish_decompress`, is not;
//! - EXIF: the `Exif\0\0` APP1 payload (Pillow appends later Exif APP1 segments to the first);
//!   XMP: the last `http://ns.adobe.com/xap/1.0/` APP1 packet, for the `tiff:Orientation` fallback.
//!
//! The header is read, and its size checked against the limits, before libjpeg allocates
//! anything proportional to the image (`jpeg_start_decompress` allocates the row buffers and,
//! for progressive files, the whole coefficient array) and before the output buffer exists.
//! libjpeg's fatal errors reach Rust as unwinding panics (`mozjpeg`'s error manager calls
//! `resume_unwind`, the C code is built with `-fexceptions`); they are caught here, so this needs
//! `panic = "unwind"` (the default).
//!
//! Known difference: libjpeg-turbo 3.x (Pillow 13 bundles 3.2) also decodes lossless JPEG
//! (SOF3); the `mozjpeg` fork (libjpeg-turbo 2.x API) refuses it as unsupported.

use std::cell::Cell;
use std::io::{self, BufRead, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};
use mozjpeg::{ColorSpace, Decompress, Marker};

use super::{xmp_orientation, DecodeError, DecodeLimits};

fn corrupt(reason: impl Into<String>) -> DecodeError {
    DecodeError::Corrupt {
        reason: reason.into(),
    }
}

fn truncated() -> DecodeError {
    corrupt("the data is truncated")
}

/// The colour model of the file, as Pillow opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JpegKind {
    /// One component (Pillow mode `L`).
    Gray,
    /// Three components (Pillow mode `RGB`): YCbCr, or RGB when the file says so.
    Color,
    /// Four components (Pillow mode `CMYK`), stored as CMYK.
    Cmyk,
    /// Four components stored as YCCK (Adobe transform 2).
    Ycck,
}

/// A decoded JPEG, in stored orientation, with the metadata needed to make it upright.
#[derive(Debug, Clone)]
pub(super) struct DecodedJpeg {
    /// `convert("RGB")` of the stored pixels (not yet rotated).
    pub image: RgbImage,
    /// The EXIF payload (TIFF header onwards) of the `Exif\0\0` APP1 segment(s), if any.
    pub exif: Option<Vec<u8>>,
    /// The last XMP packet (after `http://ns.adobe.com/xap/1.0/\0`), if any.
    pub xmp: Option<Vec<u8>>,
}

impl DecodedJpeg {
    /// Pillow's `getexif()` orientation: the EXIF tag, otherwise the first `tiff:Orientation`
    /// digit of the XMP packet; unreadable or absent means no transform.
    pub fn orientation(&self) -> Orientation {
        self.exif
            .as_deref()
            .and_then(Orientation::from_exif_chunk)
            .or_else(|| Orientation::from_exif(xmp_orientation(self.xmp.as_deref()?)?))
            .unwrap_or(Orientation::NoTransforms)
    }

    /// The image after `ImageOps.exif_transpose`.
    pub fn into_upright(self) -> RgbImage {
        let orientation = self.orientation();
        if orientation == Orientation::NoTransforms {
            return self.image;
        }
        let mut image = DynamicImage::ImageRgb8(self.image);
        image.apply_orientation(orientation);
        image.into_rgb8()
    }
}

/// Decodes a JPEG as Pillow 13 does (see the module docs). The header's dimensions are checked
/// against `max_pixels` (width x height) and `max_side` before anything the size of the image
/// is allocated. Never panics on any input; never aborts (with `panic = "unwind"`).
pub(super) fn decode_jpeg(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedJpeg, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let ran_out = Rc::new(Cell::new(false));
    let reader = SliceReader {
        rest: bytes,
        ran_out: Rc::clone(&ran_out),
    };
    // libjpeg reports fatal errors by unwinding out of the C code (and the crate has a few
    // asserts of its own): everything that touches libjpeg runs inside this one catch. Nothing
    // captured outlives a caught unwind except `ran_out`, a plain flag.
    catch_unwind(AssertUnwindSafe(|| decode_inner(reader, &ran_out, limits)))
        .unwrap_or_else(|payload| Err(libjpeg_error(payload)))
}

fn decode_inner(
    reader: SliceReader<'_>,
    ran_out: &Cell<bool>,
    limits: &DecodeLimits,
) -> Result<DecodedJpeg, DecodeError> {
    // Reads the markers up to the first SOS (`jpeg_read_header`): sizes, tables, saved APP1s.
    // No buffer the size of the image exists yet.
    let header = Decompress::builder()
        .with_markers(&[Marker::APP(1)])
        .from_reader(reader)
        .map_err(|e| corrupt(e.to_string()))?;
    let (w32, h32, kind) = checked_header(&header, limits)?;
    let (width, height) = (w32 as usize, h32 as usize);
    let (exif, xmp) = app1_metadata(&header);
    // Allocation failure is an error, not an abort (`try_reserve_exact`).
    let pixels = width * height;
    let mut rgb = Vec::new();
    rgb.try_reserve_exact(pixels * 3)
        .map_err(|_| corrupt("not enough memory for the image"))?;
    rgb.resize(pixels * 3, 0);

    // `jpeg_start_decompress`: for progressive/multi-scan files this reads all the scans.
    // Everything below keeps libjpeg's defaults: JDCT_ISLOW, fancy upsampling, no scaling.
    match kind {
        JpegKind::Color => {
            let mut started = header.rgb().map_err(io_error)?;
            started
                .read_scanlines_into(&mut rgb[..])
                .map_err(io_error)?;
            finish(started, ran_out)?;
        }
        JpegKind::Gray => {
            let mut started = header.grayscale().map_err(io_error)?;
            let mut row = vec![0u8; width];
            for out in rgb.chunks_exact_mut(width * 3) {
                started
                    .read_scanlines_into(&mut row[..])
                    .map_err(io_error)?;
                for (px, &v) in out.chunks_exact_mut(3).zip(&row) {
                    px.fill(v);
                }
            }
            finish(started, ran_out)?;
        }
        JpegKind::Cmyk | JpegKind::Ycck => {
            let mut started = header
                .to_colorspace(ColorSpace::JCS_CMYK)
                .map_err(io_error)?;
            let mut row = vec![0u8; width * 4];
            for out in rgb.chunks_exact_mut(width * 3) {
                started
                    .read_scanlines_into(&mut row[..])
                    .map_err(io_error)?;
                for (px, cmyk) in out.chunks_exact_mut(3).zip(row.chunks_exact(4)) {
                    px.copy_from_slice(&cmyk_to_rgb([cmyk[0], cmyk[1], cmyk[2], cmyk[3]]));
                }
            }
            finish(started, ran_out)?;
        }
    }
    let image = RgbImage::from_raw(w32, h32, rgb).expect("buffer sized from the header");
    Ok(DecodedJpeg { image, exif, xmp })
}

/// The size and colour model of a header `jpeg_read_header` has read, or why it is refused:
/// empty, over the limits, or a component count Pillow does not open.
fn checked_header<R>(
    header: &Decompress<R>,
    limits: &DecodeLimits,
) -> Result<(u32, u32, JpegKind), DecodeError> {
    let (width, height) = (header.width(), header.height());
    if width == 0 || height == 0 {
        return Err(DecodeError::Empty);
    }
    let too_large = || DecodeError::TooManyPixels {
        width: u32::try_from(width).unwrap_or(u32::MAX),
        height: u32::try_from(height).unwrap_or(u32::MAX),
        max: limits.max_pixels,
    };
    let (w32, h32) = (
        u32::try_from(width).map_err(|_| too_large())?,
        u32::try_from(height).map_err(|_| too_large())?,
    );
    if u64::from(w32) * u64::from(h32) > limits.max_pixels || w32.max(h32) > limits.max_side {
        return Err(too_large());
    }
    let kind = match (header.components().len(), header.color_space()) {
        (1, _) => JpegKind::Gray,
        (3, _) => JpegKind::Color,
        (4, ColorSpace::JCS_YCCK) => JpegKind::Ycck,
        (4, _) => JpegKind::Cmyk,
        (n, _) => return Err(DecodeError::Unsupported(format!("{n}-component images"))),
    };
    Ok((w32, h32, kind))
}

/// `decoding_cost` of a JPEG, from the header as libjpeg reads it (the parse [`decode_jpeg`]
/// starts with): every JPEG that decodes has a cost, of the pixels that it decodes to. (The
/// `image` crate's zune-jpeg header parser refused arithmetic-coded files, which libjpeg decodes.)
/// Bytes per pixel as that parser counted them: 1 + 6 for greyscale, 3 + 6 otherwise.
pub(super) fn decoding_cost(bytes: &[u8], limits: &DecodeLimits) -> Result<u64, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let reader = SliceReader {
        rest: bytes,
        ran_out: Rc::new(Cell::new(false)),
    };
    catch_unwind(AssertUnwindSafe(|| {
        let header = Decompress::builder()
            .from_reader(reader)
            .map_err(|e| corrupt(e.to_string()))?;
        let (width, height, kind) = checked_header(&header, limits)?;
        let decoded = if kind == JpegKind::Gray { 1 } else { 3 };
        Ok(u64::from(width) * u64::from(height) * (decoded + 6))
    }))
    .unwrap_or_else(|payload| Err(libjpeg_error(payload)))
}

/// After the last scanline: the data must not have run out so far (Pillow refuses a file whose
/// bytes end before the image does), then `jpeg_finish_decompress`, whose fatal errors count
/// (Pillow: broken data stream) but whose running out of data does not (Pillow stops asking
/// for data once every row is out).
fn finish<R>(
    started: mozjpeg::decompress::DecompressStarted<R>,
    ran_out: &Cell<bool>,
) -> Result<(), DecodeError> {
    if ran_out.get() {
        return Err(truncated());
    }
    started.finish().map_err(io_error)
}

/// Pillow's `CMYK;I` unpacking (bytes inverted) followed by `cmyk2rgb` (libImaging/Convert.c):
/// `nk = 255 - K; R = CLIP8(nk - MULDIV255(C, nk))` with `MULDIV255(a, b) = (t + (t >> 8)) >> 8`,
/// `t = a * b + 128`. Input: libjpeg's raw CMYK bytes.
fn cmyk_to_rgb(raw: [u8; 4]) -> [u8; 3] {
    // After Pillow's inversion: C = 255 - c, ..., K = 255 - k, so nk = 255 - K = k.
    let nk = u32::from(raw[3]);
    let channel = |c: u8| {
        let inverted = 255 - u32::from(c);
        let t = inverted * nk + 128;
        let muldiv = ((t >> 8) + t) >> 8;
        // muldiv <= nk always, so CLIP8 never clips here.
        (nk - muldiv) as u8
    };
    [channel(raw[0]), channel(raw[1]), channel(raw[2])]
}

/// EXIF (TIFF header onwards; later Exif segments appended as Pillow does) and XMP payloads.
fn app1_metadata<R>(header: &Decompress<R>) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    const EXIF: &[u8] = b"Exif\0\0";
    const XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
    let mut exif: Option<Vec<u8>> = None;
    let mut xmp = None;
    for marker in header.markers() {
        if marker.marker != Marker::APP(1) {
            continue;
        }
        if let Some(payload) = marker.data.strip_prefix(EXIF) {
            exif.get_or_insert_with(Vec::new).extend_from_slice(payload);
        } else if let Some(packet) = marker.data.strip_prefix(XMP) {
            // Pillow: `s.split(b"\x00", 1)[1]` of the whole segment: everything after the
            // namespace's NUL, the last such segment winning.
            xmp = Some(packet.to_vec());
        }
    }
    (exif, xmp)
}

fn io_error(e: io::Error) -> DecodeError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => truncated(),
        _ => corrupt(e.to_string()),
    }
}

/// A libjpeg `error_exit` (or a crate assert), caught. Pillow refuses the same files at
/// `Image.open` (its own marker parser: precision, component count) or at `load()`.
fn libjpeg_error(payload: Box<dyn std::any::Any + Send>) -> DecodeError {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("the decoder failed");
    let message = message
        .strip_prefix("libjpeg fatal error: ")
        .unwrap_or(message);
    // libjpeg's messages for what Pillow cannot open either (jerror.h).
    let unsupported = [
        "Unsupported JPEG data precision",
        "Unsupported marker type",
        "Unsupported JPEG process",
        "Bogus number of components",
    ];
    if message.contains("Empty JPEG image") {
        DecodeError::Empty
    } else if unsupported.iter().any(|m| message.starts_with(m)) {
        DecodeError::Unsupported(message.to_string())
    } else {
        corrupt(message)
    }
}

/// The input as a `BufRead` that notes when libjpeg asks for bytes past the end (the `mozjpeg`
/// source manager then feeds libjpeg a fake EOI and a warning, which it silences).
struct SliceReader<'a> {
    rest: &'a [u8],
    ran_out: Rc<Cell<bool>>,
}

impl Read for SliceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for SliceReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.rest.is_empty() {
            self.ran_out.set(true);
        }
        Ok(self.rest)
    }

    fn consume(&mut self, amount: usize) {
        self.rest = &self.rest[amount.min(self.rest.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_formula_matches_pillow_samples() {
        // Pillow 13: Image.frombytes("CMYK", (1,1), bytes(255 - v for v in raw)).convert("RGB")
        assert_eq!(cmyk_to_rgb([255, 255, 255, 255]), [255, 255, 255]);
        assert_eq!(cmyk_to_rgb([0, 0, 0, 255]), [0, 0, 0]);
        assert_eq!(cmyk_to_rgb([0, 0, 0, 0]), [0, 0, 0]);
        assert_eq!(cmyk_to_rgb([128, 64, 200, 100]), [50, 25, 78]);
    }

    #[test]
    fn xmp_digit() {
        assert_eq!(xmp_orientation(b"<x tiff:Orientation=\"6\"/>"), Some(6));
        assert_eq!(
            xmp_orientation(b"<tiff:Orientation>8</tiff:Orientation>"),
            Some(8)
        );
        assert_eq!(xmp_orientation(b"tiff:Orientation=6"), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\xff\xd8",
            b"\xff\xd8\xff",
            b"not a jpeg at all",
            &[0xff; 100],
        ] {
            assert!(decode_jpeg(bytes, &DecodeLimits::default()).is_err());
        }
    }
}
