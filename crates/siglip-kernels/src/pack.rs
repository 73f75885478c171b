//! Packing: the right-hand matrix into NR-column panels (once, e.g. at weight-load time),
//! bf16 rounding, and the 64-byte aligned buffer the panels live in.

use super::{Dtype, NR};

/// Element types that may live in an [`AlignedBuf`]: plain numbers, any bit pattern valid.
pub(super) trait Plain: Copy + Default + 'static {}
impl Plain for f32 {}
impl Plain for u16 {}

/// One cache line; the unit of allocation of [`AlignedBuf`].
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A zero-initialised buffer of `len` elements of `T`, starting on a cache-line boundary
/// so that every 64-byte panel row is a single aligned vector load.
pub(super) struct AlignedBuf<T: Plain> {
    lines: Vec<Line>,
    len: usize,
    _elem: std::marker::PhantomData<T>,
}

impl<T: Plain> AlignedBuf<T> {
    /// Allocates `len` zeroed elements.
    pub(super) fn zeroed(len: usize) -> Self {
        let bytes = len * std::mem::size_of::<T>();
        Self {
            lines: vec![Line([0; 64]); bytes.div_ceil(64)],
            len,
            _elem: std::marker::PhantomData,
        }
    }

    /// The elements, read-only.
    pub(super) fn as_slice(&self) -> &[T] {
        // SAFETY: `lines` owns at least `len * size_of::<T>()` initialised bytes, aligned to 64
        // (>= align_of::<T>()), and every bit pattern is a valid `T` (the `Plain` bound).
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<T>(), self.len) }
    }

    /// The elements, writable.
    pub(super) fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`; the `&mut self` borrow makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<T>(), self.len) }
    }
}

/// Rounds an f32 to bf16 bits, round-to-nearest-even, with the same conventions as
/// `vcvtne2ps2bf16`: subnormal inputs become (signed) zero and NaNs stay quiet NaNs.
pub fn f32_to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x0040) as u16;
    }
    if x.is_subnormal() {
        return ((bits >> 16) & 0x8000) as u16;
    }
    let rounding = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// The value of bf16 bits as an f32.
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Where element (j, p) of the n×k right-hand matrix is found in the caller's slice.
#[derive(Clone, Copy)]
pub(super) struct RhsView<'a> {
    pub(super) w: &'a [f32],
    pub(super) row_stride: usize,
    pub(super) col_stride: usize,
}

/// Number of NR-column panels needed for `n` columns.
pub(super) fn panel_count(n: usize) -> usize {
    n.div_ceil(NR)
}

/// Elements one panel occupies: f32 panels are [k][NR]; bf16 panels are [ceil(k/2)][NR][2]
/// (pairs of adjacent k interleaved, the operand layout of `vdpbf16ps`).
pub(super) fn panel_len(k: usize, dtype: Dtype) -> usize {
    match dtype {
        Dtype::F32 => k * NR,
        Dtype::Bf16 => k.div_ceil(2) * 2 * NR,
    }
}

/// Copies columns j0..j0+cols of W into the first k rows of an f32 panel [..][NR]
/// (other columns and rows untouched).
fn fill_panel(w: RhsView, j0: usize, cols: usize, k: usize, panel: &mut [f32]) {
    if w.row_stride == 1 {
        // Columns of W are contiguous (e.g. V used as Wᵀ): each panel row is one copy.
        for (p, row) in panel.chunks_exact_mut(NR).take(k).enumerate() {
            row[..cols].copy_from_slice(&w.w[p * w.col_stride + j0..][..cols]);
        }
    } else if w.col_stride == 1 {
        // Rows of W are contiguous (e.g. a Linear weight, or K): read each row once.
        for c in 0..cols {
            let src = &w.w[(j0 + c) * w.row_stride..][..k];
            for (row, &v) in panel.chunks_exact_mut(NR).zip(src) {
                row[c] = v;
            }
        }
    } else {
        for c in 0..cols {
            let src = w.w[(j0 + c) * w.row_stride..]
                .iter()
                .step_by(w.col_stride.max(1));
            for (row, &v) in panel.chunks_exact_mut(NR).zip(src.take(k)) {
                row[c] = v;
            }
        }
    }
}

/// Packs W (n×k) into f32 panels; columns past `n` are zero.
pub(super) fn pack_f32(w: RhsView, n: usize, k: usize) -> AlignedBuf<f32> {
    let len = panel_len(k, Dtype::F32);
    let mut buf = AlignedBuf::zeroed(panel_count(n) * len);
    for (q, panel) in buf.as_mut_slice().chunks_exact_mut(len.max(1)).enumerate() {
        fill_panel(w, q * NR, (n - q * NR).min(NR), k, panel);
    }
    buf
}

/// Packs W (n×k) into bf16 pair-interleaved panels; columns past `n` and the odd-k pad are zero.
///
/// Requires avx512f, avx512bw and avx512bf16 (checked by the caller).
pub(super) fn pack_bf16(w: RhsView, n: usize, k: usize) -> AlignedBuf<u16> {
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("bf16 packing without the kernels ({n}×{k}, {})", w.w.len());
    #[cfg(target_arch = "x86_64")]
    {
        let len = panel_len(k, Dtype::Bf16);
        let mut buf = AlignedBuf::zeroed(panel_count(n) * len);
        let panels = buf.as_mut_slice().chunks_exact_mut(len.max(1)).enumerate();
        if w.row_stride == 1 {
            // Panel rows are contiguous in W (V used as Wᵀ): rounded straight from W.
            for (q, panel) in panels {
                let cols = (n - q * NR).min(NR);
                // SAFETY: the caller checked the CPU features.
                unsafe { super::bf16::round_panel(&w.w[q * NR..], w.col_stride, k, cols, panel) };
            }
        } else if w.col_stride == 1 {
            // W's rows are contiguous (a Linear weight, or K): each panel's NR rows of W are
            // rounded in one pass, then their bf16 pairs are laid side by side.
            let pairs = k.div_ceil(2);
            let mut rounded = vec![0u32; NR * pairs];
            for (q, panel) in panels {
                let cols = (n - q * NR).min(NR);
                let rows = &w.w[q * NR * w.row_stride..];
                assert!(rows.len() >= (cols - 1) * w.row_stride + k);
                // SAFETY: the caller checked the CPU features; `rows` holds `cols` rows of k at
                // stride row_stride (asserted); `rounded` holds `cols` rows of 2·pairs u16.
                unsafe {
                    let dst = rounded.as_mut_ptr().cast::<u16>();
                    super::bf16::round_rows(rows.as_ptr(), w.row_stride, cols, k, dst, 2 * pairs)
                };
                for (c, row) in rounded.chunks_exact(pairs).take(cols).enumerate() {
                    for (p2, &pair) in row.iter().enumerate() {
                        let at = 2 * (p2 * NR + c);
                        panel[at] = pair as u16;
                        panel[at + 1] = (pair >> 16) as u16;
                    }
                }
            }
        } else {
            // Any other strides: gathered into an f32 panel first.
            let mut staging = AlignedBuf::<f32>::zeroed(k * NR);
            for (q, panel) in panels {
                let cols = (n - q * NR).min(NR);
                fill_panel(w, q * NR, cols, k, staging.as_mut_slice());
                // SAFETY: the caller checked the CPU features; the staging panel holds k rows.
                unsafe { super::bf16::round_panel(staging.as_slice(), NR, k, cols, panel) };
            }
        }
        buf
    }
}
