//! Image preprocessing on one core: a ~1 MP photo decoded (JPEG, PNG), resized to 384² (bicubic
//! for SigLIP, bilinear for SigLIP 2 FixRes) and cut into 256 NaFlex patches.
//!
//! `cargo bench -p siglip --bench preprocess`. Targets: decode + resize of a 1 MP JPEG in at
//! most 10 ms; the Pillow-exact JPEG decoder no slower than the pure-Rust one (`decode jpeg`
//! again with `--no-default-features`).
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use image::{ImageFormat, RgbImage};
use siglip::image_decode::{decode_rgb, DecodeLimits};
use siglip::preprocess::{PatchPreprocessor, Preprocessor};

/// SigLIP's preprocessor at 384 px (google/siglip-base-patch16-384).
const PREPROCESSOR_384: &str = r#"{
  "do_convert_rgb": true, "do_normalize": true, "do_rescale": true, "do_resize": true,
  "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 3,
  "rescale_factor": 0.00392156862745098, "size": {"height": 384, "width": 384}
}"#;

const PHOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/images/retina_1mp.jpg"
);

fn preprocess(c: &mut Criterion) {
    let preprocessor = Preprocessor::from_json(PREPROCESSOR_384).unwrap();
    let bilinear =
        Preprocessor::from_json(&PREPROCESSOR_384.replace("\"resample\": 3", "\"resample\": 2"))
            .unwrap();
    let naflex = PatchPreprocessor::default();
    let limits = DecodeLimits::default();
    let jpeg = std::fs::read(PHOTO).unwrap();
    let decoded: RgbImage = decode_rgb(&jpeg, &limits).unwrap();
    let mut png = Vec::new();
    decoded
        .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let (w, h) = decoded.dimensions();

    let mut group = c.benchmark_group(format!("preprocess {w}x{h}"));
    group.bench_function("decode jpeg", |b| {
        b.iter(|| decode_rgb(&jpeg, &limits).unwrap())
    });

    group.bench_function("decode png", |b| {
        b.iter(|| decode_rgb(&png, &limits).unwrap())
    });
    group.bench_function("resize+normalise to 384", |b| {
        b.iter(|| preprocessor.pixel_values(&decoded))
    });
    group.bench_function("bilinear resize+normalise to 384", |b| {
        b.iter(|| bilinear.pixel_values(&decoded))
    });
    group.bench_function("naflex 256 patches", |b| {
        b.iter(|| naflex.patches(&decoded, 256).unwrap())
    });
    group.bench_function("jpeg to pixel values", |b| {
        b.iter(|| preprocessor.pixel_values(&decode_rgb(&jpeg, &limits).unwrap()))
    });
    group.bench_function("png to pixel values", |b| {
        b.iter(|| preprocessor.pixel_values(&decode_rgb(&png, &limits).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, preprocess);
criterion_main!(benches);
