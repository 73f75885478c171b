//! Token ids equal transformers' for SigLIP 2's Gemma tokenizer, on every reference string
//! (`tests/fixtures/siglip2/reference/gemma_tokens.json`, from
//! `scripts/fixtures/gemma_tokenizer.py`), for every tokenizer_config.json variant and every
//! `text_lowercase` setting:
//! - `false` gives what FixRes checkpoints get (`GemmaTokenizer`, no lowercasing);
//! - `true` gives what NaFlex checkpoints get (`Siglip2Tokenizer`, lowercasing);
//! - `auto` follows `do_lower_case` (true in the hub's files; false tried on a copy).

use std::path::{Path, PathBuf};

use siglip::files::TokenizerFile;
use siglip::tokenizer::{PromptTokenizer, TextLowercase};
use siglip_test_support as common;

struct Reference {
    max_length: usize,
    pad_id: u32,
    /// (text, ids as written, ids lowercased), both without the padding.
    cases: Vec<(String, Vec<u32>, Vec<u32>)>,
    variants: serde_json::Map<String, serde_json::Value>,
}

fn reference() -> Reference {
    let doc = common::fixture_json("siglip2/reference/gemma_tokens.json");
    let cases = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let as_written = common::ids(&case["ids"]);
            let lowercased = case
                .get("lowercased_ids")
                .map_or_else(|| as_written.clone(), common::ids);
            let text = case["text"].as_str().unwrap().to_string();
            (text, as_written, lowercased)
        })
        .collect();
    Reference {
        max_length: doc["max_length"].as_u64().unwrap() as usize,
        pad_id: doc["pad_id"].as_u64().unwrap() as u32,
        cases,
        variants: doc["variants"].as_object().unwrap().clone(),
    }
}

fn tokenizer_json() -> TokenizerFile {
    TokenizerFile::Json(common::fixture("siglip2/gemma-tokenizer/tokenizer.json"))
}

/// The texts whose ids differ from the reference, with both.
fn mismatches(reference: &Reference, tokenizer: &PromptTokenizer, lowercased: bool) -> Vec<String> {
    let mut failures = Vec::new();
    for (text, as_written, lowered) in &reference.cases {
        let mut expected = if lowercased { lowered } else { as_written }.clone();
        expected.resize(reference.max_length, reference.pad_id);
        let got = tokenizer.encode(text);
        if got != expected {
            failures.push(format!(
                "{text:?}\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    failures
}

fn check(config: &Path, setting: TextLowercase, lowercased: bool, what: &str) {
    let reference = reference();
    assert!(
        reference.cases.len() >= 1000,
        "only {} strings",
        reference.cases.len()
    );
    let tokenizer = PromptTokenizer::load(
        &tokenizer_json(),
        Some(config),
        reference.max_length,
        setting,
    )
    .unwrap();
    assert!(matches!(tokenizer, PromptTokenizer::Gemma(_)));
    assert_eq!(tokenizer.lowercases(), lowercased, "{what}");
    assert_eq!(tokenizer.vocab_size(), 2000);
    let failures = mismatches(&reference, &tokenizer, lowercased);
    assert!(
        failures.is_empty(),
        "{what}, text_lowercase {setting}: {} of {} strings differ; first ones:\n{}",
        failures.len(),
        reference.cases.len(),
        failures[..failures.len().min(8)].join("\n")
    );
}

/// Each variant's tokenizer_config.json, with the class transformers made of it and whether
/// that class lowercases.
fn variants() -> Vec<(String, PathBuf, bool)> {
    reference()
        .variants
        .iter()
        .map(|(name, variant)| {
            let dir = variant["tokenizer_config"].as_str().unwrap();
            let config = common::fixture(&format!("siglip2/{dir}/tokenizer_config.json"));
            (
                name.clone(),
                config,
                variant["lowercases"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn false_and_true_give_the_transformers_class_ids() {
    let variants = variants();
    assert_eq!(variants.len(), 3);
    for (name, config, class_lowercases) in variants {
        // The setting that matches the class gives its ids; the other, the other class's.
        check(&config, TextLowercase::Off, false, &name);
        check(&config, TextLowercase::On, true, &name);
        let matching = if class_lowercases {
            TextLowercase::On
        } else {
            TextLowercase::Off
        };
        check(&config, matching, class_lowercases, &name);
    }
}

#[test]
fn auto_follows_do_lower_case() {
    for (name, config, _) in variants() {
        check(&config, TextLowercase::Auto, true, &name);
    }
    // The same files, saying do_lower_case false.
    let dir = std::env::temp_dir().join(format!("siglip-gemma-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_, config, _) = &variants()[0];
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    json["do_lower_case"] = false.into();
    let unlowered = dir.join("tokenizer_config.json");
    std::fs::write(&unlowered, json.to_string()).unwrap();
    check(
        &unlowered,
        TextLowercase::Auto,
        false,
        "do_lower_case false",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
