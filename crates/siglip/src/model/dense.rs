//! `Dense`: a linear layer, `x · Wᵀ + b`, with its weight packed once for the CPU kernels.
//!
//! On a CPU with the kernels for the chosen [`Dtype`], the weight lives only in packed
//! form (f32 or bf16) and the product runs in [`siglip_kernels::matmul`]; anywhere else
//! (CUDA, a CPU without AVX-512) it is candle's `Linear`.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Module, Result, Shape, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::norm::Norm;
use super::ops;
use crate::config::Activation;
use siglip_kernels::{self, Dtype, PackedRhs};

/// A linear layer: packed for the CPU kernels, or candle's.
#[derive(Debug, Clone)]
pub enum Dense {
    /// Weight packed for [`siglip_kernels::matmul`].
    Packed {
        /// `W` as an `n×k` right-hand side.
        weight: Arc<PackedRhs>,
        /// `[n]`.
        bias: Arc<Vec<f32>>,
    },
    /// candle's layer.
    Candle(Linear),
}

impl Dense {
    /// Loads `weight` `[out, in]` and `bias` `[out]` under `vb`.
    pub fn load(inputs: usize, outputs: usize, dtype: Dtype, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get((outputs, inputs), "weight")?;
        let bias = vb.get(outputs, "bias")?;
        Self::new(weight, bias, dtype)
    }

    /// Several layers reading the same input as one (e.g. q, k and v): outputs side by side.
    pub fn fused(parts: &[(Tensor, Tensor)], dtype: Dtype) -> Result<Self> {
        let weights: Vec<&Tensor> = parts.iter().map(|(w, _)| w).collect();
        let biases: Vec<&Tensor> = parts.iter().map(|(_, b)| b).collect();
        Self::new(Tensor::cat(&weights, 0)?, Tensor::cat(&biases, 0)?, dtype)
    }

    /// Packs `weight` `[out, in]` when the kernels can run it here.
    pub fn new(weight: Tensor, bias: Tensor, dtype: Dtype) -> Result<Self> {
        if weight.device().is_cpu() && siglip_kernels::cpu_supports(dtype) {
            let (n, k) = weight.dims2()?;
            let values = weight
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1()?;
            if let Some(packed) = PackedRhs::pack(&values, n, k, k, 1, dtype) {
                return Ok(Self::Packed {
                    weight: Arc::new(packed),
                    bias: Arc::new(bias.to_dtype(candle_core::DType::F32)?.to_vec1()?),
                });
            }
        }
        Ok(Self::Candle(Linear::new(weight, Some(bias))))
    }
    /// `activation(norm(x) · Wᵀ + b)`, each step when given. On the CPU kernels the LayerNorm
    /// is applied to x's rows as they are packed, and the tanh GELU runs on the product's own
    /// buffer: neither takes a pass over memory of its own.
    pub fn forward_with(
        &self,
        x: &Tensor,
        norm: Option<&Norm>,
        activation: Option<Activation>,
    ) -> Result<Tensor> {
        match (self, activation) {
            (Self::Packed { weight, bias }, None | Some(Activation::GeluTanh)) => {
                x.contiguous()?.apply_op1_no_bwd(&Product {
                    weight,
                    bias,
                    norm,
                    epilogue: activation.map(|_| gelu_epilogue(weight.dtype())),
                })
            }
            (Self::Packed { .. }, Some(other)) => other.forward(&self.forward_with(x, norm, None)?),
            (Self::Candle(linear), _) => {
                let x = match norm {
                    Some(norm) => norm.forward(x)?,
                    None => x.clone(),
                };
                let y = linear.forward(&x)?;
                match activation {
                    Some(activation) => activation.forward(&y),
                    None => Ok(y),
                }
            }
        }
    }

    /// `residual + (x · Wᵀ + b)`: a residual connection. On the CPU kernels the product's
    /// output tiles read the residual as they are stored: no separate pass over memory.
    pub fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        match self {
            Self::Packed { weight, bias } => x
                .contiguous()?
                .apply_op2_no_bwd(&residual.contiguous()?, &ProductAdd { weight, bias }),
            Self::Candle(linear) => residual + linear.forward(x)?,
        }
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, None, None)
    }
}

impl Activation {
    /// Applies the activation function on its own (when no product fuses it).
    pub fn forward(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::GeluTanh => ops::gelu_tanh(x),
            Activation::GeluErf => x.gelu_erf(),
            Activation::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
        }
    }
}

/// The tanh GELU a product of `dtype` runs on its finished output rows: the kernels' own
/// (AVX-512 or AVX2, the level the products run at), bf16 products taking a cheaper one whose
/// error (2^-14) their rounding to bf16 hides.
fn gelu_epilogue(dtype: Dtype) -> fn(&mut [f32]) {
    match dtype {
        #[cfg(target_arch = "x86_64")]
        Dtype::F32 => siglip_kernels::gelu_tanh_f32,
        #[cfg(target_arch = "x86_64")]
        Dtype::Bf16 => siglip_kernels::gelu_tanh_for_bf16,
        #[cfg(not(target_arch = "x86_64"))]
        _ => siglip_kernels::activations::gelu_tanh_one_thread,
    }
}

/// The CPU product as a candle op.
struct Product<'a> {
    weight: &'a PackedRhs,
    bias: &'a [f32],
    /// Applied to the input rows as they are packed.
    norm: Option<&'a Norm>,
    /// Applied in place to each finished stretch of output row, on the product's threads.
    epilogue: Option<fn(&mut [f32])>,
}

impl CustomOp1 for Product<'_> {
    fn name(&self) -> &'static str {
        "dense"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, dims) = product_input(self.weight, storage, layout)?;
        let m = x.len() / self.weight.k();
        let threads = candle_core::utils::get_num_threads();
        let norm = self.norm.map(Norm::rows);
        let bias = Some(self.bias);
        let out =
            siglip_kernels::matmul_to_vec(x, m, self.weight, bias, norm, self.epilogue, threads);
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// The CPU product added onto a residual, as a candle op: `(x, residual)`.
struct ProductAdd<'a> {
    weight: &'a PackedRhs,
    bias: &'a [f32],
}

impl CustomOp2 for ProductAdd<'_> {
    fn name(&self) -> &'static str {
        "dense-add"
    }

    fn cpu_fwd(
        &self,
        x_storage: &CpuStorage,
        x_layout: &Layout,
        residual_storage: &CpuStorage,
        residual_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, dims) = product_input(self.weight, x_storage, x_layout)?;
        if residual_layout.dims() != dims.as_slice() {
            candle_core::bail!(
                "dense-add: residual {:?} is not the output shape {dims:?}",
                residual_layout.dims()
            );
        }
        let residual = contiguous_f32(residual_storage, residual_layout, "dense-add")?;
        let m = x.len() / self.weight.k();
        let threads = candle_core::utils::get_num_threads();
        let bias = Some(self.bias);
        let out = siglip_kernels::matmul_add_to_vec(x, m, self.weight, bias, residual, threads);
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// A product's input as a slice, and its output dims (the last one `k` becomes `n`).
fn product_input<'a>(
    weight: &PackedRhs,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> Result<(&'a [f32], Vec<usize>)> {
    let x = contiguous_f32(storage, layout, "dense")?;
    let (k, n) = (weight.k(), weight.n());
    let mut dims = layout.dims().to_vec();
    match dims.last_mut() {
        Some(last) if *last == k => *last = n,
        _ => candle_core::bail!("dense: input {:?} does not end in {k}", layout.dims()),
    }
    Ok((x, dims))
}

/// The f32 values of a contiguous tensor.
fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &'static str,
) -> Result<&'a [f32]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or(candle_core::Error::RequiresContiguous { op })?;
    Ok(&storage.as_slice::<f32>()?[start..end])
}
