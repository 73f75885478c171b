//! SigLIP 2 preprocessing against transformers' PIL path (tests/fixtures/siglip2/reference/, made
//! by scripts/fixtures/naflex_pixels.py): NaFlex target sizes, NaFlex patches
//! (`Siglip2ImageProcessorPil`) and FixRes pixel values (`SiglipImageProcessorPil` with
//! `resample` 2), all bit-identical.
//!
//! The pixel references are checksums of whole outputs (and, for NaFlex, a few rows kept
//! verbatim): the full values of every case would take tens of megabytes.

use siglip_test_support as common;

use candle_core::Device;
use image::RgbImage;
use serde_json::Value;
use siglip::image_decode::{decode_rgb, DecodeLimits};
use siglip::preprocess::{target_size, PatchError, PatchPreprocessor, Preprocessor, Resample};

fn decode_fixture(name: &str) -> RgbImage {
    let bytes = std::fs::read(common::fixture(&format!("images/{name}"))).unwrap();
    decode_rgb(&bytes, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn reference(name: &str) -> Value {
    let path = common::fixture(&format!("siglip2/reference/{name}"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn usize_of(value: &Value) -> usize {
    value.as_u64().unwrap() as usize
}

/// The fixtures' checksum: the sum of each value's f32 bits times its index plus one, modulo
/// 2^64. A single changed value always changes it.
fn checksum(values: &[f32]) -> u64 {
    values.iter().zip(1u64..).fold(0u64, |sum, (v, i)| {
        sum.wrapping_add(u64::from(v.to_bits()).wrapping_mul(i))
    })
}

#[test]
fn target_sizes_match_transformers() {
    let cases = reference("naflex_sizes.json");
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 300, "only {} target sizes", cases.len());
    for case in cases {
        let c: Vec<usize> = case.as_array().unwrap().iter().map(usize_of).collect();
        let (height, width, patch, budget) = (c[0], c[1], c[2], c[3]);
        assert_eq!(
            target_size(height, width, patch, budget),
            (c[4], c[5]),
            "{height}x{width}, patch {patch}, {budget} patches"
        );
    }
}

#[test]
fn naflex_patches_match_transformers() {
    let references = candle_core::safetensors::load(
        common::fixture("siglip2/reference/naflex_pixels.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let doc = reference("naflex_pixels.json");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 60, "only {} NaFlex cases", cases.len());
    for case in cases {
        let name = case["image"].as_str().unwrap();
        let budget = usize_of(&case["max_num_patches"]);
        let do_resize = case["do_resize"].as_bool().unwrap();
        let key = if do_resize {
            format!("{name}@{budget}")
        } else {
            format!("{name}@{budget}@no-resize")
        };
        let preprocessor = PatchPreprocessor {
            do_resize,
            ..PatchPreprocessor::default()
        };
        let patches = preprocessor
            .patches(&decode_fixture(name), budget)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let grid = (usize_of(&case["grid"][0]), usize_of(&case["grid"][1]));
        assert_eq!(patches.grid, grid, "{key}: grid");
        assert_eq!(patches.patch_len(), 16 * 16 * 3, "{key}");

        let sampled: Vec<f32> = references[&key].flatten_all().unwrap().to_vec1().unwrap();
        let rows = case["sampled_rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(usize_of);
        let width = patches.patch_len();
        for (row, expected) in rows.zip(sampled.chunks_exact(width)) {
            let got = &patches.values[row * width..][..width];
            let same = got
                .iter()
                .zip(expected)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{key}: patch {row} differs");
        }
        assert_eq!(
            checksum(&patches.values),
            case["checksum"].as_u64().unwrap(),
            "{key}: the patches differ"
        );
    }
}

#[test]
fn fixres_bilinear_pixel_values_match_transformers() {
    let preprocessor = Preprocessor::from_json(
        r#"{"resample": 2, "size": {"height": 48, "width": 48}, "do_convert_rgb": true}"#,
    )
    .unwrap();
    assert_eq!(preprocessor.resample, Resample::Bilinear);
    let doc = reference("bilinear_pixel_values.json");
    let checksums = doc["checksums"].as_object().unwrap();
    assert!(checksums.len() >= 30);
    for (name, expected) in checksums {
        let jpeg = name.ends_with(".jpg");
        if jpeg && !cfg!(feature = "libjpeg") {
            continue; // zune-jpeg's pixels are not Pillow's (preprocess_parity bounds them)
        }
        let values = preprocessor.pixel_values(&decode_fixture(name));
        assert_eq!(
            checksum(&values),
            expected.as_u64().unwrap(),
            "{name}: the pixel values differ"
        );
    }
}

#[test]
fn unresized_images_must_be_whole_patches() {
    // transformers' reshape fails on 46x46 pixels at patch 16; the port says why instead.
    let preprocessor = PatchPreprocessor {
        do_resize: false,
        ..PatchPreprocessor::default()
    };
    let got = preprocessor.patches(&decode_fixture("rgb_46x46.png"), 256);
    assert_eq!(
        got,
        Err(PatchError::NotWholePatches {
            width: 46,
            height: 46,
            patch_size: 16
        })
    );
}
