//! Unit tests of the parent module.

use super::*;
use image::{ImageBuffer, Rgba};

/// A small image with alpha, encoded in every accepted format by the `image` crate.
fn samples() -> Vec<(ImageFormat, Vec<u8>)> {
    let rgba = ImageBuffer::from_fn(23, 17, |x, y| Rgba([x as u8 * 11, y as u8 * 15, 99, 200]));
    let formats = [
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::WebP,
        ImageFormat::Bmp,
    ];
    let mut out: Vec<_> = formats
        .into_iter()
        .map(|format| {
            let mut bytes = Cursor::new(Vec::new());
            DynamicImage::ImageRgba8(rgba.clone())
                .write_to(&mut bytes, format)
                .unwrap();
            (format, bytes.into_inner())
        })
        .collect();
    let mut jpeg = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(rgba)
        .to_rgb8()
        .write_to(&mut jpeg, ImageFormat::Jpeg)
        .unwrap();
    out.push((ImageFormat::Jpeg, jpeg.into_inner()));
    out
}

#[test]
fn truncated_and_corrupted_inputs_are_errors_not_panics() {
    let limits = DecodeLimits::default();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for (format, bytes) in samples() {
        // Straight into the decoders, without the `catch_unwind` backstop.
        let rgb = decode_accepted(&bytes, format, &limits, ColourKey::Whiten).unwrap();
        assert_eq!(rgb.dimensions(), (23, 17), "{format:?}");
        for len in 0..bytes.len() {
            // Cut in the trailer, some formats still decode; cut in the pixels, none do.
            let result = decode_accepted(&bytes[..len], format, &limits, ColourKey::Whiten);
            assert!(
                result.is_err() || len > bytes.len() / 2,
                "{format:?} cut at {len}"
            );
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
            let _ = decode_accepted(&broken, format, &limits, ColourKey::Whiten);
            // The format's magic bytes followed by noise.
            broken[8..].iter_mut().for_each(|b| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                *b = (seed >> 56) as u8;
            });
            let _ = decode_accepted(&broken, format, &limits, ColourKey::Whiten);
        }
    }
}

#[test]
fn empty_and_foreign_inputs_are_refused() {
    let limits = DecodeLimits::default();
    assert_eq!(decode_rgb(b"", &limits), Err(DecodeError::Empty));
    assert!(matches!(
        decode_rgb(b"hello", &limits),
        Err(DecodeError::Unsupported(_))
    ));
    let tiff = b"II*\x00\x08\x00\x00\x00";
    assert!(matches!(
        decode_rgb(tiff, &limits),
        Err(DecodeError::Unsupported(_))
    ));
    let message = decode_rgb(b"\x89PNG\r\n\x1a\n", &limits)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("the image data is corrupt"),
        "{message}"
    );
}

#[test]
fn oversized_headers_are_refused_before_decoding() {
    let limits = DecodeLimits {
        max_pixels: 1_000_000,
        ..DecodeLimits::default()
    };
    // A PNG that declares 100000 x 100000 pixels and holds none.
    let chunk = |body: &[u8]| {
        let crc = !body.iter().fold(!0u32, |crc, &byte| {
            (0..8).fold(crc ^ u32::from(byte), |c, _| {
                (c >> 1) ^ (0xedb8_8320 & (c & 1).wrapping_neg())
            })
        });
        let len = (body.len() as u32 - 4).to_be_bytes();
        [&len[..], body, &crc.to_be_bytes()].concat()
    };
    let png = [
        &b"\x89PNG\r\n\x1a\n"[..],
        &chunk(b"IHDR\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x02\x00\x00\x00"),
        &chunk(b"IDAT"),
    ]
    .concat();
    let refused = DecodeError::TooManyPixels {
        width: 100_000,
        height: 100_000,
        max: 1_000_000,
    };
    assert_eq!(decode_rgb(&png, &limits), Err(refused));
    // A GIF whose logical screen and frame are 65535 x 65535, with no pixel data.
    let gif = b"GIF89a\xff\xff\xff\xff\x80\x00\x00\x00\x00\x00\xff\xff\xff\
        \x2c\x00\x00\x00\x00\xff\xff\xff\xff\x00\x08\x00\x3b";
    let got = decode_rgb(gif, &limits);
    assert!(
        matches!(got, Err(DecodeError::TooManyPixels { .. })),
        "{got:?}"
    );
    let (_, small) = samples().remove(0);
    let tiny = DecodeLimits {
        max_pixels: 23 * 17 - 1,
        ..DecodeLimits::default()
    };
    assert!(matches!(
        decode_rgb(&small, &tiny),
        Err(DecodeError::TooManyPixels { .. })
    ));
    // Few pixels, but one side too long for the resize tables.
    let narrow = DecodeLimits {
        max_side: 22,
        ..DecodeLimits::default()
    };
    assert!(matches!(
        decode_rgb(&small, &narrow),
        Err(DecodeError::TooManyPixels { .. })
    ));
}

#[test]
fn alpha_is_dropped_not_composited() {
    for (format, bytes) in samples() {
        if matches!(
            format,
            ImageFormat::Png | ImageFormat::WebP | ImageFormat::Bmp
        ) {
            let rgb = decode_rgb(&bytes, &DecodeLimits::default()).unwrap();
            assert_eq!(rgb.get_pixel(2, 3).0, [22, 45, 99], "{format:?}");
        }
    }
}

#[test]
fn xmp_orientation_follows_pillows_pattern() {
    assert_eq!(xmp_orientation(b"<x tiff:Orientation=\"6\"/>"), Some(6));
    assert_eq!(
        xmp_orientation(b"<tiff:Orientation>3</tiff:Orientation>"),
        Some(3)
    );
    assert_eq!(
        xmp_orientation(b"tiff:Orientation=\"x\" tiff:Orientation=\"8\""),
        Some(8)
    );
    assert_eq!(xmp_orientation(b"exif:Orientation=\"6\""), None);
}

/// Found by fuzz/fuzz_targets/image_decode.rs: an arithmetic-coded JPEG decoded, but its cost
/// (which the server computes first) was refused by zune-jpeg's header parser.
#[cfg(feature = "libjpeg")]
#[test]
fn every_jpeg_that_decodes_has_a_cost() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/jpeg");
    for (name, (width, height)) in [
        ("arith_420_64x48.jpg", (64, 48)),
        ("arith_progressive_422_59x41.jpg", (59, 41)),
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let limits = DecodeLimits::default();
        assert_eq!(
            decode_rgb(&bytes, &limits).unwrap().dimensions(),
            (width, height)
        );
        assert_eq!(
            decoding_cost(&bytes, &limits),
            Ok(u64::from(width * height) * 9),
            "{name}"
        );
    }
}
