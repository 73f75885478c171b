//! Multilingual SigLIP 1 (google/siglip-base-patch16-256-multilingual) tokenizes with a
//! 250,000-piece SentencePiece Unigram model through the slow `SiglipTokenizer`: our
//! SentencePiece port must give transformers' ids at that shape (ids over 65535, many scripts,
//! long pieces, unknown characters). The model is made by `scripts/fixtures/multilingual.py`
//! (`tests/fixtures/multilingual/`), with the ids transformers gives on about a thousand
//! strings, as written (`do_lower_case` true, the pipeline's) and not lowercased.

use std::time::Instant;

use siglip::files::TokenizerFile;
use siglip::tokenizer::{PromptTokenizer, SiglipTokenizer, TextLowercase};
use siglip_test_support as common;

struct Reference {
    max_length: usize,
    pad_id: u32,
    /// (text, ids lowercased, ids not lowercased), both without the padding.
    cases: Vec<(String, Vec<u32>, Vec<u32>)>,
}

fn reference() -> Reference {
    let doc = common::fixture_json("multilingual/tokens.json");
    let cases = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let lowercased = common::ids(&case["ids"]);
            let cased = case
                .get("cased_ids")
                .map_or_else(|| lowercased.clone(), common::ids);
            let text = case["text"].as_str().unwrap().to_string();
            (text, lowercased, cased)
        })
        .collect();
    Reference {
        max_length: doc["max_length"].as_u64().unwrap() as usize,
        pad_id: doc["pad_id"].as_u64().unwrap() as u32,
        cases,
    }
}

fn load(max_length: usize, setting: TextLowercase) -> PromptTokenizer {
    let file = TokenizerFile::SentencePiece(common::fixture("multilingual/spiece.model"));
    let config = common::fixture("multilingual/tokenizer_config.json");
    PromptTokenizer::load(&file, Some(&config), max_length, setting).unwrap()
}

fn check(setting: TextLowercase, lowercased: bool) {
    let reference = reference();
    assert!(
        reference.cases.len() >= 1000,
        "only {} strings",
        reference.cases.len()
    );
    let start = Instant::now();
    let tokenizer = load(reference.max_length, setting);
    let load_time = start.elapsed();
    assert!(matches!(tokenizer, PromptTokenizer::SentencePiece(_)));
    assert_eq!(tokenizer.lowercases(), lowercased);
    assert_eq!(tokenizer.vocab_size(), 250_000);
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut high_ids = 0;
    for (text, lowered, cased) in &reference.cases {
        let mut expected = if lowercased { lowered } else { cased }.clone();
        expected.resize(reference.max_length, reference.pad_id);
        let got = tokenizer.encode(text);
        high_ids += usize::from(got.iter().any(|&id| id > 0xFFFF));
        if got != expected {
            failures.push(format!(
                "{text:?}\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    let encode_time = start.elapsed();
    // A sanity print (`--nocapture`): a 250k-piece model must load and encode quickly.
    println!(
        "multilingual, text_lowercase {setting}: loaded in {load_time:.2?}, {} strings encoded \
         in {encode_time:.2?} ({high_ids} with ids over 65535)",
        reference.cases.len()
    );
    assert!(
        failures.is_empty(),
        "text_lowercase {setting}: {} of {} strings differ; first ones:\n{}",
        failures.len(),
        reference.cases.len(),
        failures[..failures.len().min(8)].join("\n")
    );
    assert!(
        high_ids > 100,
        "only {high_ids} strings reach ids over 65535"
    );
}

#[test]
fn ids_match_transformers() {
    check(TextLowercase::Auto, true);
}

#[test]
fn ids_not_lowercased_match_transformers() {
    check(TextLowercase::Off, false);
}

/// The reference strings joined into texts of 1 KB to 30 KB, with their spaces and without:
/// `encode`, which stops once the ids it keeps are certain, must give what tokenizing the
/// whole text gives, with pieces of up to 68 bytes.
#[test]
fn long_texts_stop_early_with_the_whole_texts_ids() {
    let reference = reference();
    let PromptTokenizer::SentencePiece(tokenizer) = load(64, TextLowercase::Auto) else {
        panic!("a SentencePiece model loads as SiglipTokenizer");
    };
    let whole_text_ids = |tokenizer: &SiglipTokenizer, text: &str| {
        let mut ids = tokenizer.tokenize(text);
        ids.truncate(63);
        if ids.last() != Some(&1) {
            ids.push(1);
        }
        ids.resize(64, 1);
        ids
    };
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.0.as_str()).collect();
    for (start, length) in [(0, 1_000), (300, 5_000), (700, 30_000)] {
        for separator in [" ", "", ". "] {
            let mut text = String::new();
            let mut i = start;
            while text.len() < length {
                text.push_str(texts[i % texts.len()]);
                text.push_str(separator);
                i += 1;
            }
            for text in [text.clone(), text.replace(' ', "")] {
                assert_eq!(
                    tokenizer.encode(&text),
                    whole_text_ids(&tokenizer, &text),
                    "{} bytes joined by {separator:?}",
                    text.len()
                );
            }
        }
    }
}
