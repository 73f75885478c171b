//! The pre-LayerNorm transformer encoder shared by both towers.
//!
//! Mirrors transformers' `SiglipAttention`, `SiglipMLP`, `SiglipEncoderLayer` and
//! `SiglipEncoder` (modeling_siglip.py): no attention mask (SigLIP attends to padding),
//! scale `head_dim^-0.5`, softmax in f32. NaFlex images run packed, without padding:
//! [`Encoder::forward_within`] keeps each image's attention to its own rows, which is what
//! `Siglip2Encoder`'s padding mask computes.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::dense::Dense;
use super::norm::Norm;
use super::ops::{self, HeadsAt};
use crate::config::Activation;
use siglip_kernels::Dtype;

/// Shape of one encoder stack.
#[derive(Debug, Clone, Copy)]
pub struct EncoderShape {
    /// Width of the residual stream.
    pub hidden: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate: usize,
    /// Attention heads.
    pub heads: usize,
    /// Layers.
    pub layers: usize,
    /// MLP activation.
    pub activation: Activation,
    /// LayerNorm epsilon.
    pub eps: f64,
    /// What the matrix products multiply in.
    pub dtype: Dtype,
}

/// `SiglipAttention`: multi-head self-attention; q, k and v projected as one product.
#[derive(Debug, Clone)]
struct SelfAttention {
    /// `q_proj`, `k_proj` and `v_proj` side by side: `[.., 3 * hidden]`.
    qkv_proj: Dense,
    out_proj: Dense,
    heads: usize,
    hidden: usize,
    dtype: Dtype,
}

impl SelfAttention {
    fn new(shape: &EncoderShape, vb: VarBuilder) -> Result<Self> {
        let h = shape.hidden;
        let part = |name: &str| -> Result<(Tensor, Tensor)> {
            Ok((
                vb.pp(name).get((h, h), "weight")?,
                vb.pp(name).get(h, "bias")?,
            ))
        };
        let parts = [part("q_proj")?, part("k_proj")?, part("v_proj")?];
        Ok(Self {
            qkv_proj: Dense::fused(&parts, shape.dtype)?,
            out_proj: Dense::load(h, h, shape.dtype, vb.pp("out_proj"))?,
            heads: shape.heads,
            hidden: h,
            dtype: shape.dtype,
        })
    }

    /// `x + attention(norm(x))`, within each of `lengths`' row ranges when given.
    fn forward(&self, x: &Tensor, norm: &Norm, lengths: Option<&[usize]>) -> Result<Tensor> {
        let qkv = self.qkv_proj.forward_with(x, Some(norm), None)?;
        let at = |column| HeadsAt {
            tensor: &qkv,
            column,
        };
        let h = self.hidden;
        let (heads, dim) = (self.heads, h / self.heads);
        let attended = match lengths {
            None => ops::attention(at(0), at(h), at(2 * h), heads, dim, self.dtype)?,
            Some(lengths) => {
                ops::attention_within(at(0), at(h), at(2 * h), heads, dim, self.dtype, lengths)?
            }
        };
        self.out_proj.forward_add(&attended, x)
    }
}

/// `SiglipMLP`: fc1, activation, fc2.
#[derive(Debug, Clone)]
pub struct Mlp {
    fc1: Dense,
    fc2: Dense,
    activation: Activation,
}

impl Mlp {
    /// Loads `fc1` and `fc2` under `vb`.
    pub fn new(shape: &EncoderShape, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: Dense::load(shape.hidden, shape.intermediate, shape.dtype, vb.pp("fc1"))?,
            fc2: Dense::load(shape.intermediate, shape.hidden, shape.dtype, vb.pp("fc2"))?,
            activation: shape.activation,
        })
    }
    /// `x + mlp(norm(x))`.
    pub fn forward(&self, x: &Tensor, norm: &Norm) -> Result<Tensor> {
        let hidden = self
            .fc1
            .forward_with(x, Some(norm), Some(self.activation))?;
        self.fc2.forward_add(&hidden, x)
    }
}

/// `SiglipEncoderLayer`: x + attn(ln1(x)), then x + mlp(ln2(x)); each LayerNorm applied by
/// the product that reads it.
#[derive(Debug, Clone)]
struct EncoderLayer {
    layer_norm1: Norm,
    self_attn: SelfAttention,
    layer_norm2: Norm,
    mlp: Mlp,
}

impl EncoderLayer {
    fn new(shape: &EncoderShape, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            layer_norm1: Norm::load(shape.hidden, shape.eps, vb.pp("layer_norm1"))?,
            self_attn: SelfAttention::new(shape, vb.pp("self_attn"))?,
            layer_norm2: Norm::load(shape.hidden, shape.eps, vb.pp("layer_norm2"))?,
            mlp: Mlp::new(shape, vb.pp("mlp"))?,
        })
    }

    fn forward(&self, x: &Tensor, lengths: Option<&[usize]>) -> Result<Tensor> {
        let x = self.self_attn.forward(x, &self.layer_norm1, lengths)?;
        self.mlp.forward(&x, &self.layer_norm2)
    }
}

/// `SiglipEncoder`: the stack of layers under `encoder.layers.N`.
#[derive(Debug, Clone)]
pub struct Encoder {
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    /// Loads `layers.0` .. `layers.{n-1}` under `vb`.
    pub fn new(shape: &EncoderShape, vb: VarBuilder) -> Result<Self> {
        let vb = vb.pp("layers");
        let layers = (0..shape.layers)
            .map(|i| EncoderLayer::new(shape, vb.pp(i)))
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Packed sequences `[1, total, hidden]` whose rows are `lengths` consecutive sequences:
    /// each attends only within itself.
    pub fn forward_within(&self, x: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        self.run(x, Some(lengths))
    }

    fn run(&self, x: &Tensor, lengths: Option<&[usize]>) -> Result<Tensor> {
        self.layers
            .iter()
            .try_fold(x.clone(), |x, layer| layer.forward(&x, lengths))
    }
}

impl Module for Encoder {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, None)
    }
}
