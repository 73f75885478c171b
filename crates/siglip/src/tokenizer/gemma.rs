//! SigLIP 2's tokenizer: Gemma's BPE with byte fallback, through the `tokenizers` library that
//! transformers runs it with, set up as transformers 5's `GemmaTokenizer` (FixRes checkpoints)
//! or `Siglip2Tokenizer` (NaFlex: the same with a Lowercase normalizer first) sets it up, and
//! called as the zero-shot pipeline calls it (`padding="max_length", max_length=64,
//! truncation=True`).
//!
//! What comes from where (`tokenization_gemma.py`, `TokenizersBackend`):
//! - from `tokenizer.json`: the vocabulary and merges, built into a BPE model with the class's
//!   own settings (`fuse_unk`, `byte_fallback`, `<unk>` from the config), and the post-processor;
//!   its normalizer and pre-tokenizer are ignored (the hub's files say Lowercase; transformers'
//!   `GemmaTokenizer` does not lowercase);
//! - the normalizer `Replace(" ", "▁")`, with `Lowercase` before it when lowercasing, and the
//!   pre-tokenizer `Split(" ", merged_with_previous)`, which splits nothing after that normalizer;
//! - from `tokenizer_config.json`: the added tokens (`added_tokens_decoder`, else the file's),
//!   the special tokens and `padding_side` (the class's default is left); not `add_bos_token`
//!   nor `add_eos_token`, which transformers drops when there is a tokenizer.json;
//! - truncation keeps the post-processor's special tokens (so `<eos>` stays last) and padding
//!   fills to `max_length` with the pad token.
//!
//! Added tokens are matched before the normalizer (literal ones) or after it (`normalized`
//! ones): under lowercasing, `<START_OF_TURN>` is not `<start_of_turn>` but the pieces of its
//! lowercased text. The tokenizers library lowercases character by character: a final "Σ"
//! becomes "σ", not the "ς" of Python's `str.lower`.
//!
//! On the reference strings (over a thousand, `tests/gemma_tokenizer_parity.rs`) the tokenizers crate 0.23.2
//! gives transformers' ids (Python tokenizers 0.23.3) everywhere, lowercasing or not: nothing
//! here works around the library.
//!
//! A text of any length costs no more than the part that is kept: [`GemmaTokenizer::encode`]
//! tokenizes growing prefixes, each cut where the ids before the cut are the whole text's first
//! ids (the `cuts` module: at spaces, and between characters that nothing joins), and stops at
//! the first that is truncated. A text without such a cut (no space, and every neighbouring
//! pair of characters joined by some merge, as in a long "abab…") is tokenized whole, as
//! transformers does: under 1 µs per byte, seconds for ten megabytes.

mod cuts;
mod files;

use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Lowercase, Replace, Sequence};
use tokenizers::pre_tokenizers::split::Split;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{
    Encoding, NormalizerWrapper, PaddingParams, PaddingStrategy, PostProcessor,
    SplitDelimiterBehavior, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use super::TextLowercase;
use crate::error::{ensure, Context};
use cuts::Cuts;
use files::{GemmaConfig, TokenizerJson};

/// Gemma's tokenizer as transformers' `GemmaTokenizer` (or, lowercasing, `Siglip2Tokenizer`).
#[derive(Debug, Clone)]
pub struct GemmaTokenizer {
    /// Boxed: the library's type is large (1.7 kB), and the other tokenizers are not.
    tokenizer: Box<Tokenizer>,
    lowercase: bool,
    /// Every prompt becomes exactly this many ids.
    max_length: usize,
    /// One more than the largest id, added tokens included.
    vocab_size: usize,
    cuts: Cuts,
}

/// What a failed call of the tokenizers library says.
type LibraryError = Box<dyn std::error::Error + Send + Sync>;

impl GemmaTokenizer {
    /// Loads `tokenizer.json` (a BPE model) with `tokenizer_config.json` when present.
    /// `lowercase`: [`TextLowercase::Auto`] follows the config's `do_lower_case` (absent: no).
    pub fn load(
        tokenizer_json: &Path,
        tokenizer_config: Option<&Path>,
        max_length: usize,
        lowercase: TextLowercase,
    ) -> crate::error::Result<Self> {
        let text = std::fs::read_to_string(tokenizer_json)
            .with_context(|| format!("reading {}", tokenizer_json.display()))?;
        Self::from_json(&text, tokenizer_config, max_length, lowercase)
            .with_context(|| tokenizer_json.display().to_string())
    }

    /// [`GemmaTokenizer::load`] from the text of `tokenizer.json`.
    pub(super) fn from_json(
        tokenizer_json: &str,
        tokenizer_config: Option<&Path>,
        max_length: usize,
        lowercase: TextLowercase,
    ) -> crate::error::Result<Self> {
        let file: TokenizerJson =
            serde_json::from_str(tokenizer_json).context("not a BPE tokenizer.json")?;
        let config: GemmaConfig = match tokenizer_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => GemmaConfig::default(),
        };
        let lowercase = lowercase.resolve(config.do_lower_case.unwrap_or(false));
        Self::new(file, &config, max_length, lowercase)
    }

    fn new(
        file: TokenizerJson,
        config: &GemmaConfig,
        max_length: usize,
        lowercase: bool,
    ) -> crate::error::Result<Self> {
        ensure!(
            config.truncation_side == "right",
            "tokenizer_config.json: truncation_side {:?} is not supported (only right)",
            config.truncation_side
        );
        let merges = file.model.merges()?;
        let added = config.added_tokens(&file.added_tokens)?;
        let cuts = Cuts::new(&file.model.vocab, &merges, &added, lowercase);
        let mut tokenizer = class_tokenizer(file.model.vocab, merges, config, lowercase)?;
        tokenizer
            .add_tokens(added)
            .map_err(library("the added tokens"))?;
        // With a tokenizer.json, transformers drops add_bos_token and add_eos_token from the
        // config and keeps the file's post-processor; without one, it adds nothing.
        let post_processor = file
            .post_processor
            .unwrap_or_else(|| TemplateProcessing::default().into());
        let specials = post_processor.added_tokens(false);
        ensure!(
            max_length >= specials.max(1),
            "max_length {max_length} leaves no room for the {specials} special tokens"
        );
        tokenizer.with_post_processor(Some(post_processor));
        set_pipeline_call(&mut tokenizer, config, max_length)?;
        let vocab_size = tokenizer
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&id| id as usize + 1);
        Ok(Self {
            tokenizer: Box::new(tokenizer),
            cuts,
            lowercase,
            max_length,
            vocab_size,
        })
    }

    /// One more than the largest id it gives (pieces and added tokens).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Length of every encoded prompt.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Whether it lowercases (the resolved `text_lowercase`).
    pub fn lowercases(&self) -> bool {
        self.lowercase
    }

    /// Ids of `text` with the post-processor's tokens (`<eos>`), truncated and padded to
    /// `max_length`.
    ///
    /// Prefixes grow 4x from 1 KiB, each cut at the last safe cut before its end (the work of
    /// all of them is within a constant of the last one's), and the first whose ids are
    /// truncated is the answer: its ids are the first ids of the whole text.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let (mut searched, mut end) = (0, 1024);
        while end < text.len() {
            let end_boundary = (0..=end)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            if let Some(cut) = self.cuts.last_cut(text, searched, end_boundary) {
                let encoding = self.whole_encoding(&text[..cut]);
                if !encoding.get_overflowing().is_empty() {
                    return encoding.get_ids().to_vec();
                }
            }
            searched = end_boundary;
            end = end.saturating_mul(4);
        }
        self.encode_whole(text)
    }

    /// What [`GemmaTokenizer::encode`] gives, computed without stopping early: the whole of
    /// `text` tokenized at once, then truncated and padded. For tests and fuzzing, which check
    /// that the early stop changes nothing; `encode` is the one to call.
    #[doc(hidden)]
    pub fn encode_whole(&self, text: &str) -> Vec<u32> {
        self.whole_encoding(text).get_ids().to_vec()
    }

    /// The whole of `text`, truncated and padded.
    fn whole_encoding(&self, text: &str) -> Encoding {
        // Nothing in this set-up can fail: no pair, no stride, the truncation fits the
        // post-processor's tokens (checked in `new`), and the normalizers cannot fail.
        self.tokenizer
            .encode_fast(text, true)
            .expect("encoding a single text with this set-up cannot fail")
    }
}

/// A closure that says what failed, for the tokenizers library's errors.
fn library(what: &'static str) -> impl Fn(LibraryError) -> crate::error::Error {
    move |error| crate::error::Error::Checkpoint(format!("{what}: {error}"))
}

/// The tokenizer `GemmaTokenizer.__init__` builds: a BPE model of the file's vocabulary and
/// merges with the class's settings, its normalizer (`Siglip2Tokenizer`: Lowercase first) and
/// pre-tokenizer.
fn class_tokenizer(
    vocab: tokenizers::models::bpe::Vocab,
    merges: tokenizers::models::bpe::Merges,
    config: &GemmaConfig,
    lowercase: bool,
) -> crate::error::Result<Tokenizer> {
    let unk = config
        .unk_token
        .as_ref()
        .map_or("<unk>", |t| t.content())
        .to_string();
    let model = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .unk_token(unk)
        .fuse_unk(true)
        .byte_fallback(true)
        .build()
        .map_err(library("the BPE model"))?;
    let mut tokenizer = Tokenizer::new(model);
    let replace: NormalizerWrapper = Replace::new(" ", "\u{2581}")
        .map_err(library("the normalizer"))?
        .into();
    let normalizer = match lowercase {
        true => Sequence::new(vec![Lowercase.into(), replace]).into(),
        false => replace,
    };
    tokenizer
        .with_normalizer(Some(normalizer))
        .map_err(library("the normalizer"))?;
    tokenizer.with_pre_tokenizer(Some(
        Split::new(" ", SplitDelimiterBehavior::MergedWithPrevious, false)
            .map_err(library("the pre-tokenizer"))?,
    ));
    Ok(tokenizer)
}

/// Truncation and padding as the pipeline's call sets them: `max_length` ids with the
/// post-processor's tokens, padded with the pad token on the config's side.
fn set_pipeline_call(
    tokenizer: &mut Tokenizer,
    config: &GemmaConfig,
    max_length: usize,
) -> crate::error::Result<()> {
    let pad = config
        .pad_token
        .as_ref()
        .context("tokenizer_config.json has no pad_token, which padding needs")?
        .content()
        .to_string();
    let pad_id = tokenizer
        .token_to_id(&pad)
        .with_context(|| format!("the pad token {pad:?} is not in the vocabulary"))?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(library("truncation"))?;
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::Fixed(max_length),
        direction: config.padding_direction()?,
        pad_to_multiple_of: None,
        pad_id,
        pad_type_id: 0,
        pad_token: pad,
    }));
    Ok(())
}

#[cfg(test)]
mod tests;
