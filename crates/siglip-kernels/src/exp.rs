//! Exponentials on AVX-512 vectors, and what attention and the MLP build on them: the
//! softmax's numerators and the tanh GELU. `2^t` is `2^n · p(f)`, with `n` the nearest
//! integer to `t`, `p` a polynomial for `2^f` on [-½, ½] and `vscalefps` for `2^n` (any `n`:
//! 2^-200 flushes to zero and 2^200 is +inf, so nothing is clamped). Each comes in two
//! accuracies: f32 (a degree-6 polynomial, 9.7e-8 relative) and, for bf16 products whose
//! rounding to bf16 (2^-8) hides it, a cubic (7.7e-5) with half the instructions.
//!
//! Whole vectors run unmasked and each row's tail is masked once: computing the masks of
//! every chunk was most of a loop's instructions.

use std::arch::x86_64::*;
use std::mem::transmute;

/// A cubic for `2^f` on [-½, ½], minimax-fitted for relative error (7.7e-5), highest power
/// first.
const EXP2_CUBIC: [f32; 4] = [0.055_088_684, 0.242_604_05, 0.693_276_2, 0.999_928_95];

/// A degree-6 polynomial for `2^f` on [-½, ½], fitted for relative error (9.7e-8 in f32
/// arithmetic), highest power first.
const EXP2_SEXTIC: [f32; 7] = [
    0.000_153_375_78,
    0.001_339_986,
    0.009_618_52,
    0.055_503_29,
    0.240_226_46,
    std::f32::consts::LN_2, // the fitted value rounds to it
    1.0,
];

/// `2^t` for 16 lanes, with the polynomial of N coefficients.
struct Exp2<const N: usize> {
    poly: [__m512; N],
}

impl<const N: usize> Exp2<N> {
    /// # Safety
    /// The CPU supports avx512f (the callers' target features, into which this is inlined).
    #[inline(always)]
    unsafe fn new(coefficients: [f32; N]) -> Self {
        // SAFETY: as promised by the caller.
        let poly = unsafe { coefficients.map(|v| _mm512_set1_ps(v)) };
        Self { poly }
    }

    /// # Safety
    /// As [`Exp2::new`].
    #[inline(always)]
    unsafe fn pow2(&self, t: __m512) -> __m512 {
        // SAFETY: as promised by the caller.
        unsafe {
            let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t);
            let f = _mm512_sub_ps(t, n);
            let mut p = self.poly[0];
            for &coefficient in &self.poly[1..] {
                p = _mm512_fmadd_ps(p, f, coefficient);
            }
            _mm512_scalef_ps(p, n)
        }
    }
}

/// The first `n` of 16 lanes.
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        0xFFFF
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// The largest of the `len` values at `s`.
///
/// # Safety
/// The CPU supports avx512f (inlined into the callers' target features); `len` values are
/// readable at `s`.
#[inline(always)]
unsafe fn row_max(s: *const f32, len: usize) -> f32 {
    let full = len / 16 * 16;
    // SAFETY: whole vectors below `full` <= len; `s + full` is at most one past the end, and
    // the tail's load is masked to the len - full valid values from there (none when
    // full == len; lanes outside the mask are not accessed).
    unsafe {
        let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
        for p in (0..full).step_by(16) {
            max = _mm512_max_ps(max, _mm512_loadu_ps(s.add(p)));
        }
        let tail = lanes(len - full);
        let v = _mm512_maskz_loadu_ps(tail, s.add(full));
        max = _mm512_mask_max_ps(max, tail, max, v);
        _mm512_reduce_max_ps(max)
    }
}

/// Attention's softmax numerators for one row of scores, ready for the bf16 product with V:
/// `e^((s - max)·scale)` of each of the `src.len()` scores, rounded to bf16 into `dst` (with
/// a zero after an odd-length row), and the sum of the unrounded values returned. One pass
/// for the exponential, the sum and the rounding.
///
/// # Safety
/// The CPU supports avx512f, avx512bw and avx512bf16.
///
/// # Panics
/// If `src` is empty or `dst` is shorter than `src.len()` rounded up to even.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn exp_row_to_bf16(src: &[f32], scale: f32, dst: &mut [u16]) -> f32 {
    let len = src.len();
    assert!(len > 0 && dst.len() >= len.next_multiple_of(2));
    let s = src.as_ptr();
    // SAFETY: `len` values at `s`.
    let max = unsafe { row_max(s, len) };
    // e^((s - max)·scale) = 2^t with t = s·c - max·c, c = scale·log2(e); t <= 0. (One FMA:
    // its cancellation costs about 1e-6 relative near the max, nothing against bf16.)
    let c = _mm512_set1_ps(scale * std::f32::consts::LOG2_E);
    let shift = _mm512_set1_ps(-max * scale * std::f32::consts::LOG2_E);
    // SAFETY: the CPU has avx512f (this function's contract).
    let exp = unsafe { Exp2::new(EXP2_CUBIC) };
    // Lanes outside the mask are zero: out of the sum, and the odd-length pad.
    macro_rules! exp_lanes {
        ($at:expr, $mask:expr) => {{
            let v = _mm512_maskz_loadu_ps($mask, $at);
            _mm512_maskz_mov_ps($mask, exp.pow2(_mm512_fmadd_ps(v, c, shift)))
        }};
    }
    let full = len / 32 * 32;
    let tail = [lanes(len - full), lanes((len - full).saturating_sub(16))];
    let mut sums = [_mm512_setzero_ps(); 2];
    let d = dst.as_mut_ptr();
    // 32 scores at a time: one two-vector conversion and one store.
    for p in (0..full).step_by(32) {
        // SAFETY: p + 32 <= full <= len values to read and to write.
        unsafe {
            let e = [
                exp_lanes!(s.add(p), 0xFFFF),
                exp_lanes!(s.add(p + 16), 0xFFFF),
            ];
            sums[0] = _mm512_add_ps(sums[0], e[0]);
            sums[1] = _mm512_add_ps(sums[1], e[1]);
            let rounded = _mm512_cvtne2ps_pbh(e[1], e[0]);
            _mm512_storeu_si512(d.add(p).cast(), transmute::<__m512bh, __m512i>(rounded));
        }
    }
    if full < len {
        // SAFETY: full < len, so `s + full` and `d + full` are inside `src` and `dst`. The
        // loads are masked to the valid values from `full`; the store to their count rounded
        // up to even, which `dst` holds (asserted above); lanes outside a mask are not
        // accessed. When len - full <= 16 the second half starts past the end of `src`, hence
        // `wrapping_add`, and its mask is zero.
        unsafe {
            let e = [
                exp_lanes!(s.add(full), tail[0]),
                exp_lanes!(s.add(full).wrapping_add(16), tail[1]),
            ];
            sums[0] = _mm512_add_ps(sums[0], e[0]);
            sums[1] = _mm512_add_ps(sums[1], e[1]);
            let rounded = _mm512_cvtne2ps_pbh(e[1], e[0]);
            let stored = (len - full).next_multiple_of(2); // 2..=32
            _mm512_mask_storeu_epi16(
                d.add(full).cast(),
                u32::MAX >> (32 - stored),
                transmute::<__m512bh, __m512i>(rounded),
            );
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(sums[0], sums[1]))
}

/// Attention's softmax numerators in f32, in place: `e^((v - max)·scale)` of each value of
/// `row`, and their sum returned. `(v - max)·scale` is rounded once (no cancellation near
/// the max), then the degree-6 polynomial.
///
/// # Safety
/// The CPU supports avx512f.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn exp_row_in_place(row: &mut [f32], scale: f32) -> f32 {
    let len = row.len();
    let s = row.as_mut_ptr();
    // SAFETY: `len` values at `s`.
    let max = _mm512_set1_ps(unsafe { row_max(s, len) });
    let c = _mm512_set1_ps(scale * std::f32::consts::LOG2_E);
    // SAFETY: the CPU has avx512f (this function's contract).
    let exp = unsafe { Exp2::new(EXP2_SEXTIC) };
    let full = len / 16 * 16;
    let mut sum = _mm512_setzero_ps();
    for p in (0..full).step_by(16) {
        // SAFETY: p + 16 <= full <= len values to read and write.
        unsafe {
            let t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(s.add(p)), max), c);
            let e = exp.pow2(t);
            sum = _mm512_add_ps(sum, e);
            _mm512_storeu_ps(s.add(p), e);
        }
    }
    if full < len {
        let mask = lanes(len - full);
        // SAFETY: full < len, so `s + full` is in the row; the load and the store are masked
        // to the len - full valid values from there (lanes outside the mask are not accessed).
        unsafe {
            let v = _mm512_maskz_loadu_ps(mask, s.add(full));
            let e = _mm512_maskz_mov_ps(mask, exp.pow2(_mm512_mul_ps(_mm512_sub_ps(v, max), c)));
            sum = _mm512_add_ps(sum, e);
            _mm512_mask_storeu_ps(s.add(full), mask, e);
        }
    }
    _mm512_reduce_add_ps(sum)
}

/// The tanh GELU in place, in f32 accuracy (about 2e-7 relative): `x · σ(2u)` with
/// `u = √(2/π)(x + 0.044715x³)` (the same function as `0.5x(1 + tanh u)`), the degree-6
/// polynomial for `e^{-2u}`, and `vrcp14ps` refined by one Newton step instead of a division.
/// Below the AVX-512 level, the portable one ([`crate::activations::gelu_tanh_one_thread`],
/// about 1e-7 absolute), compiled for that level.
///
/// # Panics
/// If the AVX-512 level is active on a CPU without avx512f (it cannot be).
pub fn gelu_tanh_f32(values: &mut [f32]) {
    if crate::isa::active() < crate::CpuIsa::Avx512 {
        return crate::activations::gelu_tanh_one_thread(values);
    }
    assert!(is_x86_feature_detected!("avx512f"), "needs AVX-512");
    // SAFETY: the CPU has avx512f (asserted above).
    unsafe { gelu_tanh_avx512(values, EXP2_SEXTIC, true) }
}

/// The tanh GELU in place, for products in bf16: as [`gelu_tanh_f32`] with the cubic and the
/// bare `vrcp14ps` (2^-14). The next product rounds its outputs to bf16, which hides both.
///
/// # Panics
/// If the CPU lacks avx512f.
pub fn gelu_tanh_for_bf16(values: &mut [f32]) {
    assert!(is_x86_feature_detected!("avx512f"), "needs AVX-512");
    // SAFETY: the CPU has avx512f (asserted above).
    unsafe { gelu_tanh_avx512(values, EXP2_CUBIC, false) }
}

/// The GELU loop of [`gelu_tanh_f32`] and [`gelu_tanh_for_bf16`].
///
/// # Safety
/// The CPU supports avx512f.
#[target_feature(enable = "avx512f")]
unsafe fn gelu_tanh_avx512<const N: usize>(values: &mut [f32], poly: [f32; N], newton: bool) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    // e^{-2u} = 2^t with t = x · (a + b·x²).
    let a = _mm512_set1_ps(-2.0 * std::f32::consts::LOG2_E * SQRT_2_OVER_PI);
    let b = _mm512_set1_ps(-2.0 * std::f32::consts::LOG2_E * SQRT_2_OVER_PI * 0.044_715);
    let (one, infinity) = (_mm512_set1_ps(1.0), _mm512_set1_ps(f32::INFINITY));
    // SAFETY: the CPU has avx512f (this function's contract).
    let exp = unsafe { Exp2::new(poly) };
    let len = values.len();
    let at = values.as_mut_ptr();
    // Very negative x: e^{-2u} is +inf, its reciprocal 0 and the GELU -0.
    macro_rules! gelu {
        ($x:expr) => {{
            let x = $x;
            let t = _mm512_mul_ps(x, _mm512_fmadd_ps(_mm512_mul_ps(x, x), b, a));
            let d = _mm512_add_ps(exp.pow2(t), one);
            let mut r = _mm512_rcp14_ps(d);
            if newton {
                // r + r(1 - d·r): the reciprocal's 2^-14 error squared. Not where d is +inf
                // (r is 0 there, and inf·0 would make it NaN).
                let finite = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(d, infinity);
                r = _mm512_mask_fmadd_ps(r, finite, _mm512_fnmadd_ps(d, r, one), r);
            }
            _mm512_mul_ps(x, r)
        }};
    }
    let full = len / 16 * 16;
    for p in (0..full).step_by(16) {
        // SAFETY: p + 16 <= full <= len.
        unsafe { _mm512_storeu_ps(at.add(p), gelu!(_mm512_loadu_ps(at.add(p)))) };
    }
    if full < len {
        let mask = lanes(len - full);
        // SAFETY: full < len, so `at + full` is in `values`; the load and the store are masked
        // to the len - full values from there (lanes outside the mask are not accessed).
        unsafe {
            let y = gelu!(_mm512_maskz_loadu_ps(mask, at.add(full)));
            _mm512_mask_storeu_ps(at.add(full), mask, y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bf16_to_f32, cpu_supports, Dtype};

    /// The tanh GELU in f64, written as `x·σ(2u)` so that f64 keeps the tiny negative tail,
    /// and `t = -2u·log2(e)`, the exponent the kernels compute in f32.
    fn gelu_f64(x: f32) -> (f64, f64) {
        let x = x as f64;
        let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3));
        (
            x / (1.0 + (-2.0 * u).exp()),
            -2.0 * u * std::f64::consts::LOG2_E,
        )
    }

    #[test]
    fn both_gelus_are_the_tanh_gelu() {
        if !cpu_supports(Dtype::Bf16) {
            eprintln!("skipped: no AVX-512 bf16 kernels on this CPU");
            return;
        }
        // -30..30 in steps of 0.0123, the ends of f32, and a tail of 7 (not a multiple of 16).
        let mut values: Vec<f32> = (0..4887).map(|i| -30.0 + i as f32 * 0.0123).collect();
        values.extend([-3.0e38, -1.0e4, 1.0e4, 3.0e38, 0.0, -0.0, 1e-30]);
        // Relative bounds: f32, the polynomial's 9.7e-8 and the Newton step's 2^-28; bf16, the
        // cubic's 7.7e-5 and vrcp14ps' 2^-14. Both also carry the f32 rounding of the exponent
        // t (a few 2^-24 of |t|, times ln 2), as any f32 GELU does.
        type Gelu = fn(&mut [f32]);
        let gelus: [(Gelu, f64); 2] = [(gelu_tanh_f32, 3e-7), (gelu_tanh_for_bf16, 2e-4)];
        for (gelu, base) in gelus {
            let mut got = values.clone();
            gelu(&mut got);
            for (&x, &y) in values.iter().zip(&got) {
                let (want, t) = gelu_f64(x);
                let bound = base + 1.5e-7 * t.abs().min(1e4);
                let error = (y as f64 - want).abs() / want.abs().max(1e-30);
                assert!(
                    error <= bound || want == 0.0 && y == 0.0,
                    "gelu({x}) = {y}, want {want}"
                );
            }
            let mut nan = [f32::NAN];
            gelu(&mut nan);
            assert!(nan[0].is_nan());
        }
    }

    /// Scores from -85 to 85 (attention's scale makes that ±10.6), `len` of them.
    fn scores(len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 1.7)
            .collect()
    }

    #[test]
    fn exp_row_in_place_is_the_softmax_numerator() {
        if crate::isa::active() < crate::CpuIsa::Avx512 {
            eprintln!("skipped: the AVX-512 level is not active");
            return;
        }
        let scale = 0.125;
        // Every tail width, 1..=16 past a multiple of 32 among them (72: so400m's head width).
        for len in (1..=40).chain([63, 64, 72, 577]) {
            let scores = scores(len);
            let max = scores.iter().copied().fold(f32::MIN, f32::max) as f64;
            let mut row = scores.clone();
            // SAFETY: the CPU has avx512f (checked above).
            let sum = unsafe { exp_row_in_place(&mut row, scale) };
            let mut want_sum = 0f64;
            for (i, (&s, &got)) in scores.iter().zip(&row).enumerate() {
                let want = ((s as f64 - max) * scale as f64).exp();
                want_sum += want;
                // The polynomial's 9.7e-8 and a few roundings, plus the rounding of the
                // exponent itself (2^-24 of |x|, so 6e-8·|x| of the result: libm's expf on
                // the same f32 argument has it too).
                let error = (got as f64 - want).abs() / want;
                let bound = 3e-7 + 9e-8 * want.ln().abs();
                assert!(error <= bound, "{len}: e[{i}] {got} vs {want}");
            }
            assert!(
                (sum as f64 - want_sum).abs() <= want_sum * 1e-6,
                "{len}: sum {sum} vs {want_sum}"
            );
        }
    }

    #[test]
    fn exp_row_to_bf16_is_the_rounded_softmax_numerator() {
        if !cpu_supports(Dtype::Bf16) {
            eprintln!("skipped: no AVX-512 bf16 kernels on this CPU");
            return;
        }
        let scale = 0.125;
        // Every tail width, 1..=16 past a multiple of 32 among them (72: so400m's head width).
        for len in (1..=40).chain([63, 64, 72, 577]) {
            let scores = scores(len);
            let max = scores.iter().copied().fold(f32::MIN, f32::max) as f64;
            // Sentinels: only the row and its even pad may be written.
            let mut dst = vec![0xFFFFu16; len + 40];
            // SAFETY: the CPU has the bf16 kernels (checked above).
            let sum = unsafe { exp_row_to_bf16(&scores, scale, &mut dst) };
            let mut want_sum = 0f64;
            for (i, &s) in scores.iter().enumerate() {
                let want = ((s as f64 - max) * scale as f64).exp();
                want_sum += want;
                let got = bf16_to_f32(dst[i]) as f64;
                // Rounding to bf16 (2^-8 relative at most) plus the cubic's 7.7e-5.
                assert!(
                    (got - want).abs() <= want * 4.0e-3,
                    "{len}: e[{i}] {got} vs {want}"
                );
            }
            let pad = len.next_multiple_of(2);
            assert!(dst[len..pad].iter().all(|&p| p == 0), "{len}: pad not zero");
            assert!(
                dst[pad..].iter().all(|&p| p == 0xFFFF),
                "{len}: wrote past the pad"
            );
            assert!(
                (sum as f64 - want_sum).abs() <= want_sum * 1e-4,
                "{len}: sum {sum} vs {want_sum}"
            );
        }
    }
}
