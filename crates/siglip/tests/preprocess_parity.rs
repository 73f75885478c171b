//! Decoding and preprocessing against transformers' PIL path (`load_image` + PIL bicubic or
//! bilinear resize + rescale/normalise): bit-identical, JPEG included (the `libjpeg` feature;
//! the pure-Rust decoder's difference without it is measured and bounded).

use siglip_test_support as common;

use candle_core::Device;
use image::RgbImage;
use siglip::image_decode::{decode_rgb, DecodeLimits};
use siglip::preprocess::{resize, resize_bicubic, Preprocessor, Resample};

fn decode_fixture(name: &str) -> RgbImage {
    let bytes = std::fs::read(common::fixture(&format!("images/{name}"))).unwrap();
    decode_rgb(&bytes, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read_png(path: std::path::PathBuf) -> RgbImage {
    image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

/// A JPEG decoded by the pure-Rust decoder (the `libjpeg` feature off), which is a few levels
/// off Pillow: such files get a bounded allowance; every other file must be exact.
fn inexact_jpeg(name: &str) -> bool {
    !cfg!(feature = "libjpeg") && (name.ends_with(".jpg") || name.ends_with(".jpeg"))
}

/// `(max abs difference, share of differing values)`.
fn difference(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len());
    let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
    let max = a
        .iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0);
    (max, differing as f64 / a.len() as f64)
}

/// Every file name in `tests/fixtures/<dir>/`.
fn fixture_files(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(common::fixture(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn decoding_matches_pil() {
    let mut jpeg_worst = (0u8, 0f64);
    for file in fixture_files("reference/decoded") {
        let name = file.strip_suffix(".png").unwrap();
        let expected = read_png(common::fixture(&format!("reference/decoded/{file}")));
        let got = decode_fixture(name);
        assert_eq!(
            got.dimensions(),
            expected.dimensions(),
            "{name}: size (EXIF orientation?)"
        );
        let (max, share) = difference(got.as_raw(), expected.as_raw());
        eprintln!(
            "decode {name}: max abs diff {max}, {:.3}% of values differ",
            share * 100.0
        );
        if inexact_jpeg(name) {
            jpeg_worst = (jpeg_worst.0.max(max), jpeg_worst.1.max(share));
        } else {
            assert_eq!(max, 0, "{name}: lossless decode differs from PIL");
        }
    }
    // The pure-Rust decoder (zune-jpeg) against libjpeg-turbo, measured on these files.
    assert!(
        jpeg_worst.0 <= 16 && jpeg_worst.1 <= 0.35,
        "JPEG decode drifted: {jpeg_worst:?}"
    );
}

/// Checks every `<dir>/<image>@<W>x<H>.png` against [`resize`] with `filter`; returns how many.
fn check_resized(dir: &str, filter: Resample) -> usize {
    let mut checked = 0;
    for file in fixture_files(dir) {
        let (name, size) = file.strip_suffix(".png").unwrap().rsplit_once('@').unwrap();
        let (w, h) = size.split_once('x').unwrap();
        let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
        let expected = read_png(common::fixture(&format!("{dir}/{file}")));
        let source = if inexact_jpeg(name) {
            // PIL's own JPEG decode, so the resize alone is compared.
            read_png(common::fixture(&format!("reference/decoded/{name}.png")))
        } else {
            decode_fixture(name)
        };
        let got = resize(&source, w, h, filter);
        let (max, share) = difference(got.as_raw(), expected.as_raw());
        assert_eq!(
            max,
            0,
            "{file} ({filter:?}): {:.3}% of values differ, by up to {max}",
            share * 100.0
        );
        checked += 1;
    }
    checked
}

#[test]
fn resize_matches_pillow_bicubic() {
    let checked = check_resized("reference/resized", Resample::Bicubic);
    assert!(checked >= 40, "only {checked} resize references");
    // The bicubic shorthand is the same function.
    let source = decode_fixture("rgb_7x513.png");
    assert_eq!(
        resize_bicubic(&source, 40, 9),
        resize(&source, 40, 9, Resample::Bicubic)
    );
}

#[test]
fn resize_matches_pillow_bilinear() {
    // SigLIP 2's filter: every image down, up, to extreme ratios and in both pass orders.
    let checked = check_resized("siglip2/reference/bilinear_resized", Resample::Bilinear);
    assert!(checked >= 150, "only {checked} bilinear references");
}

#[test]
fn pixel_values_match_transformers() {
    let references = candle_core::safetensors::load(
        common::fixture("reference/pixel_values.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let mut jpeg_worst = 0f32;
    for (key, tensor) in &references {
        let (name, model) = key.rsplit_once('@').unwrap();
        let config = std::fs::read_to_string(common::fixture(&format!(
            "models/{model}/preprocessor_config.json"
        )))
        .unwrap();
        let preprocessor = Preprocessor::from_json(&config).unwrap();
        let expected: Vec<f32> = tensor.flatten_all().unwrap().to_vec1().unwrap();
        let got = preprocessor.pixel_values(&decode_fixture(name));
        assert_eq!(got.len(), expected.len(), "{key}");
        let max = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        if inexact_jpeg(name) {
            jpeg_worst = jpeg_worst.max(max);
        } else {
            let identical = got
                .iter()
                .zip(&expected)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(identical, "{key}: pixel values differ by up to {max}");
        }
    }
    eprintln!(
        "JPEG pixel values: max abs diff {jpeg_worst} (1 level = {})",
        2.0 / 255.0
    );
}
