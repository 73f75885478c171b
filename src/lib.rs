//! siglip-server: SigLIP zero-shot image classification and embeddings, served over an
//! OpenAI-compatible HTTP API.
//!
//! The crate in request order:
//! - [`model::files`]: find a checkpoint's files (local directory or Hugging Face hub);
//! - [`tokenizer`]: prompt text to 64 ids, exactly as transformers' `SiglipTokenizer`;
//! - [`model`]: both SigLIP towers in candle, embeddings and logits.

pub mod model;
pub mod tokenizer;
