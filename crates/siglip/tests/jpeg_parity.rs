//! The JPEG set (`tests/fixtures/jpeg`, made by `scripts/make_jpegs.py`: every subsampling,
//! progressive, arithmetic, restart markers, CMYK, YCCK, greyscale, EXIF-rotated, sizes down to
//! 1x1, damaged files): each file Pillow 13 decodes gives Pillow's pixels bit for bit, and each
//! file it refuses is refused. With the `libjpeg` feature off, the pure-Rust decoder's distance
//! from Pillow is printed instead.

use siglip_test_support as common;

use image::RgbImage;
use siglip::image_decode::{decode_rgb, DecodeError, DecodeLimits};

/// Files Pillow 13 decodes and we refuse: lossless JPEG (SOF3) needs libjpeg-turbo 3.x
/// (Pillow bundles 3.2); the `mozjpeg` fork has the 2.x decoder.
const KNOWN_GAPS: &[&str] = &["lossless_sof3_48x40.jpg"];

struct Case {
    name: String,
    pillow: String,
    reference: bool,
}

fn cases() -> Vec<Case> {
    let manifest = common::reference_json("../jpeg/manifest.json");
    let mut cases: Vec<Case> = manifest
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, entry)| Case {
            name: name.clone(),
            pillow: entry["pillow"].as_str().unwrap().to_string(),
            reference: entry["reference"].as_bool().unwrap_or(false),
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

fn pillow_decoded(name: &str) -> RgbImage {
    let path = common::fixture(&format!("jpeg/decoded/{name}.png"));
    image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

/// `(max abs difference, share of differing values)`.
fn difference(a: &RgbImage, b: &RgbImage) -> (u8, f64) {
    let (a, b) = (a.as_raw(), b.as_raw());
    let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
    let max = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max();
    (max.unwrap_or(0), differing as f64 / a.len().max(1) as f64)
}

#[test]
fn jpegs_decode_as_pillow_decodes_them() {
    let cases = cases();
    assert!(cases.len() >= 45, "only {} files", cases.len());
    let exact = cfg!(feature = "libjpeg");
    let mut identical = 0;
    for case in &cases {
        let bytes = std::fs::read(common::fixture(&format!("jpeg/{}", case.name))).unwrap();
        let got = decode_rgb(&bytes, &DecodeLimits::default());
        if case.pillow != "ok" {
            if exact {
                assert!(
                    got.is_err(),
                    "{}: Pillow refuses ({})",
                    case.name,
                    case.pillow
                );
            }
            continue;
        }
        if !case.reference {
            // Pillow decodes it, but it is over our pixel limit: refused from the header.
            assert!(
                matches!(got, Err(DecodeError::TooManyPixels { .. })),
                "{}: {got:?}",
                case.name
            );
            continue;
        }
        if KNOWN_GAPS.contains(&case.name.as_str()) {
            assert!(got.is_err(), "{}: decoded: update KNOWN_GAPS", case.name);
            continue;
        }
        let expected = pillow_decoded(&case.name);
        let got = match got {
            Ok(image) => image,
            Err(error) if !exact => {
                eprintln!("{}: the pure-Rust decoder refuses it: {error}", case.name);
                continue;
            }
            Err(error) => panic!("{}: {error}", case.name),
        };
        assert_eq!(got.dimensions(), expected.dimensions(), "{}", case.name);
        let (max, share) = difference(&got, &expected);
        if exact {
            assert_eq!(
                max,
                0,
                "{}: {:.3}% of values differ from Pillow, by up to {max}",
                case.name,
                share * 100.0
            );
        } else {
            eprintln!(
                "{}: max abs diff {max}, {:.2}% of values differ",
                case.name,
                share * 100.0
            );
        }
        identical += usize::from(max == 0);
    }
    if exact {
        assert!(identical >= 38, "only {identical} files compared");
    }
}
