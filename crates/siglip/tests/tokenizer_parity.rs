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

/// The reference strings, joined into texts of 1 KB to 60 KB, with their spaces and without:
/// `encode`, which stops once the ids it keeps are certain, must give what tokenizing the
/// whole text gives.
#[test]
fn long_texts_stop_early_with_the_whole_texts_ids() {
    let reference = common::reference_json("tokens.json");
    let texts: Vec<&str> = reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| case["text"].as_str().unwrap())
        .collect();
    for model in ["tiny-p16", "tiny-p14"] {
        let files = common::model_files(model);
        let tokenizer =
            SiglipTokenizer::load(&files.tokenizer, files.tokenizer_config.as_deref(), 64).unwrap();
        let whole_text_ids = |text: &str| {
            let mut ids = tokenizer.tokenize(text);
            ids.truncate(63);
            if ids.last() != Some(&1) {
                ids.push(1);
            }
            ids.resize(64, 1);
            ids
        };
        let mut checked = 0;
        for (start, length) in [(0, 1_000), (7, 3_000), (100, 60_000)] {
            for separator in [" ", "", "  ", ". "] {
                let mut text = String::new();
                let mut i = start;
                while text.len() < length {
                    text.push_str(texts[i % texts.len()]);
                    text.push_str(separator);
                    i += 1;
                }
                // As written, and as one long word (the Viterbi's own early stop).
                for text in [text.clone(), text.replace(' ', "")] {
                    assert_eq!(
                        tokenizer.encode(&text),
                        whole_text_ids(&text),
                        "{model}, {} bytes joined by {separator:?}",
                        text.len()
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 24);
    }
}
