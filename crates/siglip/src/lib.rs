#![doc = include_str!("../README.md")]
//!
//! ## The crate
//!
//! In the order one classification runs:
//! - [`files`]: a checkpoint's files, from a local directory or the Hugging Face hub cache;
//!   [`config`]: its `config.json`; [`checkpoint`]: the model with its tokenizer and image
//!   preprocessor, loaded together;
//! - [`image_decode`]: bytes to RGB with PIL's semantics and a pixel limit; [`preprocess`]:
//!   Pillow-exact resize (bicubic, bilinear) and normalise, or SigLIP 2 NaFlex patches;
//! - [`tokenizer`]: prompt to 64 ids, exactly as transformers: our SentencePiece for SigLIP 1's
//!   Unigram (`SiglipTokenizer`), the `tokenizers` crate for SigLIP 2's Gemma BPE;
//! - [`model`]: both towers in candle (fixed-resolution and NaFlex image towers), with the hot
//!   spots in the `siglip-kernels` crate;
//! - [`zero_shot`]: prompts from labels, and logits to ranked sigmoid scores;
//! - [`error`]: what can go wrong, one enum.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod files;
pub mod image_decode;
pub mod model;
pub mod preprocess;
pub mod tokenizer;
pub mod zero_shot;

pub use candle_core::Device;
pub use checkpoint::Checkpoint;
pub use error::{Error, Result};
pub use siglip_kernels::Dtype;
