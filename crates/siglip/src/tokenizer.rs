//! Prompt text to the 64 token ids SigLIP's text tower reads, exactly as transformers
//! tokenizes for the zero-shot pipeline (`padding="max_length", max_length=64,
//! truncation=True`).
//!
//! [`PromptTokenizer`] is the one the crate uses: it loads the checkpoint's kind, and applies the
//! `text_lowercase` setting ([`TextLowercase`]).
//! - [`SiglipTokenizer`], SigLIP 1: SentencePiece Unigram, as transformers' slow
//!   `SiglipTokenizer` (below);
//! - [`GemmaTokenizer`], SigLIP 2: Gemma's BPE through the `tokenizers` library, as
//!   `GemmaTokenizer` / `Siglip2Tokenizer` (the `gemma` module).
//!
//! `SiglipTokenizer`'s steps (tokenization_siglip.py and `PythonBackend.tokenize`):
//! 1. prefix "▁", turn any "▁" inside the text into a space;
//! 2. split out the special tokens (`</s>`, `<unk>`), stripping whitespace around them;
//! 3. each other chunk: canonicalise, then `sp.encode("<unk>" + chunk)` minus the pieces of
//!    `<unk>` itself (SentencePiece with its dummy prefix);
//! 4. drop a lone leading "▁" before a special token;
//! 5. truncate to 63, append `</s>` unless already last, pad with `</s>` to 64.
//!
//! Texts of any length are accepted, and the cost stays bounded by the part that is kept:
//! [`SiglipTokenizer::encode`] tokenizes growing prefixes cut at a space, and stops at the first
//! that yields more ids than are kept. Pieces never span a space (SentencePiece splits by
//! whitespace, and the canonicalisation and special-token split are local), so the ids of such
//! a prefix are the first ids of the whole text.

mod canonical;
mod charsmap;
mod gemma;
mod model_proto;
mod prompt;
mod sentencepiece;

use std::path::Path;

use crate::error::Context;

use crate::files::TokenizerFile;
pub use canonical::canonicalize;
pub use gemma::GemmaTokenizer;
pub use prompt::{ParseTextLowercaseError, PromptTokenizer, TextLowercase};
use sentencepiece::SentencePiece;

const SPIECE_UNDERLINE: char = '\u{2581}';

/// The SigLIP tokenizer.
#[derive(Debug, Clone)]
pub struct SiglipTokenizer {
    sp: SentencePiece,
    lower_case: bool,
    eos: Special,
    unk: Special,
    pad_id: u32,
    /// Number of pieces `sp.encode(unk_token)` yields (`unk_token_length`).
    unk_pieces: usize,
    underline_id: u32,
    /// Every prompt becomes exactly this many ids.
    max_length: usize,
}

/// A special token: its text in prompts, its id, and whether the text beside it loses its
/// adjacent whitespace (`AddedToken.lstrip` / `rstrip`).
#[derive(Debug, Clone)]
struct Special {
    text: String,
    id: u32,
    lstrip: bool,
    rstrip: bool,
}

/// One piece of a prompt after special tokens are split out.
enum Chunk<'a> {
    Text(&'a str),
    Special(&'a Special),
}

/// The parts of `tokenizer_config.json` that change tokenization.
#[derive(Debug, serde::Deserialize)]
#[serde(default)]
struct TokenizerConfig {
    do_lower_case: bool,
    eos_token: TokenText,
    unk_token: TokenText,
    pad_token: TokenText,
    /// Saved `AddedToken`s by id; their strip flags override SiglipTokenizer's defaults.
    added_tokens_decoder: std::collections::HashMap<String, AddedToken>,
}

/// An `AddedToken` as `tokenizer_config.json` saves it.
#[derive(Debug, serde::Deserialize)]
struct AddedToken {
    content: String,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        Self {
            do_lower_case: true,
            eos_token: TokenText::Plain("</s>".into()),
            unk_token: TokenText::Plain("<unk>".into()),
            pad_token: TokenText::Plain("</s>".into()),
            added_tokens_decoder: Default::default(),
        }
    }
}

/// A token given as a string or as an `AddedToken` object.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum TokenText {
    Plain(String),
    Added { content: String },
}

impl TokenText {
    fn text(&self) -> &str {
        match self {
            TokenText::Plain(s) | TokenText::Added { content: s } => s,
        }
    }
}

impl SiglipTokenizer {
    /// Loads `tokenizer.json` or `spiece.model`, with `tokenizer_config.json` when present.
    pub fn load(
        file: &TokenizerFile,
        tokenizer_config: Option<&Path>,
        max_length: usize,
    ) -> crate::error::Result<Self> {
        let sp = match file {
            TokenizerFile::Json(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                SentencePiece::from_tokenizer_json(&text)
            }
            TokenizerFile::SentencePiece(path) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                SentencePiece::from_model_proto(&bytes)
            }
        }?;
        Self::new(sp, tokenizer_config, max_length)
    }

    /// `sp` with `tokenizer_config.json` when present.
    fn new(
        sp: SentencePiece,
        tokenizer_config: Option<&Path>,
        max_length: usize,
    ) -> crate::error::Result<Self> {
        let config: TokenizerConfig = match tokenizer_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)?;
                serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => TokenizerConfig::default(),
        };
        Self::with_config(sp, &config, max_length)
    }

    /// `do_lower_case` as the `text_lowercase` setting leaves it.
    fn lowercasing(mut self, lowercase: TextLowercase) -> Self {
        self.lower_case = lowercase.resolve(self.lower_case);
        self
    }

    fn with_config(
        sp: SentencePiece,
        config: &TokenizerConfig,
        max_length: usize,
    ) -> crate::error::Result<Self> {
        crate::error::ensure!(max_length >= 1, "max_length must be at least 1");
        let special = |t: &TokenText| {
            let text = t.text().to_string();
            let saved = config
                .added_tokens_decoder
                .values()
                .find(|a| a.content == text);
            Special {
                id: sp.piece_to_id(&text),
                // SiglipTokenizer.__init__ makes its tokens with lstrip = rstrip = True.
                lstrip: saved.is_none_or(|a| a.lstrip),
                rstrip: saved.is_none_or(|a| a.rstrip),
                text,
            }
        };
        let unk = special(&config.unk_token);
        Ok(Self {
            unk_pieces: sp.encode(&unk.text).len(),
            underline_id: sp.piece_to_id(&SPIECE_UNDERLINE.to_string()),
            eos: special(&config.eos_token),
            pad_id: special(&config.pad_token).id,
            lower_case: config.do_lower_case,
            max_length,
            unk,
            sp,
        })
    }

    /// Pieces in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.sp.vocab_size()
    }

    /// Length of every encoded prompt.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Ids of `text` with `</s>`, truncated and padded to `max_length`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = self.tokenize_kept_part(text);
        if ids.len() + 1 > self.max_length {
            ids.truncate(self.max_length - 1);
        }
        if ids.last() != Some(&self.eos.id) {
            ids.push(self.eos.id);
        }
        ids.resize(self.max_length, self.pad_id);
        ids
    }

    /// The ids of `text`, or of a prefix of it with more ids than `encode` keeps (their first
    /// `max_length` are then the whole text's). Prefixes grow 4x from 1 KiB, each cut at a
    /// space, so the work is within a constant of the kept part's.
    fn tokenize_kept_part(&self, text: &str) -> Vec<u32> {
        let mut end = 1024;
        while end < text.len() {
            let boundary = (0..=end)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            if let Some(cut) = text[..boundary].rfind(' ').filter(|&cut| cut > 0) {
                let ids = self.tokenize(&text[..cut]);
                if ids.len() > self.max_length {
                    return ids;
                }
            }
            end = end.saturating_mul(4);
        }
        self.tokenize(text)
    }

    /// Ids before `</s>`, truncation and padding (`tokenize` + `convert_tokens_to_ids`).
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let prefixed = format!("{SPIECE_UNDERLINE}{}", text.replace(SPIECE_UNDERLINE, " "));
        let mut ids = Vec::new();
        let mut specials = Vec::new();
        for chunk in self.split_specials(&prefixed) {
            match chunk {
                Chunk::Special(special) => {
                    specials.push(ids.len());
                    ids.push(special.id);
                }
                Chunk::Text(text) => ids.extend(self.tokenize_chunk(text)),
            }
        }
        if ids.len() > 1 && ids[0] == self.underline_id && specials.contains(&1) {
            ids.remove(0);
        }
        ids
    }

    /// `_tokenize`: canonicalise, then encode behind the unknown token and drop its pieces.
    ///
    /// A long chunk is encoded from growing prefixes (4x from 4 KiB, cut between characters)
    /// until one settles more pieces than are kept: canonicalisation and normalisation are
    /// character-local but for the prefix's end, which is left out of the count.
    fn tokenize_chunk(&self, text: &str) -> Vec<u32> {
        let wanted = self.unk_pieces + self.max_length + 1;
        let encode_prefix = |prefix: &str| {
            let text = canonicalize(prefix, self.lower_case);
            self.sp
                .encode_first(&format!("{}{text}", self.unk.text), wanted)
        };
        let mut end = 4096;
        let mut settled = None;
        while end < text.len() && settled.is_none() {
            let cut = (0..=end)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            settled = encode_prefix(&text[..cut]);
            end = end.saturating_mul(4);
        }
        let pieces = settled.unwrap_or_else(|| {
            let text = canonicalize(text, self.lower_case);
            self.sp.encode(&format!("{}{text}", self.unk.text))
        });
        let skip = if pieces.len() >= self.unk_pieces {
            self.unk_pieces
        } else {
            0
        };
        pieces[skip..].iter().map(|p| p.id).collect()
    }

    /// The added-token trie split: special tokens become their own chunks; the text beside
    /// one loses its adjacent whitespace where the token's `lstrip`/`rstrip` says so.
    fn split_specials<'a>(&'a self, text: &'a str) -> Vec<Chunk<'a>> {
        let mut specials: Vec<&Special> = vec![&self.eos, &self.unk];
        specials.sort_by_key(|s| std::cmp::Reverse(s.text.len()));
        let mut chunks = Vec::new();
        let (mut start, mut pos) = (0, 0);
        while pos < text.len() {
            let rest = &text[pos..];
            match specials
                .iter()
                .find(|s| !s.text.is_empty() && rest.starts_with(&s.text))
            {
                Some(special) => {
                    chunks.push(Chunk::Text(&text[start..pos]));
                    chunks.push(Chunk::Special(special));
                    pos += special.text.len();
                    start = pos;
                }
                None => pos += rest.chars().next().map_or(1, char::len_utf8),
            }
        }
        chunks.push(Chunk::Text(&text[start..]));
        let special_at = |i: Option<usize>| match i.and_then(|i| chunks.get(i)) {
            Some(Chunk::Special(s)) => Some(*s),
            _ => None,
        };
        let mut out = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.iter().enumerate() {
            match *chunk {
                Chunk::Special(s) => out.push(Chunk::Special(s)),
                Chunk::Text(mut t) => {
                    if special_at(i.checked_sub(1)).is_some_and(|s| s.rstrip) {
                        t = t.trim_start_matches(canonical::is_python_space);
                    }
                    if special_at(Some(i + 1)).is_some_and(|s| s.lstrip) {
                        t = t.trim_end_matches(canonical::is_python_space);
                    }
                    if !t.is_empty() {
                        out.push(Chunk::Text(t));
                    }
                }
            }
        }
        out
    }
}
