//! SigLIP 2's Gemma tokenizer (`PromptTokenizer` of tests/fixtures/siglip2/models/tiny-naflex and
//! tiny-fixres-gemma, each lowercasing and not) on arbitrary text (lossy UTF-8). Models whose
//! tokenizer files are byte-identical (today both are) are fuzzed once per setting.
//!
//! Checks, for each:
//! - `encode` gives exactly `max_length` (64) ids, every one below `vocab_size`;
//! - `encode` is deterministic (checked on texts up to 1 KiB, to keep the rate up);
//! - `encode`, which tokenizes growing prefixes cut where nothing joins across the cut and stops
//!   at the first truncated one, equals `encode_whole`, the whole text tokenized at once
//!   (checked on texts up to 64 KiB: beyond, the whole-text tokenization alone would slow the
//!   run, and the prefixes are the same 1, 4 and 16 KiB ones).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use siglip::tokenizer::{GemmaTokenizer, PromptTokenizer, TextLowercase};

const MAX_LENGTH: usize = 64;
const MAX_WHOLE_TEXT: usize = 64 * 1024;

fn tokenizers() -> &'static [(String, GemmaTokenizer)] {
    static TOKENIZERS: OnceLock<Vec<(String, GemmaTokenizer)>> = OnceLock::new();
    TOKENIZERS.get_or_init(|| {
        let fixtures =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/siglip2/models");
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for model in ["tiny-naflex", "tiny-fixres-gemma"] {
            let dir = fixtures.join(model);
            let files = siglip::files::resolve(dir.to_str().unwrap(), None)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let contents = ["tokenizer.json", "tokenizer_config.json"]
                .map(|name| std::fs::read(dir.join(name)).unwrap_or_default());
            if seen.contains(&contents) {
                continue;
            }
            seen.push(contents);
            for lowercase in [TextLowercase::On, TextLowercase::Off] {
                let tokenizer = PromptTokenizer::load(
                    &files.tokenizer,
                    files.tokenizer_config.as_deref(),
                    MAX_LENGTH,
                    lowercase,
                )
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
                let PromptTokenizer::Gemma(tokenizer) = tokenizer else {
                    panic!("{}: not loaded as the Gemma tokenizer", dir.display());
                };
                out.push((format!("{model}, text_lowercase {lowercase}"), tokenizer));
            }
        }
        out
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for (name, tokenizer) in tokenizers() {
        let ids = tokenizer.encode(&text);
        assert_eq!(ids.len(), MAX_LENGTH, "{name}: {} ids", ids.len());
        let vocab = tokenizer.vocab_size();
        assert!(
            ids.iter().all(|&id| (id as usize) < vocab),
            "{name}: an id outside the vocabulary of {vocab}: {ids:?}"
        );
        if text.len() <= 1024 {
            assert_eq!(
                tokenizer.encode(&text),
                ids,
                "{name}: encode is not deterministic"
            );
        }
        if text.len() <= MAX_WHOLE_TEXT {
            assert_eq!(
                ids,
                tokenizer.encode_whole(&text),
                "{name}: encode differs from the whole text's ids for {text:?}"
            );
        }
    }
});
