//! The SentencePiece tokenizer: prompts to 64 ids, as the text queue does for uncached labels.
//!
//! `cargo bench --bench tokenizer`.
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use siglip::files::TokenizerFile;
use siglip::tokenizer::SiglipTokenizer;

fn tokenizer(c: &mut Criterion) {
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/models/tiny-p16"
    );
    let file = TokenizerFile::Json(format!("{model}/tokenizer.json").into());
    let tokenizer = SiglipTokenizer::load(&file, None, 64).unwrap();
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
    group.throughput(Throughput::Elements(prompts.len() as u64));
    group.bench_function("8 label prompts", |b| {
        b.iter(|| {
            prompts
                .iter()
                .map(|p| tokenizer.encode(p).len())
                .sum::<usize>()
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("one 480-char caption", |b| {
        b.iter(|| tokenizer.encode(&long))
    });
    group.finish();
}

criterion_group!(benches, tokenizer);
criterion_main!(benches);
