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
        // writable ones at dst, so the row starts and every `add` below (offsets <= len) stay
        // in their allocations. Below `full` the accesses are whole 32-value chunks of the
        // row. The tail's loads are masked to its `tail` valid inputs and its store to their
        // even-rounded count (lanes outside a mask are not accessed); its second half starts
        // past the row when tail <= 16 (past the end of the buffer on the last row), hence
        // `wrapping_add`, and its mask is then zero.
        unsafe {
            let (s, d) = (src.add(r * ld_src), dst.add(r * ld_dst));
            for p in (0..full).step_by(32) {
                let packed =
                    _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s.add(p + 16)), _mm512_loadu_ps(s.add(p)));
                _mm512_storeu_si512(d.add(p).cast(), transmute::<__m512bh, __m512i>(packed));
            }
            if tail > 0 {
                let lo = _mm512_maskz_loadu_ps(tail_loads[0], s.add(full));
                let hi = _mm512_maskz_loadu_ps(tail_loads[1], s.add(full).wrapping_add(16));
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
                    // above), so the `add` to its start stays in the slice; the load is masked
                    // to the values of this half (lanes outside the mask are not accessed).
                    // With cols <= 16 the second half starts past them, possibly past the end
                    // of `src` (its last row), hence `wrapping_add`; its mask is then zero.
                    *row = unsafe {
                        let at = src.as_ptr().add(p * ld).wrapping_add(16 * half);
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
