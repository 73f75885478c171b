//! Multi-head scaled dot-product attention without a mask, on row-major f32 slices.
//!
//! One task per (sequence, head): `S = Q·Kᵀ`, a row softmax of `S·scale` (divided by the row
//! sums only after the product with V), `O = S·V`, each product on one thread, the tasks
//! handed out by rayon. Queries, keys and values are read in place from the projection
//! outputs (a fused q;k;v matrix is three column ranges of one buffer), and each task writes
//! its head's columns of the output in place: nothing is transposed or copied.

use rayon::prelude::*;

use super::{matmul_raw, Dtype, Lhs, PackedRhs};

/// A `[batch, rows, ...]` activation holding one column block of `heads * dim` values per row.
#[derive(Debug, Clone, Copy)]
pub struct Heads<'a> {
    /// The whole buffer.
    pub data: &'a [f32],
    /// Rows per sequence.
    pub rows: usize,
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Column where head 0 starts.
    pub offset: usize,
}

impl Heads<'_> {
    /// Start of row 0 of `head` in sequence `seq`.
    fn start(&self, seq: usize, head: usize, dim: usize) -> usize {
        seq * self.rows * self.row_stride + self.offset + head * dim
    }
}

/// The shape of one attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    /// Sequences in the batch.
    pub batch: usize,
    /// Heads.
    pub heads: usize,
    /// Width of one head.
    pub dim: usize,
}

/// Attention of `q` over `k`/`v`, as a new `[batch, q.rows, heads * dim]` vector (written
/// once, never zeroed first: zeroing it was a serial pass per layer).
///
/// Returns `None` when this CPU lacks the kernels for `dtype`.
///
/// # Panics
/// If a source is too short for the shape.
pub fn attend(
    shape: AttentionShape,
    q: Heads,
    k: Heads,
    v: Heads,
    dtype: Dtype,
    threads: usize,
) -> Option<Vec<f32>> {
    if !super::cpu_supports(dtype) {
        return None;
    }
    let AttentionShape { batch, heads, dim } = shape;
    let width = heads * dim;
    for (source, name) in [(q, "q"), (k, "k"), (v, "v")] {
        let needed =
            (batch * source.rows).saturating_sub(1) * source.row_stride + source.offset + width;
        assert!(source.data.len() >= needed, "{name} too short");
    }
    let len = batch * q.rows * width;
    let mut out = Vec::with_capacity(len);
    if len == 0 {
        // No query rows (or heads of width 0): nothing to compute. (`HeadColumns::at` may
        // only offset into an allocation, and an empty vector has none.)
        return Some(out);
    }
    let columns = HeadColumns(out.as_mut_ptr());
    // One task per (sequence, head), handed out by rayon as threads come free; each writes
    // its head's columns of its sequence's rows, straight into `out`.
    let one = |task: usize| {
        let (seq, head) = (task / heads, task % heads);
        let at = columns.at(seq * q.rows * width + head * dim);
        attend_one(seq, head, dim, q, k, v, dtype, (at, width));
    };
    if threads <= 1 {
        (0..batch * heads).for_each(one);
    } else {
        (0..batch * heads).into_par_iter().for_each(one);
    }
    // SAFETY: the tasks together wrote every element: each row's `heads` blocks of `dim`.
    unsafe { out.set_len(len) };
    Some(out)
}

/// The output, shared by tasks that write disjoint head columns.
struct HeadColumns(*mut f32);
// SAFETY: every task writes only its own (sequence, head) block; see `attend`.
unsafe impl Sync for HeadColumns {}

impl HeadColumns {
    /// The element `offset` places in.
    fn at(&self, offset: usize) -> *mut f32 {
        // SAFETY: `attend` only asks for the offsets of its tasks' first elements, each
        // inside the output's capacity (which is not empty: `attend` returns before when it
        // would be).
        unsafe { self.0.add(offset) }
    }
}

/// Query rows per block: one block's scores (`ROW_BLOCK × key rows`, 258 KB for 577 keys)
/// stay in L2 from the product through the softmax to the product with V.
const ROW_BLOCK: usize = 112;

/// One head of one sequence, written to `out.0` (`q.rows` rows at stride `out.1`, `dim`
/// wide). The CPU has the kernels for `dtype` (checked by [`attend`]).
#[allow(clippy::too_many_arguments)]
fn attend_one(
    seq: usize,
    head: usize,
    dim: usize,
    q: Heads,
    k: Heads,
    v: Heads,
    dtype: Dtype,
    out: (*mut f32, usize),
) {
    let k_start = k.start(seq, head, dim);
    let keys = PackedRhs::pack(&k.data[k_start..], k.rows, dim, k.row_stride, 1, dtype)
        .expect("checked by attend");
    // O = S·V: V read as the n×k matrix Vᵀ (n = dim, k = key rows).
    let v_start = v.start(seq, head, dim);
    let values = PackedRhs::pack(&v.data[v_start..], dim, v.rows, 1, v.row_stride, dtype)
        .expect("checked by attend");
    let key_rows = keys.n();
    let scale = (dim as f32).powf(-0.5);
    let q_start = q.start(seq, head, dim);
    let block = ROW_BLOCK.min(q.rows);
    let mut scores = vec![0f32; block * key_rows];
    let mut sums = vec![0f32; block];
    // The bf16 weights, sized by the first block (the largest).
    let mut weights = Vec::new();
    for first in (0..q.rows).step_by(block) {
        let rows = block.min(q.rows - first);
        let scores = &mut scores[..rows * key_rows];
        // S = Q·Kᵀ, read from the projection output in place (row stride q.row_stride).
        let queries = Lhs::rows(
            &q.data[q_start + first * q.row_stride..],
            rows,
            dim,
            q.row_stride,
            None,
        );
        // SAFETY: `scores` holds rows × key_rows at row stride key_rows.
        unsafe {
            matmul_raw(
                queries,
                &keys,
                None,
                scores.as_mut_ptr(),
                key_rows,
                1,
                None,
                None,
            )
        };
        // SAFETY: rows first.. of this head's output (`rows` rows of `dim` at stride out.1)
        // lie in the region `attend` gave this task, which no other task touches.
        let at = unsafe { out.0.add(first * out.1) };
        let sums = &mut sums[..rows];
        // SAFETY: as just said, `at` addresses `rows` rows of `dim` at stride out.1.
        unsafe { weights_times_values(scores, scale, &values, sums, &mut weights, (at, out.1)) };
        for (r, sum) in sums.iter().enumerate() {
            // SAFETY: row r of the block just written (see above).
            let row = unsafe { std::slice::from_raw_parts_mut(at.add(r * out.1), dim) };
            let normaliser = 1.0 / sum;
            row.iter_mut().for_each(|v| *v *= normaliser);
        }
    }
}

/// The softmax of `scale` times the score rows (V's `k` wide) times V, before the softmax's
/// division, written to `out`; each row's sum of weights goes to `sums`. The division waits
/// for the output: 64 values a row instead of 577. `weights` is working memory.
///
/// # Safety
/// `out.0` addresses `sums.len()` rows of `values.n()` writable f32s at row stride `out.1`;
/// the CPU has the kernels for the dtype of `values`.
unsafe fn weights_times_values(
    scores: &mut [f32],
    scale: f32,
    values: &PackedRhs,
    sums: &mut [f32],
    weights: &mut Vec<u16>,
    out: (*mut f32, usize),
) {
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (scores, scale, values, sums, weights, out);
        unreachable!("attention runs on the x86-64 kernels only");
    }
    #[cfg(target_arch = "x86_64")]
    {
        let keys = values.k();
        if values.dtype() == Dtype::Bf16 {
            // The weights go straight to bf16, the form the product reads.
            let ld = super::job::padded_stride(keys, 32);
            if weights.len() < sums.len() * ld {
                weights.resize(sums.len() * ld, 0);
            }
            let rows = scores.chunks_exact(keys).zip(weights.chunks_exact_mut(ld));
            for ((scores, weights), sum) in rows.zip(&mut *sums) {
                // SAFETY: the CPU has the bf16 kernels (this function's contract).
                *sum = unsafe { super::exp::exp_row_to_bf16(scores, scale, weights) };
            }
            // SAFETY: `weights` holds the rows, each zero-padded to even; `out` as promised.
            unsafe { super::job::rounded_rows_times(weights, ld, sums.len(), values, out) };
            return;
        }
        for (row, sum) in scores.chunks_exact_mut(keys).zip(&mut *sums) {
            *sum = if values.isa == super::CpuIsa::Avx512 {
                // SAFETY: the CPU has avx512f (the level was active when `values` was packed).
                unsafe { super::exp::exp_row_in_place(row, scale) }
            } else {
                super::activations::softmax_numerators(row, scale)
            };
        }
        let weights = Lhs::rows(scores, sums.len(), keys, keys, None);
        // SAFETY: `out` as promised; the CPU has the kernels for `values`.
        unsafe { matmul_raw(weights, values, None, out.0, out.1, 1, None, None) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bf16_to_f32, cpu_supports, f32_to_bf16};

    /// Deterministic values in [-2, 2].
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + 1) * (seed * 2654435761 + 7919)) % 4001) as f32 / 1000.0 - 2.0)
            .collect()
    }

    /// Attention in f64, straight from the definition.
    fn naive(shape: AttentionShape, q: Heads, k: Heads, v: Heads) -> Vec<f32> {
        let AttentionShape { batch, heads, dim } = shape;
        let mut out = vec![0f32; batch * q.rows * heads * dim];
        for seq in 0..batch {
            for head in 0..heads {
                for i in 0..q.rows {
                    let qi = q.start(seq, head, dim) + i * q.row_stride;
                    let scores: Vec<f64> = (0..k.rows)
                        .map(|j| {
                            let kj = k.start(seq, head, dim) + j * k.row_stride;
                            (0..dim)
                                .map(|d| q.data[qi + d] as f64 * k.data[kj + d] as f64)
                                .sum::<f64>()
                                / (dim as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::MIN, f64::max);
                    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = weights.iter().sum();
                    for d in 0..dim {
                        let o: f64 = (0..k.rows)
                            .map(|j| {
                                weights[j]
                                    * v.data[v.start(seq, head, dim) + j * v.row_stride + d] as f64
                            })
                            .sum();
                        out[(seq * q.rows + i) * heads * dim + head * dim + d] = (o / total) as f32;
                    }
                }
            }
        }
        out
    }

    /// Attention of `dtype` against the definition. For bf16 the definition is computed
    /// on q, k and v rounded to bf16 (as the kernels round them), so what is left is the
    /// rounding of the softmax's weights (2^-8 relative at most) and its exponential's error.
    fn check(dtype: Dtype, batch: usize, q_rows: usize, k_rows: usize, threads: usize) {
        check_heads(dtype, batch, q_rows, k_rows, threads, 16);
    }

    /// As [`check`], with heads `dim` wide.
    fn check_heads(
        dtype: Dtype,
        batch: usize,
        q_rows: usize,
        k_rows: usize,
        threads: usize,
        dim: usize,
    ) {
        let shape = AttentionShape {
            batch,
            heads: 3,
            dim,
        };
        let width = shape.heads * shape.dim;
        let tolerance = match dtype {
            Dtype::F32 => 1e-5,
            Dtype::Bf16 => 5e-3,
        };
        let rounded = |x: f32| match dtype {
            Dtype::F32 => x,
            Dtype::Bf16 => bf16_to_f32(f32_to_bf16(x)),
        };
        // Self-attention reads q;k;v side by side from one buffer, as the encoder does.
        let qkv = values(batch * k_rows * 3 * width, 1);
        let own_q = values(batch * q_rows * width, 2);
        let (qkv_rounded, own_q_rounded): (Vec<f32>, Vec<f32>) = (
            qkv.iter().map(|&x| rounded(x)).collect(),
            own_q.iter().map(|&x| rounded(x)).collect(),
        );
        let operands = |qkv, own_q| {
            let kv = |offset| Heads {
                data: qkv,
                rows: k_rows,
                row_stride: 3 * width,
                offset,
            };
            let q = if q_rows == k_rows {
                kv(0)
            } else {
                Heads {
                    data: own_q,
                    rows: q_rows,
                    row_stride: width,
                    offset: 0,
                }
            };
            (q, kv(width), kv(2 * width))
        };
        let (q, k, v) = operands(&qkv, &own_q);
        let out = attend(shape, q, k, v, dtype, threads).expect("kernels checked");
        let (q, k, v) = operands(&qkv_rounded, &own_q_rounded);
        let mut worst = 0f32;
        for (got, want) in out.iter().zip(naive(shape, q, k, v)) {
            assert!((got - want).abs() < tolerance, "{got} vs {want}");
            worst = worst.max((got - want).abs());
        }
        eprintln!("{dtype} {batch}×{q_rows}×{k_rows}, dim {dim}: worst {worst:e}");
    }

    #[test]
    fn matches_the_definition() {
        for dtype in [Dtype::F32, Dtype::Bf16] {
            if !cpu_supports(dtype) {
                eprintln!("skipped {dtype}: no kernels for it at this level");
                continue;
            }
            check(dtype, 1, 9, 9, 1);
            check(dtype, 2, 17, 17, 2);
            check(dtype, 3, 1, 33, 2);
            check(dtype, 1, 65, 65, 4);
            check(dtype, 1, 250, 250, 2);
            check(dtype, 2, 1, 250, 2);
            check(dtype, 1, 577, 577, 2);
        }
    }

    /// so400m's head width, 72: V's last panel, the output tiles of the last head and the
    /// rounded rows of q are 8 columns past a multiple of 32, whose masked tails' second half
    /// lies past the end of the buffers (as do the score rows' tails for 8, 40 and 72 keys).
    #[test]
    fn matches_the_definition_with_heads_of_72() {
        for dtype in [Dtype::F32, Dtype::Bf16] {
            if !cpu_supports(dtype) {
                eprintln!("skipped {dtype}: no kernels for it at this level");
                continue;
            }
            check_heads(dtype, 1, 8, 8, 1, 72);
            check_heads(dtype, 2, 40, 40, 2, 72);
            check_heads(dtype, 1, 3, 72, 1, 72);
            check_heads(dtype, 1, 17, 17, 1, 72);
        }
    }
}
