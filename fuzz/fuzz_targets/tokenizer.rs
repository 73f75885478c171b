//! Both tokenizer formats (`tokenizer.json` of tests/fixtures/models/tiny-p16, `spiece.model`
//! of tiny-p14, each with its `tokenizer_config.json`) on arbitrary text (lossy UTF-8).
//!
//! Checks, for each:
//! - `encode` gives exactly `max_length` (64) ids, every one below `vocab_size`;
//! - `encode` is deterministic (checked on texts up to 1 KiB, to keep the rate up);
//! - `encode`, which stops tokenizing long texts early, equals the whole text's `tokenize`
//!   truncated to 63, `</s>` (id 1) appended unless already last, padded with 1 to 64.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use siglip::tokenizer::SiglipTokenizer;

const MAX_LENGTH: usize = 64;
const EOS: u32 = 1;
const PAD: u32 = 1;

fn tokenizers() -> &'static [(&'static str, SiglipTokenizer)] {
    static TOKENIZERS: OnceLock<Vec<(&'static str, SiglipTokenizer)>> = OnceLock::new();
    TOKENIZERS.get_or_init(|| {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
        ["tiny-p16", "tiny-p14"]
            .into_iter()
            .map(|name| {
                let dir = fixtures.join(name);
                let files = siglip::files::resolve(dir.to_str().unwrap(), None)
                    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
                let tokenizer = SiglipTokenizer::load(
                    &files.tokenizer,
                    files.tokenizer_config.as_deref(),
                    MAX_LENGTH,
                )
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
                (name, tokenizer)
            })
            .collect()
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

        let mut whole = tokenizer.tokenize(&text);
        whole.truncate(MAX_LENGTH - 1);
        if whole.last() != Some(&EOS) {
            whole.push(EOS);
        }
        whole.resize(MAX_LENGTH, PAD);
        assert_eq!(
            ids, whole,
            "{name}: encode differs from the whole text's tokenize for {text:?}"
        );
    }
});
