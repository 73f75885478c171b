//! Element-wise kernels of the encoder: the tanh GELU, the row softmax and the row
//! LayerNorm (which the products apply to their input as they pack it).
//!
//! candle computes these with one libm call per element (`tanhf`, `expf`), which cost
//! about a sixth of the image tower's time. Here the exponential is a Cephes-style
//! polynomial (within 2 ulp of `expf` over the range used) written as plain loops that
//! the compiler vectorises; `pulp` compiles each loop for AVX-512, AVX2 and baseline x86-64,
//! and [`dispatch`] runs the one of the active level ([`crate::isa`]), so no `unsafe` is
//! needed.

use pulp::{Simd, WithSimd};
use rayon::prelude::*;

const LOG2_E: f32 = std::f32::consts::LOG2_E;
const LN_2_HI: f32 = 0.693_359_4;
const LN_2_LO: f32 = -2.121_944_4e-4;
/// 1.5 · 2^23: adding it rounds an f32 below 2^22 to the nearest integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x` for `x` in about [-87, 88]; inputs are clamped to that range.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // x = n·ln 2 + r, |r| ≤ ln 2 / 2
    let shifted = x.mul_add(LOG2_E, ROUND_MAGIC);
    let n = shifted - ROUND_MAGIC;
    let r = n.mul_add(-LN_2_LO, n.mul_add(-LN_2_HI, x));
    let p = 1.987_569_1e-4_f32
        .mul_add(r, 1.398_2e-3)
        .mul_add(r, 8.333_452e-3)
        .mul_add(r, 4.166_579_6e-2)
        .mul_add(r, 1.666_666_5e-1)
        .mul_add(r, 0.5);
    let e_r = (p * r).mul_add(r, r) + 1.0;
    // 2^n from the integer in the low mantissa bits of `shifted`.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
    e_r * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// `tanh(x)` as `1 - 2 / (e^{2x} + 1)`: absolute error about 1e-7.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// GELU with the tanh approximation (`gelu_pytorch_tanh`), in place, on rayon's threads.
pub fn gelu_tanh(values: &mut [f32]) {
    /// Elements per task: large enough to amortise the hand-off, small enough to share.
    const CHUNK: usize = 1 << 16;
    values
        .par_chunks_mut(CHUNK)
        .for_each(|chunk| dispatch(GeluTanh(chunk)));
}

/// GELU with the tanh approximation, in place, on the calling thread (for short stretches,
/// such as a product's epilogue).
pub fn gelu_tanh_one_thread(values: &mut [f32]) {
    dispatch(GeluTanh(values));
}

/// Attention's softmax numerators in place: `e^((v - max)·scale)` of each value of `row`
/// (`scale` > 0); returns their sum. The AVX-512 kernels have their own
/// (`exp::exp_row_in_place`); this one serves the AVX2 level.
pub(crate) fn softmax_numerators(row: &mut [f32], scale: f32) -> f32 {
    dispatch(SoftmaxNumerators { row, scale })
}

/// Runs `op` compiled for the active level: pulp's x86-64-v4 (AVX-512) or v3 (AVX2 + FMA)
/// code, or baseline x86-64 at `generic`; elsewhere the best pulp finds (NEON on aarch64).
fn dispatch<Op: WithSimd>(op: Op) -> Op::Output {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::CpuIsa;
        match crate::isa::active() {
            CpuIsa::Avx512 => {
                if let Some(simd) = pulp::x86::V4::try_new() {
                    return Simd::vectorize(simd, op);
                }
            }
            CpuIsa::Avx2 | CpuIsa::Generic => {}
        }
        // pulp's v3 also wants bmi, lzcnt, f16c and movbe, which every AVX2 CPU has.
        if crate::isa::active() >= CpuIsa::Avx2 {
            if let Some(simd) = pulp::x86::V3::try_new() {
                return Simd::vectorize(simd, op);
            }
        }
        Simd::vectorize(pulp::Scalar::new(), op)
    }
    #[cfg(not(target_arch = "x86_64"))]
    pulp::Arch::new().dispatch(op)
}

/// Softmax of `scale` times each `width`-long row of `values`, in place (`scale` > 0).
pub fn softmax_rows(values: &mut [f32], width: usize, scale: f32) {
    dispatch(SoftmaxRows {
        values,
        width,
        scale,
    });
}

/// A LayerNorm over rows: `(x - mean) / sqrt(var + eps) · gamma + beta`, with the mean and the
/// (biased) variance of each row, as `torch.nn.LayerNorm`.
#[derive(Debug, Clone, Copy)]
pub struct RowNorm<'a> {
    /// Scale, one per column.
    pub gamma: &'a [f32],
    /// Shift, one per column.
    pub beta: &'a [f32],
    /// Added to the variance.
    pub eps: f32,
}

impl RowNorm<'_> {
    /// Writes the normalised `row` to `out` (both as long as `gamma`).
    ///
    /// # Panics
    /// If `row`, `out`, `gamma` and `beta` differ in length.
    pub fn apply(&self, row: &[f32], out: &mut [f32]) {
        assert!(
            row.len() == out.len() && row.len() == self.gamma.len() && row.len() == self.beta.len(),
            "row norm over {} values with {} gammas",
            row.len(),
            self.gamma.len()
        );
        dispatch(NormRow {
            norm: *self,
            row,
            out,
        });
    }
}

// Each kernel is a `WithSimd` whose body `pulp` compiles inside a function with the target
// features (AVX-512, AVX2+FMA) of the CPU it picks; everything it calls is `inline(always)`
// so that it is compiled there too.

struct GeluTanh<'a>(&'a mut [f32]);

impl WithSimd for GeluTanh<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        const SQRT_2_OVER_PI: f32 = 0.797_884_6;
        for v in self.0.iter_mut() {
            let x = *v;
            let inner = SQRT_2_OVER_PI * x * (0.044_715 * x * x + 1.0);
            *v = 0.5 * x * (1.0 + tanh(inner));
        }
    }
}

struct SoftmaxRows<'a> {
    values: &'a mut [f32],
    width: usize,
    scale: f32,
}

impl WithSimd for SoftmaxRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Self {
            values,
            width,
            scale,
        } = self;
        for row in values.chunks_exact_mut(width) {
            let max = lanes_max(row);
            for v in row.iter_mut() {
                *v = exp((*v - max) * scale);
            }
            let normaliser = 1.0 / lanes_sum(row);
            for v in row.iter_mut() {
                *v *= normaliser;
            }
        }
    }
}

struct SoftmaxNumerators<'a> {
    row: &'a mut [f32],
    scale: f32,
}

impl WithSimd for SoftmaxNumerators<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) -> f32 {
        let Self { row, scale } = self;
        let max = lanes_max(row);
        for v in row.iter_mut() {
            *v = exp((*v - max) * scale);
        }
        lanes_sum(row)
    }
}

struct NormRow<'a> {
    norm: RowNorm<'a>,
    row: &'a [f32],
    out: &'a mut [f32],
}

impl WithSimd for NormRow<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let Self { norm, row, out } = self;
        let width = row.len() as f32;
        let mean = lanes_sum(row) / width;
        for (o, &x) in out.iter_mut().zip(row) {
            *o = x - mean;
        }
        let variance = lanes_sum_squares(out) / width;
        let scale = 1.0 / (variance + norm.eps).sqrt();
        for ((o, &g), &b) in out.iter_mut().zip(norm.gamma).zip(norm.beta) {
            *o = (*o * scale).mul_add(g, b);
        }
    }
}

/// Lanes for the reductions: independent running values the compiler can keep in one
/// vector register, where a single running value (a strict order) it cannot vectorise.
const LANES: usize = 16;

#[inline(always)]
fn lanes_max(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = if v > *lane { v } else { *lane };
        }
    }
    let rest = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    lanes.into_iter().fold(rest, f32::max)
}

#[inline(always)]
fn lanes_sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    let rest: f32 = chunks.remainder().iter().sum();
    lanes.into_iter().sum::<f32>() + rest
}

#[inline(always)]
fn lanes_sum_squares(values: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = v.mul_add(v, *lane);
        }
    }
    let rest: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    lanes.into_iter().sum::<f32>() + rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_to_two_ulp() {
        let mut worst = 0f32;
        for i in -870_000..880_000 {
            let x = i as f32 / 10_000.0;
            let (ours, libm) = (exp(x), x.exp());
            worst = worst.max((ours - libm).abs() / libm);
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
    }

    #[test]
    fn gelu_matches_the_libm_formula() {
        let mut values: Vec<f32> = (-20_000..20_000).map(|i| i as f32 / 1000.0).collect();
        let expected: Vec<f32> = values
            .iter()
            .map(|&x| 0.5 * x * (1.0 + (0.797_884_6 * x * (1.0 + 0.044_715 * x * x)).tanh()))
            .collect();
        gelu_tanh(&mut values);
        for (got, want) in values.iter().zip(&expected) {
            assert!(
                (got - want).abs() <= 2e-6 * want.abs().max(1.0),
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_match_libm() {
        let (width, scale) = (577, 0.125);
        let mut values: Vec<f32> = (0..3 * width)
            .map(|i| ((i * 37) % 101) as f32 / 7.0 - 5.0)
            .collect();
        let expected: Vec<f32> = values
            .chunks(width)
            .flat_map(|row| {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let e = move |v: f32| ((v as f64 - max) * scale as f64).exp();
                let sum: f64 = row.iter().map(|&v| e(v)).sum();
                row.iter()
                    .map(move |&v| (e(v) / sum) as f32)
                    .collect::<Vec<_>>()
            })
            .collect();
        softmax_rows(&mut values, width, scale);
        for (got, want) in values.iter().zip(&expected) {
            assert!(
                (got - want).abs() <= 1e-6 * want.max(1e-3),
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn row_norm_matches_the_definition() {
        for width in [1, 5, 16, 17, 768] {
            let row: Vec<f32> = (0..width)
                .map(|i| ((i * 53) % 97) as f32 / 9.0 + 100.0)
                .collect();
            let gamma: Vec<f32> = (0..width).map(|i| 0.5 + (i % 7) as f32 / 10.0).collect();
            let beta: Vec<f32> = (0..width).map(|i| (i % 5) as f32 - 2.0).collect();
            let eps = 1e-6;
            let mut out = vec![0f32; width];
            RowNorm {
                gamma: &gamma,
                beta: &beta,
                eps,
            }
            .apply(&row, &mut out);
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / width as f64;
            let variance =
                row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / width as f64;
            for i in 0..width {
                let want = (row[i] as f64 - mean) / (variance + eps as f64).sqrt()
                    * gamma[i] as f64
                    + beta[i] as f64;
                assert!(
                    (out[i] as f64 - want).abs() <= 2e-5 * want.abs().max(1.0),
                    "width {width}, {i}: {} vs {want}",
                    out[i]
                );
            }
        }
    }
}
