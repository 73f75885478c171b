//! The output-tile epilogue shared by the f32 and bf16 microkernels: adds the bias on the
//! first k block, and the previous partial sums on later ones (or a residual on the first),
//! and stores with column masks.

use std::arch::x86_64::*;

use super::NR;

/// Where a microkernel call writes its ROWS×NR (or ROWS×cols) tile of the output.
pub(super) struct OutTile {
    /// Top-left output element.
    pub(super) c: *mut f32,
    /// Output row stride, in elements.
    pub(super) ldc: usize,
    /// Valid columns in this tile, 1..=NR.
    pub(super) cols: usize,
    /// `bias[j0..]` for the tile's first column, added once (with the first k block), or null.
    pub(super) bias: *const f32,
    /// Added to the tile, or null: the output itself on every k block after the first (the
    /// partial sums so far); on the first, a residual the product adds onto, if any.
    pub(super) addend: *const f32,
    /// Row stride of `addend`, in elements.
    pub(super) ld_addend: usize,
}

/// Lane masks for the two 16-column halves of a tile with `cols` valid columns.
fn column_masks(cols: usize) -> [__mmask16; 2] {
    let lanes = |n: usize| {
        if n >= 16 {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    };
    [lanes(cols), lanes(cols.saturating_sub(16))]
}

/// Starts fetching the output tile into L1 so the epilogue's loads do not wait on memory.
///
/// # Safety
/// Only computes addresses inside the tile described by `out` (prefetches never fault).
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn prefetch<const ROWS: usize>(out: &OutTile) {
    if !out.addend.is_null() {
        for r in 0..ROWS {
            // SAFETY: row r < ROWS of the tile; a prefetch does not access memory architecturally.
            unsafe {
                let row = out.addend.add(r * out.ld_addend);
                _mm_prefetch::<_MM_HINT_T0>(row.cast());
                _mm_prefetch::<_MM_HINT_T0>(row.add(out.cols - 1).cast());
            }
        }
    }
}

/// Writes the accumulators `acc` (row r, half h = columns 16h..16h+16) to `out`.
///
/// # Safety
/// The CPU supports avx512f; `out.c` addresses ROWS rows (stride `out.ldc`) of `out.cols`
/// writable f32s; `out.addend`, when not null, as many readable ones (stride `out.ld_addend`;
/// it may be `out.c` itself); `out.bias`, when not null, `out.cols` readable f32s.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn store<const ROWS: usize>(acc: &[[__m512; 2]; ROWS], out: &OutTile) {
    debug_assert!(out.cols >= 1 && out.cols <= NR);
    let masks = column_masks(out.cols);
    let full = out.cols == NR;
    let bias = if out.bias.is_null() {
        [_mm512_setzero_ps(); 2]
    } else {
        // SAFETY: `bias` holds `cols` readable values; masked lanes are not touched.
        unsafe {
            [
                _mm512_maskz_loadu_ps(masks[0], out.bias),
                _mm512_maskz_loadu_ps(masks[1], out.bias.add(16)),
            ]
        }
    };
    for (r, row) in acc.iter().enumerate() {
        for (h, &v) in row.iter().enumerate() {
            // SAFETY: row r < ROWS and columns 16h.. under the mask lie inside the tile.
            unsafe {
                let dst = out.c.add(r * out.ldc + 16 * h);
                let mut sum = _mm512_add_ps(v, bias[h]);
                if !out.addend.is_null() {
                    let src = out.addend.add(r * out.ld_addend + 16 * h);
                    let held = if full {
                        _mm512_loadu_ps(src)
                    } else {
                        _mm512_maskz_loadu_ps(masks[h], src)
                    };
                    sum = _mm512_add_ps(sum, held);
                }
                if full {
                    _mm512_storeu_ps(dst, sum);
                } else {
                    _mm512_mask_storeu_ps(dst, masks[h], sum);
                }
            }
        }
    }
}
