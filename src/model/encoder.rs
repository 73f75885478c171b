//! The pre-LayerNorm transformer encoder shared by both towers.
//!
//! Mirrors transformers' `SiglipAttention`, `SiglipMLP`, `SiglipEncoderLayer` and
//! `SiglipEncoder` (modeling_siglip.py): no attention mask (SigLIP attends to padding),
//! scale `head_dim^-0.5`, softmax in f32.

use candle_core::{Module, Result, Tensor};
use candle_nn::{layer_norm, linear, LayerNorm, Linear, VarBuilder};

use super::config::Activation;

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
}

/// Applies an activation function.
pub fn activate(x: &Tensor, activation: Activation) -> Result<Tensor> {
    match activation {
        Activation::GeluTanh => x.gelu(),
        Activation::GeluErf => x.gelu_erf(),
        Activation::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
    }
}

/// Splits `[batch, seq, heads * dim]` into `[batch, heads, seq, dim]`.
pub fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (batch, seq, width) = x.dims3()?;
    x.reshape((batch, seq, heads, width / heads))?
        .transpose(1, 2)?
        .contiguous()
}

/// Scaled dot-product attention over `[batch, heads, seq, dim]` tensors, heads merged back.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (batch, heads, seq, dim) = q.dims4()?;
    let scale = (dim as f64).powf(-0.5);
    let weights = (q.matmul(&k.t()?)? * scale)?;
    let weights = candle_nn::ops::softmax_last_dim(&weights)?;
    weights
        .matmul(v)?
        .transpose(1, 2)?
        .reshape((batch, seq, heads * dim))
}

/// `SiglipAttention`: multi-head self-attention with separate q, k, v projections.
#[derive(Debug, Clone)]
struct SelfAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
}

impl SelfAttention {
    fn new(shape: &EncoderShape, vb: VarBuilder) -> Result<Self> {
        let h = shape.hidden;
        Ok(Self {
            q_proj: linear(h, h, vb.pp("q_proj"))?,
            k_proj: linear(h, h, vb.pp("k_proj"))?,
            v_proj: linear(h, h, vb.pp("v_proj"))?,
            out_proj: linear(h, h, vb.pp("out_proj"))?,
            heads: shape.heads,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let q = split_heads(&self.q_proj.forward(x)?, self.heads)?;
        let k = split_heads(&self.k_proj.forward(x)?, self.heads)?;
        let v = split_heads(&self.v_proj.forward(x)?, self.heads)?;
        self.out_proj.forward(&attend(&q, &k, &v)?)
    }
}

/// `SiglipMLP`: fc1, activation, fc2.
#[derive(Debug, Clone)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl Mlp {
    /// Loads `fc1` and `fc2` under `vb`.
    pub fn new(shape: &EncoderShape, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: linear(shape.hidden, shape.intermediate, vb.pp("fc1"))?,
            fc2: linear(shape.intermediate, shape.hidden, vb.pp("fc2"))?,
            activation: shape.activation,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = activate(&self.fc1.forward(x)?, self.activation)?;
        self.fc2.forward(&x)
    }
}

/// `SiglipEncoderLayer`: x + attn(ln1(x)), then x + mlp(ln2(x)).
#[derive(Debug, Clone)]
struct EncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: SelfAttention,
    layer_norm2: LayerNorm,
    mlp: Mlp,
}

impl EncoderLayer {
    fn new(shape: &EncoderShape, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            layer_norm1: layer_norm(shape.hidden, shape.eps, vb.pp("layer_norm1"))?,
            self_attn: SelfAttention::new(shape, vb.pp("self_attn"))?,
            layer_norm2: layer_norm(shape.hidden, shape.eps, vb.pp("layer_norm2"))?,
            mlp: Mlp::new(shape, vb.pp("mlp"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = (x + self.self_attn.forward(&self.layer_norm1.forward(x)?)?)?;
        &x + self.mlp.forward(&self.layer_norm2.forward(&x)?)?
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
}

impl Module for Encoder {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.layers
            .iter()
            .try_fold(x.clone(), |x, layer| layer.forward(&x))
    }
}
