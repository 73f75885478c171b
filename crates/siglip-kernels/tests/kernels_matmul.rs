//! Correctness of `kernels::matmul`, `matmul_add`, `matmul_add_to_vec` and `matmul_to_vec` (with and without a
//! LayerNorm applied while packing) against a naive f64 reference over edge-case shapes,
//! strides, bias, padded output rows and thread counts, in f32 and bf16.

use siglip_kernels::activations::RowNorm;
use siglip_kernels::{
    bf16_to_f32, cpu_supports, f32_to_bf16, matmul, matmul_add, matmul_add_to_vec, matmul_to_vec,
    Dtype, PackedRhs,
};

/// Deterministic values in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next()).collect()
    }
}

/// How W is laid out in its slice.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// [n][k], as a Linear weight.
    RowMajor,
    /// [k][n], e.g. V used as Wᵀ.
    Transposed,
    /// [n][k + 3] with padding, columns every other element: row_stride 2k+3, col_stride 2.
    Strided,
}

struct Case {
    m: usize,
    k: usize,
    n: usize,
    layout: Layout,
    bias: bool,
    out_pad: usize,
    threads: usize,
}

/// (w, row_stride, col_stride) holding `dense` (n×k row-major) in `layout`.
fn lay_out(dense: &[f32], n: usize, k: usize, layout: Layout) -> (Vec<f32>, usize, usize) {
    let (rs, cs) = match layout {
        Layout::RowMajor => (k, 1),
        Layout::Transposed => (1, n),
        Layout::Strided => (2 * k + 3, 2),
    };
    let mut w = vec![f32::NAN; (n - 1) * rs + (k - 1) * cs + 1];
    for j in 0..n {
        for p in 0..k {
            w[j * rs + p * cs] = dense[j * k + p];
        }
    }
    (w, rs, cs)
}

/// Reference out[i][j] and the scale sqrt(Σ_p (x·w)²) + |bias| it is judged against.
fn reference(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    k: usize,
    n: usize,
) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let (mut sum, mut sq) = (bias.map_or(0.0, |b| b[j] as f64), 0.0);
            for p in 0..k {
                let t = x[i * k + p] as f64 * w[j * k + p] as f64;
                sum += t;
                sq += t * t;
            }
            out.push((
                sum,
                sq.sqrt() + bias.map_or(0.0, |b| b[j].abs() as f64) + 1e-6,
            ));
        }
    }
    out
}

fn round_all(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&a| bf16_to_f32(f32_to_bf16(a))).collect()
}

/// Runs one case; checks against the reference with `tol · scale` (tight) and, for bf16,
/// also against the f32 reference with a loose tolerance.
fn check(case: &Case, dtype: Dtype, rng: &mut Rng) {
    let Case {
        m,
        k,
        n,
        layout,
        bias,
        out_pad,
        threads,
    } = *case;
    let x = rng.vec(m * k);
    let dense = rng.vec(n * k);
    let b = bias.then(|| rng.vec(n));
    let (w, rs, cs) = lay_out(&dense, n, k, layout);
    let rhs = PackedRhs::pack(&w, n, k, rs, cs, dtype).expect("cpu support checked");
    assert_eq!((rhs.n(), rhs.k()), (n, k));
    let ldc = n + out_pad;
    let mut out = vec![f32::NAN; m * ldc];
    for row in out.chunks_mut(ldc) {
        row[n..].fill(7.0);
    }
    matmul(&x, m, &rhs, b.as_deref(), &mut out, ldc, threads);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    if out_pad == 0 {
        let fresh = matmul_to_vec(&x, m, &rhs, b.as_deref(), None, None, threads);
        assert_eq!(
            bits(&fresh),
            bits(&out),
            "matmul_to_vec differs from matmul"
        );
        // An epilogue sees every output element exactly once, after the last k block.
        let doubled = matmul_to_vec(&x, m, &rhs, b.as_deref(), None, Some(double), threads);
        let want: Vec<f32> = out.iter().map(|v| v * 2.0).collect();
        assert_eq!(
            bits(&doubled),
            bits(&want),
            "epilogue not applied once to each output"
        );
        // A LayerNorm applied while packing equals the product of the normalised rows.
        let (gamma, beta) = (rng.vec(k), rng.vec(k));
        let norm = RowNorm {
            gamma: &gamma,
            beta: &beta,
            eps: 1e-6,
        };
        let mut normed = vec![0f32; m * k];
        for (row, dst) in x.chunks_exact(k).zip(normed.chunks_exact_mut(k)) {
            norm.apply(row, dst);
        }
        let mut want = vec![0f32; m * n];
        matmul(&normed, m, &rhs, b.as_deref(), &mut want, n, threads);
        let got = matmul_to_vec(&x, m, &rhs, b.as_deref(), Some(norm), None, threads);
        assert_eq!(bits(&got), bits(&want), "normed product differs");
    }

    // The same product added onto a residual; the padding keeps the residual's values.
    let residual = rng.vec(m * ldc);
    let mut added = residual.clone();
    matmul_add(&x, m, &rhs, b.as_deref(), &mut added, ldc, threads);
    if ldc == n {
        // Reading the residual from its own buffer is the same sum, bit for bit.
        let fresh = matmul_add_to_vec(&x, m, &rhs, b.as_deref(), &residual, threads);
        assert_eq!(
            bits(&fresh),
            bits(&added),
            "matmul_add_to_vec differs from matmul_add"
        );
    }

    let exact = reference(&x, &dense, b.as_deref(), m, k, n);
    let rounded = match dtype {
        Dtype::F32 => None,
        Dtype::Bf16 => Some(reference(
            &round_all(&x),
            &round_all(&dense),
            b.as_deref(),
            m,
            k,
            n,
        )),
    };
    let tight = 1e-5 * (k as f64).sqrt();
    for i in 0..m {
        assert!(
            out[i * ldc + n..(i + 1) * ldc].iter().all(|&v| v == 7.0),
            "padding overwritten, row {i}"
        );
        assert_eq!(
            added[i * ldc + n..(i + 1) * ldc],
            residual[i * ldc + n..(i + 1) * ldc],
            "matmul_add overwrote padding, row {i}"
        );
        for j in 0..n {
            let got = out[i * ldc + j] as f64;
            let (want, scale) = exact[i * n + j];
            let ctx = || {
                format!("{dtype:?} m={m} k={k} n={n} {layout:?} bias={bias} pad={out_pad} t={threads} at ({i},{j})")
            };
            let (sum, want_sum) = (
                added[i * ldc + j] as f64,
                out[i * ldc + j] + residual[i * ldc + j],
            );
            assert!(
                (sum - want_sum as f64).abs() <= 2.0 * tight * scale + 1e-6,
                "{} matmul_add: got {sum}, want {want_sum}",
                ctx()
            );
            match &rounded {
                None => assert!(
                    (got - want).abs() <= tight * scale,
                    "{}: got {got}, want {want}",
                    ctx()
                ),
                Some(r) => {
                    let (want_bf, scale_bf) = r[i * n + j];
                    assert!(
                        (got - want_bf).abs() <= tight * scale_bf,
                        "{} vs bf16 ref: got {got}, want {want_bf}",
                        ctx()
                    );
                    assert!(
                        (got - want).abs() <= 2e-2 * scale,
                        "{} vs f32 ref: got {got}, want {want}",
                        ctx()
                    );
                }
            }
        }
    }
}

/// An epilogue whose result shows whether it ran once, never, or twice on an element.
fn double(values: &mut [f32]) {
    values.iter_mut().for_each(|v| *v *= 2.0);
}

fn edge_cases() -> Vec<Case> {
    let layouts = [Layout::RowMajor, Layout::Transposed, Layout::Strided];
    let mut cases = Vec::new();
    let mut v = 0usize;
    // m: AVX-512 strips of 14 and AVX2 strips of 6 with every remainder, and 200 for more
    // than one row block at either level. n: every tail of a 32-column panel and of its 16-
    // column halves (AVX2), 20 and 29 the second half's partial tiles.
    for m in [1, 3, 14, 17, 29, 63, 65, 200] {
        for k in [1, 2, 3, 17, 64, 257, 513, 769, 1030] {
            for n in [1, 3, 17, 20, 29, 32, 33, 63, 65, 129] {
                v += 1;
                cases.push(Case {
                    m,
                    k,
                    n,
                    layout: layouts[v % 3],
                    bias: v.is_multiple_of(2),
                    out_pad: [0, 5][v / 2 % 2],
                    threads: 1 + v / 4 % 2,
                });
            }
        }
    }
    cases
}

fn run_all(dtype: Dtype) {
    if !cpu_supports(dtype) {
        eprintln!("skipping: CPU lacks {dtype:?} support");
        assert!(PackedRhs::pack(&[1.0], 1, 1, 1, 1, dtype).is_none());
        return;
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in edge_cases() {
        check(&case, dtype, &mut rng);
    }
}

#[test]
fn f32_edge_shapes() {
    run_all(Dtype::F32);
}

#[test]
fn bf16_edge_shapes() {
    run_all(Dtype::Bf16);
}

/// SigLIP-like shapes with several k blocks and column blocks, both thread counts.
#[test]
fn model_like_shapes() {
    let mut rng = Rng(42);
    for dtype in [Dtype::F32, Dtype::Bf16] {
        if !cpu_supports(dtype) {
            continue;
        }
        for (m, k, n, layout) in [
            (77, 64, 577, Layout::RowMajor),
            (45, 577, 64, Layout::Transposed),
            (64, 768, 600, Layout::RowMajor),
            (33, 3072, 40, Layout::RowMajor),
        ] {
            for threads in [1, 2] {
                check(
                    &Case {
                        m,
                        k,
                        n,
                        layout,
                        bias: threads == 2,
                        out_pad: 3,
                        threads,
                    },
                    dtype,
                    &mut rng,
                );
            }
        }
    }
}

/// Tails of at most 16 columns, the shapes whose masked second half starts past the end of a
/// buffer: n and k from 1 to 16, 40 and 72 (so400m's head width), so that the output tiles,
/// the bias, the residual, the W panels (rounded from W in place for the transposed layout)
/// and the rows of x all end in one. Every buffer is exactly as long as its shape (bias n,
/// x m·k, residual and fresh outputs m·n), so a tail's address past the end is past the
/// allocation.
///
/// Computing such an address with `ptr::add` was undefined behaviour that no result shows,
/// so this checks the values only. Miri would catch it but cannot run these kernels: under
/// Miri `is_x86_feature_detected!` reports only the features enabled at compile time (so
/// `cpu_supports` is false and the test skips), and its AVX-512 emulation lacks the
/// instructions the bf16 kernels are built on (`vdpbf16ps`, `vcvtne2ps2bf16`).
#[test]
fn narrow_tails() {
    let layouts = [Layout::RowMajor, Layout::Transposed, Layout::Strided];
    let mut rng = Rng(0x72);
    for dtype in [Dtype::F32, Dtype::Bf16] {
        if !cpu_supports(dtype) {
            eprintln!("skipping: CPU lacks {dtype:?} support");
            continue;
        }
        let widths = || (1..=16).chain([40, 72]);
        for n in widths() {
            for k in widths() {
                let v = n + k;
                check(
                    &Case {
                        m: [1, 6, 15, 29][v % 4],
                        k,
                        n,
                        layout: layouts[v % 3],
                        bias: v % 5 != 0,
                        out_pad: if v % 7 == 0 { 5 } else { 0 },
                        threads: 1 + v / 3 % 2,
                    },
                    dtype,
                    &mut rng,
                );
            }
        }
    }
}

#[test]
fn k_zero_gives_bias() {
    let Some(rhs) = PackedRhs::pack(&[], 3, 0, 0, 1, Dtype::F32) else {
        return;
    };
    let mut out = vec![9.0; 6];
    matmul(&[], 2, &rhs, Some(&[1.0, 2.0, 3.0]), &mut out, 3, 2);
    assert_eq!(out, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    assert_eq!(
        matmul_to_vec(&[], 2, &rhs, Some(&[1.0, 2.0, 3.0]), None, None, 2),
        out
    );
    let residual = [0.5, 0.0, -1.0, 2.0, 0.0, 0.0];
    assert_eq!(
        matmul_add_to_vec(&[], 2, &rhs, Some(&[1.0, 2.0, 3.0]), &residual, 2),
        [1.5, 2.0, 2.0, 3.0, 2.0, 3.0]
    );
    matmul_add(&[], 2, &rhs, Some(&[1.0, 2.0, 3.0]), &mut out, 3, 2);
    assert_eq!(out, [2.0, 4.0, 6.0, 2.0, 4.0, 6.0]);
}

#[test]
fn bf16_rounding_is_nearest_even() {
    let ulp = 2f32.powi(-7);
    assert_eq!(bf16_to_f32(f32_to_bf16(1.0 + ulp / 2.0)), 1.0);
    assert_eq!(bf16_to_f32(f32_to_bf16(1.0 + 1.5 * ulp)), 1.0 + 2.0 * ulp);
    assert_eq!(bf16_to_f32(f32_to_bf16(1.0 + 0.6 * ulp)), 1.0 + ulp);
    assert_eq!(bf16_to_f32(f32_to_bf16(-3.0)), -3.0);
    assert!(bf16_to_f32(f32_to_bf16(f32::NAN)).is_nan());
    assert_eq!(bf16_to_f32(f32_to_bf16(f32::INFINITY)), f32::INFINITY);
}

/// A run under `SIGLIP_CPU_BLOCKING` (scripts/test.sh) tests those sizes, not the default ones.
#[test]
fn the_blocking_the_environment_names_is_in_use() {
    use siglip_kernels::blocking::{self, BlockingRequest};
    let Ok(text) = std::env::var("SIGLIP_CPU_BLOCKING") else {
        return;
    };
    if let Ok(BlockingRequest::Pinned(sizes)) = text.parse() {
        let level = blocking::Blocking::zen4(siglip_kernels::isa::active());
        assert_eq!(blocking::active(), sizes.over(level));
    }
}
