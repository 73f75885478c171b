//! Benchmark: GFLOP/s (median of repeated runs) of `kernels::attention::attend` in f32 and
//! bf16, on 1 and 2 threads, for one image of the base-384 tower (577 tokens, 12 heads of 64)
//! reading q;k;v side by side from one fused projection output, as the encoder does.
//! Run: `cargo run --release --example attention_speed [-- <batch> [f32|bf16]]`.
//! FLOPs counted: the two products, 4·rows²·dim per head (the softmax is not counted).

use std::time::{Duration, Instant};

use siglip_kernels::attention::{attend, AttentionShape, Heads};
use siglip_kernels::Dtype;

/// Median seconds of `f`, over at least 7 calls and about `budget`.
fn median(f: &mut dyn FnMut(), budget: Duration) -> f64 {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 7 || (start.elapsed() < budget && times.len() < 500) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let batch: usize = std::env::args()
        .nth(1)
        .map_or(1, |b| b.parse().expect("batch: a number"));
    let (rows, heads, dim) = (577, 12, 64);
    let width = heads * dim;
    let qkv: Vec<f32> = (0..batch * rows * 3 * width)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
        .collect();
    let part = |offset| Heads {
        data: &qkv,
        rows,
        row_stride: 3 * width,
        offset,
    };
    let shape = AttentionShape { batch, heads, dim };
    let flops = 4.0 * (batch * heads * rows * rows * dim) as f64;
    println!("attention, batch {batch}: {rows} tokens, {heads} heads of {dim}");
    let only = std::env::args().nth(2).unwrap_or_default();
    for dtype in [Dtype::F32, Dtype::Bf16] {
        if !format!("{dtype:?}").eq_ignore_ascii_case(&only) && !only.is_empty() {
            continue;
        }
        for threads in [1, 2] {
            let mut run = || {
                let (q, k, v) = (part(0), part(width), part(2 * width));
                let out = attend(shape, q, k, v, dtype, threads);
                std::hint::black_box(out.expect("this CPU lacks the kernels"));
            };
            let secs = median(&mut run, Duration::from_millis(2000));
            println!(
                "{dtype:?} {threads} thread(s): {:.2} ms, {:.1} GFLOP/s",
                secs * 1e3,
                flops / secs / 1e9
            );
        }
    }
}
