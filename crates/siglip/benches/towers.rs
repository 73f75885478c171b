//! Both SigLIP towers on CPU: images/s of the image tower at batch 1 and 8, labels/s of the
//! text tower for 8 uncached 64-token labels.
//!
//! ```text
//! SIGLIP_BENCH_MODEL=/path/to/siglip-base-384-random SIGLIP_DTYPE=bf16 cargo bench --bench towers
//! ```
//! The model defaults to the tiny fixture (fast, for checking that the bench runs); the
//! figures in benches/README.md come from the full-size random model that
//! `scripts/make_fixtures.py --full base` writes. `SIGLIP_DTYPE` is `f32` (default) or `bf16`.
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use siglip::checkpoint::Checkpoint;
use siglip::model::Dtype;

fn checkpoint() -> Checkpoint {
    let model = std::env::var("SIGLIP_BENCH_MODEL").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/models/tiny-p16"
        )
        .into()
    });
    let dtype = std::env::var("SIGLIP_DTYPE").unwrap_or_else(|_| "f32".into());
    let dtype = dtype.parse::<Dtype>().unwrap();
    let checkpoint = Checkpoint::load(&model, None, &Device::Cpu, dtype).unwrap();
    siglip_kernels::memory::keep_freed_memory();
    checkpoint
}

/// Deterministic pixels in [-1, 1], `[batch, 3, H, W]`.
fn pixels(checkpoint: &Checkpoint, batch: usize) -> Tensor {
    let (h, w) = checkpoint.model.image_size();
    let data: Vec<f32> = (0..batch * 3 * h * w)
        .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    Tensor::from_vec(data, (batch, 3, h, w), &Device::Cpu).unwrap()
}

fn towers(c: &mut Criterion) {
    let checkpoint = checkpoint();
    let mut group = c.benchmark_group("towers");
    group.sample_size(10);
    for batch in [1, 8] {
        let x = pixels(&checkpoint, batch);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("image tower, batch {batch}"), |b| {
            b.iter(|| {
                checkpoint
                    .model
                    .image_features(&x)
                    .unwrap()
                    .to_vec2::<f32>()
                    .unwrap()
            })
        });
    }
    // Labels long enough to fill all 64 positions (SigLIP attends to padding anyway).
    let prompts: Vec<String> = (0..8)
        .map(|i| format!("a photo of label number {i} in a long descriptive caption ").repeat(4))
        .collect();
    let ids = checkpoint.id_batch(&prompts).unwrap();
    group.throughput(Throughput::Elements(prompts.len() as u64));
    group.bench_function("text tower, 8 labels", |b| {
        b.iter(|| {
            checkpoint
                .model
                .text_features(&ids)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, towers);
criterion_main!(benches);
