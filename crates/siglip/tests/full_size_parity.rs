//! Parity at full size: a randomly initialised model of google/siglip-base-patch16-384's shape
//! (203 M parameters), made by `scripts/make_fixtures.py --full base` with its transformers
//! reference (`reference.json`), or of a SigLIP 2 NaFlex shape (`--full naflex-base`,
//! `--full naflex-so400m`). Too large to commit, so ignored unless asked for:
//!
//! ```text
//! SIGLIP_FULL_MODEL=target/bigmodels/siglip-base-384-random \
//!     cargo test --release --test full_size_parity -- --ignored --nocapture
//! ```

use siglip_test_support as common;

use candle_core::Device;
use siglip::checkpoint::Checkpoint;
use siglip::image_decode::{decode_rgb, DecodeLimits};
use siglip::model::Dtype;

#[test]
#[ignore = "needs SIGLIP_FULL_MODEL: a full-size random model made by scripts/make_fixtures.py --full"]
fn full_size_logits_match_transformers() {
    compare(Dtype::F32, 1e-3, 0.99999);
}

/// Issue 7's bar for the reduced-dtype mode: logits within 0.05 of transformers' f32 and
/// image embeddings at cosine 0.9999 or more (transformers' own bf16 gets 0.99997).
#[test]
#[ignore = "needs SIGLIP_FULL_MODEL: a full-size random model made by scripts/make_fixtures.py --full"]
fn full_size_bf16_stays_close_to_transformers_f32() {
    if !siglip_kernels::cpu_supports(Dtype::Bf16) {
        eprintln!("skipped: this CPU lacks AVX512-BF16, and bf16 refuses to load without it");
        return;
    }
    compare(Dtype::Bf16, 0.05, 0.9999);
}

fn compare(dtype: Dtype, max_logit_err: f32, min_cosine: f32) {
    let dir = std::env::var("SIGLIP_FULL_MODEL").expect("set SIGLIP_FULL_MODEL");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/reference.json")).unwrap())
            .unwrap();
    let checkpoint = Checkpoint::load(&dir, None, &Device::Cpu, dtype).unwrap();
    let images: Vec<_> = reference["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| {
            // PIL's own decoding of the JPEG (a PNG), so that only the model is compared.
            let decoded =
                common::fixture(&format!("reference/decoded/{}.png", name.as_str().unwrap()));
            decode_rgb(&std::fs::read(decoded).unwrap(), &DecodeLimits::default()).unwrap()
        })
        .collect();
    let template = reference["template"].as_str().unwrap();
    let prompts: Vec<String> = reference["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| siglip::zero_shot::prompt(template, l.as_str().unwrap()))
        .collect();
    let start = std::time::Instant::now();
    let texts = checkpoint.embed_prompts(&prompts).unwrap();
    let pixels = images
        .iter()
        .map(|image| checkpoint.pixels(image, None).unwrap())
        .collect();
    let embeddings = checkpoint.embed_pixels(pixels).unwrap();
    let logits: Vec<Vec<f32>> = embeddings
        .iter()
        .map(|image| checkpoint.logits(image, &texts))
        .collect();
    eprintln!(
        "{} images x {} labels in {:.2?}",
        images.len(),
        prompts.len(),
        start.elapsed()
    );
    let expected = common::float_rows(&reference["logits_per_image"]);
    let mut worst = 0f32;
    for (got, want) in logits.iter().zip(&expected) {
        for (a, b) in got.iter().zip(want) {
            worst = worst.max((a - b).abs());
        }
    }
    let min_cos = embeddings
        .iter()
        .zip(common::float_rows(&reference["image_embeds"]))
        .map(|(a, b)| common::cosine(a, &b))
        .fold(1.0, f32::min);
    eprintln!("full size {dtype}: logits max abs err {worst:.3e}, image embedding min cosine {min_cos:.7}");
    assert!(worst <= max_logit_err, "logits differ by {worst}");
    assert!(min_cos >= min_cosine, "image embedding cosine {min_cos}");
}
