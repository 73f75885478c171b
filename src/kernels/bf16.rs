//! The bf16 microkernel (`vdpbf16ps`): a ROWS×32 f32 tile (ROWS ≤ 14) in 2·ROWS zmm
//! accumulators; each step consumes two adjacent k, broadcasting one bf16 pair of x per row
//! (as a 32-bit lane) against a W panel row laid out [NR][2]. Also the row rounding of x to bf16.

use std::arch::x86_64::*;
use std::mem::transmute;

use super::tile::{prefetch, store, OutTile};
use super::{MR, NR};

/// The left operand of one microkernel call: ROWS rows of bf16 x at `a`, row stride `lda`
/// (even), each row holding an even number of values (zero-padded).
pub(super) struct LhsRows {
    pub(super) a: *const u16,
    pub(super) lda: usize,
}

/// A microkernel specialised for its row count.
pub(super) type Kernel = unsafe fn(&LhsRows, *const u16, usize, &OutTile);

/// `KERNELS[r - 1]` computes a tile of r rows.
pub(super) const KERNELS: [Kernel; MR] = [
    kernel::<1>,
    kernel::<2>,
    kernel::<3>,
    kernel::<4>,
    kernel::<5>,
    kernel::<6>,
    kernel::<7>,
    kernel::<8>,
    kernel::<9>,
    kernel::<10>,
    kernel::<11>,
    kernel::<12>,
    kernel::<13>,
    kernel::<14>,
];

/// out[r, c] (+)= Σ_{p<2·pairs} lhs[r, p] · panel[p, c] for r < ROWS, c < out.cols.
///
/// # Safety
/// The CPU supports avx512f and avx512bf16; `lhs` addresses ROWS rows of `2·pairs` readable
/// u16s; `panel` addresses `pairs` rows of 2·NR readable u16s; `out` as required by [`store`].
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn kernel<const ROWS: usize>(lhs: &LhsRows, panel: *const u16, pairs: usize, out: &OutTile) {
    // SAFETY: forwarded from this function's contract.
    unsafe { prefetch::<ROWS>(out) };
    let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
    for p2 in 0..pairs {
        // SAFETY: p2 < pairs keeps every read inside the ranges promised above; the transmutes
        // reinterpret 512 bits of bf16 data as the 512-bit bf16 vector type.
        unsafe {
            let w = panel.add(p2 * 2 * NR);
            let w0: __m512bh = transmute(_mm512_loadu_si512(w.cast()));
            let w1: __m512bh = transmute(_mm512_loadu_si512(w.add(NR).cast()));
            macro_rules! step {
                ($r:literal) => {
                    if $r < ROWS {
                        let pair = lhs
                            .a
                            .add($r * lhs.lda + 2 * p2)
                            .cast::<i32>()
                            .read_unaligned();
                        let x: __m512bh = transmute(_mm512_set1_epi32(pair));
                        acc[$r][0] = _mm512_dpbf16_ps(acc[$r][0], x, w0);
                        acc[$r][1] = _mm512_dpbf16_ps(acc[$r][1], x, w1);
                    }
                };
            }
            for_each_row!(step);
        }
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { store(&acc, out) }
}

/// Rounds `rows` rows of `len` f32s (at `src`, row stride `ld_src`) to bf16 (round to nearest
/// even) into `dst` (row stride `ld_dst`), writing a zero after an odd-length row.
///
/// # Safety
/// The CPU supports avx512f, avx512bw and avx512bf16; `src` addresses `rows` rows of `len`
/// readable f32s; `dst` addresses `rows` rows of `len` rounded up to even writable u16s.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn round_rows(
    src: *const f32,
    ld_src: usize,
    rows: usize,
    len: usize,
    dst: *mut u16,
    ld_dst: usize,
) {
    let lanes = |n: usize| {
        if n >= 16 {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    };
    // Whole chunks of 32 unmasked; the masks of the tail computed once.
    let full = len / 32 * 32;
    let tail = len - full;
    let tail_loads = [lanes(tail), lanes(tail.saturating_sub(16))];
    let tail_store = u32::MAX >> (32 - tail.next_multiple_of(2).max(2));
    for r in 0..rows {
        // SAFETY: row r holds `len` readable values at src and `len` rounded up to even
        // writable ones at dst; loads past `full` are masked to the `tail` valid inputs and
        // the store to their even-rounded count.
        unsafe {
            let (s, d) = (src.add(r * ld_src), dst.add(r * ld_dst));
            for p in (0..full).step_by(32) {
                let packed =
                    _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s.add(p + 16)), _mm512_loadu_ps(s.add(p)));
                _mm512_storeu_si512(d.add(p).cast(), transmute::<__m512bh, __m512i>(packed));
            }
            if tail > 0 {
                let lo = _mm512_maskz_loadu_ps(tail_loads[0], s.add(full));
                let hi = _mm512_maskz_loadu_ps(tail_loads[1], s.add(full + 16));
                let packed = transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_mask_storeu_epi16(d.add(full).cast(), tail_store, packed);
            }
        }
    }
}

/// Rounds a panel to bf16 (round to nearest even) in the pair-interleaved layout
/// [pairs][NR][2] that [`kernel`] reads. Panel row p < k is the `cols` values at `src[p·ld..]`;
/// the pad row of an odd k and the columns from `cols` on are zero.
///
/// # Safety
/// The CPU supports avx512f, avx512bw and avx512bf16.
///
/// # Panics
/// If `src` is too short for k rows, `dst` is not `ceil(k/2)·2·NR` long, or `cols > NR`.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn round_panel(src: &[f32], ld: usize, k: usize, cols: usize, dst: &mut [u16]) {
    assert!(cols <= NR && dst.len() == k.div_ceil(2) * 2 * NR);
    assert!(
        k == 0 || (k - 1) * ld + cols <= src.len(),
        "panel source too short"
    );
    let lanes = |n: usize| -> __mmask16 {
        if n >= 16 {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    };
    let masks = [lanes(cols), lanes(cols.saturating_sub(16))];
    for (p2, out) in dst.chunks_exact_mut(2 * NR).enumerate() {
        for (half, &mask) in masks.iter().enumerate() {
            // Rows 2·p2 and 2·p2 + 1, 16 values from column 16·half each, as bf16; zero past
            // `cols` and for the pad row. (A loop, not a closure, to keep the target features.)
            let mut rows = [_mm256_setzero_si256(); 2];
            for (i, row) in rows.iter_mut().enumerate() {
                let p = 2 * p2 + i;
                if p < k {
                    // SAFETY: row p < k starts inside `src` and holds `cols` values (asserted
                    // above); the load is masked to them.
                    *row = unsafe {
                        let at = src.as_ptr().add(p * ld + 16 * half);
                        let rounded = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, at));
                        transmute::<__m256bh, __m256i>(rounded)
                    };
                }
            }
            let pairs = _mm512_or_si512(
                _mm512_cvtepu16_epi32(rows[0]),
                _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(rows[1])),
            );
            // SAFETY: `out` holds 2·NR u16, so the 32-wide store at 32·half is in bounds.
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(32 * half).cast(), pairs) };
        }
    }
}

/// Attention's softmax numerators for one row of scores, ready for the product with V:
/// `e^((s - max)·scale)` of each of the `src.len()` scores, rounded to bf16 into `dst` (with
/// a zero after an odd-length row), and the sum of the unrounded values returned.
///
/// The exponential is `2^n · p(f)` with `p` a cubic for `2^f` on [-½, ½] (relative error
/// 7.7e-5, far below the 2^-8 of the rounding to bf16 that follows) and `vscalefps` for `2^n`: about half the
/// instructions of the f32 path's exponential, and no separate passes for the sum and the
/// rounding.
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
    let lanes = |n: usize| -> __mmask16 {
        if n >= 16 {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    };
    let s = src.as_ptr();
    let full = len / 32 * 32;
    let tail = [lanes(len - full), lanes((len - full).saturating_sub(16))];
    let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
    for p in (0..full).step_by(16) {
        // SAFETY: p + 16 <= full <= len.
        max = _mm512_max_ps(max, unsafe { _mm512_loadu_ps(s.add(p)) });
    }
    for (h, &mask) in tail.iter().enumerate() {
        // SAFETY: the load is masked to the valid values from full + 16·h.
        let v = unsafe { _mm512_maskz_loadu_ps(mask, s.add(full + 16 * h)) };
        max = _mm512_mask_max_ps(max, mask, max, v);
    }
    let max = _mm512_reduce_max_ps(max);
    // e^((s - max)·scale) = 2^t with t = s·c - max·c, c = scale·log2(e); t <= 0.
    let c = _mm512_set1_ps(scale * std::f32::consts::LOG2_E);
    let shift = _mm512_set1_ps(-max * scale * std::f32::consts::LOG2_E);
    // SAFETY: the CPU has avx512f (this function's contract).
    let exp = unsafe { Exp2::new() };
    // SAFETY (for the macro's uses): the lanes of `mask` at `at` are readable.
    macro_rules! exp_lanes {
        ($at:expr, $mask:expr) => {{
            let v = _mm512_maskz_loadu_ps($mask, $at);
            _mm512_maskz_mov_ps($mask, exp.pow2(_mm512_fmadd_ps(v, c, shift)))
        }};
    }
    let mut sums = [_mm512_setzero_ps(); 2];
    let d = dst.as_mut_ptr();
    // 32 scores at a time: one two-vector conversion and one store; whole chunks unmasked.
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
        // SAFETY: the loads are masked to the valid values from `full`; the store to their
        // count rounded up to even, which `dst` holds (asserted above). Masked-off lanes are
        // zero: out of the sum, and the odd-length pad.
        unsafe {
            let e = [
                exp_lanes!(s.add(full), tail[0]),
                exp_lanes!(s.add(full + 16), tail[1]),
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
    let sum = _mm512_add_ps(sums[0], sums[1]);
    _mm512_reduce_add_ps(sum)
}

/// `2^t` for 16 lanes: `2^n · p(f)` with `n` the nearest integer to t, `p` the cubic
/// [`EXP2_CUBIC`] and `vscalefps` for `2^n` (any n: 2^-200 flushes to zero, 2^200 is +inf;
/// no clamp needed).
struct Exp2 {
    poly: [__m512; 4],
}

impl Exp2 {
    /// # Safety
    /// The CPU supports avx512f (the callers' target features, into which this is inlined).
    #[inline(always)]
    unsafe fn new() -> Self {
        let [p3, p2, p1, p0] = EXP2_CUBIC;
        // SAFETY: as promised by the caller.
        let poly = unsafe { [p3, p2, p1, p0].map(|v| _mm512_set1_ps(v)) };
        Self { poly }
    }

    /// # Safety
    /// The CPU supports avx512f (the callers' target features, into which this is inlined).
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

/// The tanh GELU in place, for products in bf16: `x · σ(2u)` with `u = √(2/π)(x + 0.044715x³)`
/// (the same function as `0.5x(1 + tanh u)`), with `e^{-2u}` computed as in
/// [`exp_row_to_bf16`] and the reciprocal by `vrcp14ps` (relative error 2^-14). Its outputs
/// are rounded to bf16 by the next product, so this costs nothing visible against the f32
/// path's 1e-7, and it takes about half the instructions and no division.
///
/// # Panics
/// If the CPU lacks avx512f (the bf16 products that call it need more than that).
pub fn gelu_tanh_for_bf16(values: &mut [f32]) {
    assert!(is_x86_feature_detected!("avx512f"), "needs AVX-512");
    // SAFETY: the CPU has avx512f (asserted above).
    unsafe { gelu_tanh_avx512(values) }
}

/// [`gelu_tanh_for_bf16`]'s loop.
///
/// # Safety
/// The CPU supports avx512f.
#[target_feature(enable = "avx512f")]
unsafe fn gelu_tanh_avx512(values: &mut [f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    // e^{-2u} = 2^t with t = x · (a + b·x²).
    let a = _mm512_set1_ps(-2.0 * std::f32::consts::LOG2_E * SQRT_2_OVER_PI);
    let b = _mm512_set1_ps(-2.0 * std::f32::consts::LOG2_E * SQRT_2_OVER_PI * 0.044_715);
    let one = _mm512_set1_ps(1.0);
    // SAFETY: the CPU has avx512f (this function's contract).
    let exp = unsafe { Exp2::new() };
    let len = values.len();
    let at = values.as_mut_ptr();
    // Very negative x: e^{-2u} is +inf, its reciprocal 0 and the GELU -0.
    macro_rules! gelu {
        ($x:expr) => {{
            let x = $x;
            let t = _mm512_mul_ps(x, _mm512_fmadd_ps(_mm512_mul_ps(x, x), b, a));
            _mm512_mul_ps(x, _mm512_rcp14_ps(_mm512_add_ps(exp.pow2(t), one)))
        }};
    }
    let full = len / 16 * 16;
    for p in (0..full).step_by(16) {
        // SAFETY: p + 16 <= full <= len.
        unsafe { _mm512_storeu_ps(at.add(p), gelu!(_mm512_loadu_ps(at.add(p)))) };
    }
    if full < len {
        let mask = ((1u32 << (len - full)) - 1) as __mmask16;
        // SAFETY: the load and the store are masked to the values from `full`.
        unsafe {
            let y = gelu!(_mm512_maskz_loadu_ps(mask, at.add(full)));
            _mm512_mask_storeu_ps(at.add(full), mask, y);
        }
    }
}

/// A cubic for `2^f` on [-½, ½], minimax-fitted for relative error (7.7e-5), highest power
/// first.
const EXP2_CUBIC: [f32; 4] = [0.055_088_684, 0.242_604_05, 0.693_276_2, 0.999_928_95];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{bf16_to_f32, cpu_supports, Precision};

    #[test]
    fn gelu_tanh_for_bf16_is_the_tanh_gelu() {
        if !cpu_supports(Precision::Bf16) {
            eprintln!("skipped: no AVX-512 bf16 kernels on this CPU");
            return;
        }
        // -30..30 in steps of 0.0123, the ends of f32, and a tail of 7 (not a multiple of 16).
        let mut values: Vec<f32> = (0..4887).map(|i| -30.0 + i as f32 * 0.0123).collect();
        values.extend([-3.0e38, -1.0e4, 1.0e4, 3.0e38, 0.0, -0.0, 1e-30]);
        let mut got = values.clone();
        gelu_tanh_for_bf16(&mut got);
        for (&x, &y) in values.iter().zip(&got) {
            let x64 = x as f64;
            let u = (2.0 / std::f64::consts::PI).sqrt() * (x64 + 0.044715 * x64.powi(3));
            // 0.5x(1 + tanh u), written so that f64 keeps the tiny negative tail.
            let want = x64 / (1.0 + (-2.0 * u).exp());
            // The cubic's 7.7e-5 and the reciprocal's 2^-14, relative to the sigmoid.
            assert!(
                (y as f64 - want).abs() <= 2e-4 * want.abs() + 1e-30,
                "gelu({x}) = {y}, want {want}"
            );
        }
        let mut nan = [f32::NAN];
        gelu_tanh_for_bf16(&mut nan);
        assert!(nan[0].is_nan());
    }

    #[test]
    fn exp_row_to_bf16_is_the_rounded_softmax_numerator() {
        if !cpu_supports(Precision::Bf16) {
            eprintln!("skipped: no AVX-512 bf16 kernels on this CPU");
            return;
        }
        let scale = 0.125;
        for len in [1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 577] {
            let scores: Vec<f32> = (0..len)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 1.7)
                .collect();
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
