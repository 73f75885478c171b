//! candle custom ops that route the encoder's hot spots to [`siglip_kernels`] on CPU.
//!
//! Each op takes contiguous f32 CPU tensors and falls back to candle's own ops for anything
//! else (CUDA, other dtypes, strided views, a CPU without the kernels).

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};

use siglip_kernels::attention::{self, AttentionShape, Heads};
use siglip_kernels::{self, activations, Dtype};

/// A unary op that rewrites a copy of its input in place.
struct InPlace {
    name: &'static str,
    kernel: fn(&mut [f32], usize),
}

impl CustomOp1 for InPlace {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::RequiresContiguous { op: self.name })?;
        let mut values = storage.as_slice::<f32>()?[start..end].to_vec();
        let width = layout.dims().last().copied().unwrap_or(1);
        (self.kernel)(&mut values, width);
        Ok((CpuStorage::F32(values), layout.shape().clone()))
    }
}

/// Whether `x` can go through the CPU kernels.
fn on_cpu_f32(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32 && x.is_contiguous()
}

/// `gelu_pytorch_tanh`.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    if !on_cpu_f32(x) {
        return x.gelu();
    }
    x.apply_op1_no_bwd(&InPlace {
        name: "gelu-tanh",
        kernel: |values, _| activations::gelu_tanh(values),
    })
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if !on_cpu_f32(x) {
        return candle_nn::ops::softmax_last_dim(x);
    }
    x.apply_op1_no_bwd(&InPlace {
        name: "softmax-last-dim",
        kernel: |values, width| activations::softmax_rows(values, width, 1.0),
    })
}

/// Where the heads of one attention input sit: `[batch, rows, width]`, head 0 at `column`.
#[derive(Debug, Clone, Copy)]
pub struct HeadsAt<'a> {
    /// A contiguous `[batch, rows, width]` tensor.
    pub tensor: &'a Tensor,
    /// First column of head 0.
    pub column: usize,
}

impl HeadsAt<'_> {
    /// `[batch, heads, rows, dim]` for candle's path.
    fn split(&self, width: usize, heads: usize) -> Result<Tensor> {
        split_heads(&self.tensor.narrow(2, self.column, width)?, heads)
    }
}

/// Multi-head attention of `q` over `k` and `v` (`heads × dim` columns each), no mask:
/// `[batch, q rows, heads * dim]`.
pub fn attention(
    q: HeadsAt,
    k: HeadsAt,
    v: HeadsAt,
    heads: usize,
    dim: usize,
    dtype: Dtype,
) -> Result<Tensor> {
    let kernel_ready =
        [q, k, v].iter().all(|h| on_cpu_f32(h.tensor)) && siglip_kernels::cpu_supports(dtype);
    if !kernel_ready {
        let width = heads * dim;
        return attend(
            &q.split(width, heads)?,
            &k.split(width, heads)?,
            &v.split(width, heads)?,
        );
    }
    let op = Attention {
        columns: [q.column, k.column, v.column],
        heads,
        dim,
        dtype,
    };
    q.tensor.apply_op3_no_bwd(k.tensor, v.tensor, &op)
}

/// Self-attention within each of `lengths`' consecutive row ranges of `[1, total, ..]` sources:
/// a batch of sequences of different lengths packed without padding (NaFlex images). A row
/// attends only to the rows of its own range, as padding masks make transformers do.
pub fn attention_within(
    q: HeadsAt,
    k: HeadsAt,
    v: HeadsAt,
    heads: usize,
    dim: usize,
    dtype: Dtype,
    lengths: &[usize],
) -> Result<Tensor> {
    let mut start = 0;
    let mut parts = Vec::with_capacity(lengths.len());
    for &len in lengths {
        let rows = |h: HeadsAt| h.tensor.narrow(1, start, len);
        let (qs, ks, vs) = (rows(q)?, rows(k)?, rows(v)?);
        let at = |tensor, h: HeadsAt| HeadsAt {
            tensor,
            column: h.column,
        };
        parts.push(attention(
            at(&qs, q),
            at(&ks, k),
            at(&vs, v),
            heads,
            dim,
            dtype,
        )?);
        start += len;
    }
    Tensor::cat(&parts, 1)
}

/// [`attention`] on CPU, as a candle op over the three source tensors.
struct Attention {
    columns: [usize; 3],
    heads: usize,
    dim: usize,
    dtype: Dtype,
}

impl Attention {
    /// The heads of one source; `[batch, rows, width]` from its layout.
    fn heads<'a>(
        &self,
        storage: &'a CpuStorage,
        layout: &Layout,
        which: usize,
    ) -> Result<(Heads<'a>, usize)> {
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or(candle_core::Error::RequiresContiguous { op: "attention" })?;
        let (batch, rows, width) = layout.shape().dims3()?;
        let heads = Heads {
            data: &storage.as_slice::<f32>()?[start..end],
            rows,
            row_stride: width,
            offset: self.columns[which],
        };
        Ok((heads, batch))
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (q, batch) = self.heads(s1, l1, 0)?;
        let (k, _) = self.heads(s2, l2, 1)?;
        let (v, _) = self.heads(s3, l3, 2)?;
        let shape = AttentionShape {
            batch,
            heads: self.heads,
            dim: self.dim,
        };
        let width = self.heads * self.dim;
        let threads = candle_core::utils::get_num_threads();
        let Some(out) = attention::attend(shape, q, k, v, self.dtype, threads) else {
            candle_core::bail!("attention kernels are not available on this CPU");
        };
        Ok((CpuStorage::F32(out), Shape::from((batch, q.rows, width))))
    }
}

/// Splits `[batch, seq, heads * dim]` into `[batch, heads, seq, dim]`.
fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (batch, seq, width) = x.dims3()?;
    x.reshape((batch, seq, heads, width / heads))?
        .transpose(1, 2)?
        .contiguous()
}

/// Scaled dot-product attention over `[batch, heads, seq, dim]` tensors, heads merged back.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (batch, heads, seq, dim) = q.dims4()?;
    let scale = (dim as f64).powf(-0.5);
    let weights = (q.matmul(&k.t()?)? * scale)?;
    let weights = softmax_last_dim(&weights)?;
    weights
        .matmul(v)?
        .transpose(1, 2)?
        .reshape((batch, seq, heads * dim))
}
