//! Benchmark: GFLOP/s (median of repeated runs) of `kernels::matmul` in f32 and bf16 against
//! the `gemm` 0.19 crate (x86-v4), on 1 and 2 threads, for the SigLIP shapes.
//! Run: `cargo run --release --example matmul_speed [-- <shape filter>]`.
//! Attention shapes (per-call right-hand side) include packing in the timed region.
//! The three variants are timed round-robin so they share the (noisy) background load.
// The `gemm` baseline and the register-only FMA peak loop call raw unsafe APIs.
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

use siglip_kernels::{matmul, Dtype, PackedRhs};

/// (name, m, k, n, right-hand side packed per call)
const SHAPES: &[(&str, usize, usize, usize, bool)] = &[
    ("img1 qkvo", 577, 768, 768, false),
    ("img1 qkv fused", 577, 768, 2304, false),
    ("img1 fc1", 577, 768, 3072, false),
    ("img1 fc2", 577, 3072, 768, false),
    ("img8 fc1", 4616, 768, 3072, false),
    ("img8 fc2", 4616, 3072, 768, false),
    ("attn QK^T", 577, 64, 577, true),
    ("attn PV", 577, 577, 64, true),
    ("txt8 fc1", 512, 768, 3072, false),
    ("txt8 fc2", 512, 3072, 768, false),
    ("txt1 qkvo", 64, 768, 768, false),
];

/// Median seconds per call of each of `runs`, timed round-robin (one call of each per round,
/// rounds until ~`budget` has passed, at least 7) so that they share the same background load.
fn medians(runs: &mut [Box<dyn FnMut() + '_>], budget: Duration) -> Vec<f64> {
    let mut times = vec![Vec::new(); runs.len()];
    runs.iter_mut().for_each(|f| f());
    let start = Instant::now();
    while times[0].len() < 7 || (start.elapsed() < budget && times[0].len() < 300) {
        for (f, t) in runs.iter_mut().zip(&mut times) {
            let t0 = Instant::now();
            f();
            t.push(t0.elapsed().as_secs_f64());
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect()
}

/// A timed call of our matmul; with `per_call`, packing the right-hand side is part of it.
fn ours<'a>(
    x: &'a [f32],
    w: &'a [f32],
    (m, k, n): (usize, usize, usize),
    per_call: bool,
    dtype: Dtype,
    threads: usize,
) -> Option<Box<dyn FnMut() + 'a>> {
    let rhs = PackedRhs::pack(w, n, k, k, 1, dtype)?;
    let mut out = vec![0.0; m * n];
    Some(if per_call {
        Box::new(move || {
            let rhs = PackedRhs::pack(w, n, k, k, 1, dtype).unwrap();
            matmul(x, m, &rhs, None, &mut out, n, threads);
        })
    } else {
        Box::new(move || matmul(x, m, &rhs, None, &mut out, n, threads))
    })
}

/// A timed call of the `gemm` crate computing the same product.
fn baseline<'a>(
    x: &'a [f32],
    w: &'a [f32],
    (m, k, n): (usize, usize, usize),
    threads: usize,
) -> Box<dyn FnMut() + 'a> {
    let mut out = vec![0.0f32; m * n];
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    Box::new(move || {
        // SAFETY: out is m×n (row stride n), x is m×k (row stride k), w is n×k read as
        // its transpose k×n (row stride 1, column stride k); all in bounds.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr(),
                1,
                n as isize,
                false,
                x.as_ptr(),
                1,
                k as isize,
                w.as_ptr(),
                k as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
    })
}

/// Register-only FMA throughput of one thread (f32 GFLOP/s): the ceiling for the f32 kernels.
#[cfg(target_arch = "x86_64")]
fn fma_peak_one_thread() -> f64 {
    #[target_feature(enable = "avx512f")]
    fn spin(iters: usize) -> f32 {
        use std::arch::x86_64::*;
        let mut acc: [__m512; 24] = std::array::from_fn(|i| _mm512_set1_ps(i as f32));
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        for _ in 0..iters {
            for v in &mut acc {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }
    let iters = 20_000_000;
    let t = Instant::now();
    // SAFETY: only called when the CPU has avx512f (checked by the caller).
    std::hint::black_box(unsafe { spin(iters) });
    (iters * 24 * 32) as f64 / t.elapsed().as_secs_f64() / 1e9
}

/// FMA throughput with `threads` threads running `fma_peak_one_thread` at once.
#[cfg(target_arch = "x86_64")]
fn fma_peak(threads: usize) -> f64 {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(fma_peak_one_thread)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

fn main() {
    println!("cpu_isa={}", siglip_kernels::isa::active());
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        println!("register-only zmm FMA peak (f32; bf16 dot is 2x): 1 thread {:.0} GFLOP/s, 2 threads {:.0} GFLOP/s", fma_peak(1), fma_peak(2));
    }
    let filter = std::env::args().nth(1).unwrap_or_default();
    let fmt = |s: Option<f64>, flops: f64| {
        s.map_or("   n/a".to_string(), |s| format!("{:6.1}", flops / s / 1e9))
    };
    println!(
        "{:<16} {:>16} | {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6}",
        "shape", "m×k×n", "f32 1t", "bf16 1t", "gemm 1t", "f32 2t", "bf16 2t", "gemm 2t"
    );
    for &(name, m, k, n, per_call) in SHAPES.iter().filter(|s| s.0.contains(filter.as_str())) {
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 9.0)
            .collect();
        let flops = 2.0 * (m * k * n) as f64;
        let mut cols = Vec::new();
        for threads in [1, 2] {
            let shape = (m, k, n);
            let mut runs: Vec<Box<dyn FnMut()>> = Vec::new();
            let f32_run = ours(&x, &w, shape, per_call, Dtype::F32, threads);
            let bf16_run = ours(&x, &w, shape, per_call, Dtype::Bf16, threads);
            let present = [f32_run.is_some(), bf16_run.is_some(), true];
            runs.extend(f32_run);
            runs.extend(bf16_run);
            runs.push(baseline(&x, &w, shape, threads));
            let mut secs = medians(&mut runs, Duration::from_millis(1500)).into_iter();
            cols.extend(present.map(|p| fmt(p.then(|| secs.next().unwrap()), flops)));
        }
        println!(
            "{:<16} {:>16} | {} {} {} | {} {} {}",
            name,
            format!("{m}×{k}×{n}"),
            cols[0],
            cols[1],
            cols[2],
            cols[3],
            cols[4],
            cols[5]
        );
    }
}
