//! Token ids equal transformers' slow SiglipTokenizer on the reference strings, whether the
//! tokenizer is built from `tokenizer.json` (tiny-p16) or from `spiece.model` (tiny-p14).

use siglip_test_support as common;

use siglip::files::TokenizerFile;
use siglip::tokenizer::SiglipTokenizer;

fn check(model: &str, expect_json: bool) {
    let files = common::model_files(model);
    assert_eq!(
        matches!(files.tokenizer, TokenizerFile::Json(_)),
        expect_json
    );
    let reference = common::reference_json("tokens.json");
    let max_length = reference["max_length"].as_u64().unwrap() as usize;
    let tokenizer = SiglipTokenizer::load(
        &files.tokenizer,
        files.tokenizer_config.as_deref(),
        max_length,
    )
    .unwrap();
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 500, "only {} reference strings", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = tokenizer.encode(text);
        if got != expected {
            failures.push(format!(
                "{text:?}\n  expected {expected:?}\n  got      {got:?}\n  pieces {}",
                case["pieces"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{model}: {} of {} strings differ; first ones:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn tokenizer_json_matches_transformers() {
    check("tiny-p16", true);
}

#[test]
fn spiece_model_matches_transformers() {
    check("tiny-p14", false);
}
