//! Texts of 1,000, 3,000 and 60,000 characters (and one 48,776-character word) give the zero-shot
//! pipeline's ids (truncated to 64) and its text embeddings, on both tiny models
//! (`tests/fixtures/reference/long_texts.json`, from `scripts/fixtures/long_texts.py`).

use siglip_test_support as common;

use siglip::{Checkpoint, Device, Dtype};

#[test]
fn long_texts_match_the_pipeline() {
    let reference = common::reference_json("long_texts.json");
    let texts: Vec<String> = reference["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert!(texts.iter().any(|t| t.chars().count() >= 60_000));
    for case in reference["cases"].as_array().unwrap() {
        let model = case["model"].as_str().unwrap();
        let checkpoint =
            Checkpoint::from_files(&common::model_files(model), &Device::Cpu, Dtype::F32).unwrap();
        for (text, expected) in texts.iter().zip(case["ids"].as_array().unwrap()) {
            let expected: Vec<u32> = expected
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(
                checkpoint.tokenizer.encode(text),
                expected,
                "{model}: a text of {} characters",
                text.chars().count()
            );
        }
        let embeddings = checkpoint.embed_prompts(&texts).unwrap();
        for (got, expected) in embeddings
            .iter()
            .zip(common::float_rows(&case["text_embeds"]))
        {
            let worst = got
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst <= 1e-4, "{model}: text embedding differs by {worst}");
        }
    }
}
