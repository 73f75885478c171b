//! Both tokenizers, SentencePiece (SigLIP) and Gemma (SigLIP 2, the fixture's small
//! vocabulary): prompts to 64 ids, as the text queue does for uncached labels.
//!
//! `cargo bench --bench tokenizer`.
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use siglip::files::TokenizerFile;
use siglip::tokenizer::{PromptTokenizer, TextLowercase};

fn tokenizer(c: &mut Criterion) {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
    let tokenizers = [
        ("sentencepiece", "models/tiny-p16"),
        ("gemma", "siglip2/gemma-tokenizer"),
    ]
    .map(|(name, dir)| {
        let file = TokenizerFile::Json(format!("{fixtures}/{dir}/tokenizer.json").into());
        let config = std::path::PathBuf::from(format!("{fixtures}/{dir}/tokenizer_config.json"));
        let tokenizer =
            PromptTokenizer::load(&file, Some(&config), 64, TextLowercase::Auto).unwrap();
        (name, tokenizer)
    });
    let prompts: Vec<String> = [
        "cat",
        "dog",
        "a red double-decker bus",
        "golden retriever puppy",
        "Ein Foto von einer Katze",
        "東京タワー",
        "an astronaut riding a horse on the moon",
        "coffee",
    ]
    .iter()
    .map(|label| format!("This is a photo of {label}."))
    .collect();
    let long = "a very long caption that goes on and on about the picture, ".repeat(8);

    let mut group = c.benchmark_group("tokenizer");
    for (name, tokenizer) in &tokenizers {
        group.throughput(Throughput::Elements(prompts.len() as u64));
        group.bench_function(format!("{name}: 8 label prompts"), |b| {
            b.iter(|| {
                prompts
                    .iter()
                    .map(|p| tokenizer.encode(p).len())
                    .sum::<usize>()
            })
        });
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{name}: one 480-char caption"), |b| {
            b.iter(|| tokenizer.encode(&long))
        });
    }
    group.finish();
}

criterion_group!(benches, tokenizer);
criterion_main!(benches);
