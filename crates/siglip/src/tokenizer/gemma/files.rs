//! The parts of `tokenizer.json` and `tokenizer_config.json` that transformers'
//! `GemmaTokenizer` reads, and the added tokens it registers from them, in its order.

use std::collections::BTreeMap;

use tokenizers::models::bpe::{Merges, Vocab};
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::AddedToken;

use crate::error::{bail, Context};

/// `tokenizer.json`: only the vocabulary, merges, added tokens and post-processor count; the
/// normalizer and pre-tokenizer are the class's own, whatever the file says.
#[derive(Debug, serde::Deserialize)]
pub(super) struct TokenizerJson {
    pub(super) model: BpeJson,
    #[serde(default)]
    pub(super) added_tokens: Vec<AddedTokenJson>,
    #[serde(default)]
    pub(super) post_processor: Option<PostProcessorWrapper>,
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct BpeJson {
    pub(super) vocab: Vocab,
    merges: Vec<MergeJson>,
}

/// A merge as `tokenizers` saves it: `["a", "b"]`, or `"a b"` in older files.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum MergeJson {
    Pair(String, String),
    Joined(String),
}

impl BpeJson {
    /// The merges in rank order.
    pub(super) fn merges(&self) -> crate::error::Result<Merges> {
        self.merges
            .iter()
            .map(|merge| match merge {
                MergeJson::Pair(a, b) => Ok((a.clone(), b.clone())),
                MergeJson::Joined(joined) => joined
                    .split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .with_context(|| format!("tokenizer.json: the merge {joined:?} has no space")),
            })
            .collect()
    }
}

/// An `AddedToken` as both files save it (`tokenizer.json` adds its `id`).
#[derive(Debug, Clone, serde::Deserialize)]
pub(super) struct AddedTokenJson {
    #[serde(default)]
    id: Option<u32>,
    content: String,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    /// Python's `AddedToken` defaults it to `not special`.
    #[serde(default)]
    normalized: Option<bool>,
    #[serde(default)]
    special: bool,
}

impl AddedTokenJson {
    fn to_added_token(&self) -> AddedToken {
        AddedToken::from(self.content.clone(), self.special)
            .single_word(self.single_word)
            .lstrip(self.lstrip)
            .rstrip(self.rstrip)
            .normalized(self.normalized.unwrap_or(!self.special))
    }
}

/// A token given as a string or as a saved `AddedToken`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub(super) enum TokenText {
    Plain(String),
    Added(AddedTokenJson),
}

impl TokenText {
    pub(super) fn content(&self) -> &str {
        match self {
            TokenText::Plain(content) => content,
            TokenText::Added(token) => &token.content,
        }
    }

    /// A plain string becomes a special token matched on the raw text (as
    /// `AddedToken(content, special=True)`).
    fn to_added_token(&self) -> AddedToken {
        match self {
            TokenText::Plain(content) => AddedToken::from(content.clone(), true),
            TokenText::Added(token) => token.to_added_token(),
        }
    }
}

fn plain(text: &str) -> Option<TokenText> {
    Some(TokenText::Plain(text.to_string()))
}

/// The parts of `tokenizer_config.json` that change `GemmaTokenizer`'s ids; absent keys take the
/// class's defaults. A special token set to `null` is `None`.
#[derive(Debug, serde::Deserialize)]
#[serde(default)]
pub(super) struct GemmaConfig {
    /// How the checkpoint was trained; transformers' `GemmaTokenizer` ignores it.
    pub(super) do_lower_case: Option<bool>,
    pub(super) bos_token: Option<TokenText>,
    pub(super) eos_token: Option<TokenText>,
    pub(super) unk_token: Option<TokenText>,
    pub(super) pad_token: Option<TokenText>,
    pub(super) mask_token: Option<TokenText>,
    /// `GemmaTokenizer.padding_side` is "left" unless the file says otherwise.
    pub(super) padding_side: String,
    pub(super) truncation_side: String,
    /// When present, these are the added tokens and `tokenizer.json`'s are not read.
    added_tokens_decoder: Option<BTreeMap<String, AddedTokenJson>>,
    additional_special_tokens: Vec<TokenText>,
    /// A list in transformers 5 files, a map (of no concern here) in some older ones.
    extra_special_tokens: serde_json::Value,
}

impl Default for GemmaConfig {
    fn default() -> Self {
        Self {
            do_lower_case: None,
            bos_token: plain("<bos>"),
            eos_token: plain("<eos>"),
            unk_token: plain("<unk>"),
            pad_token: plain("<pad>"),
            mask_token: plain("<mask>"),
            padding_side: "left".into(),
            truncation_side: "right".into(),
            added_tokens_decoder: None,
            additional_special_tokens: Vec::new(),
            extra_special_tokens: serde_json::Value::Null,
        }
    }
}

impl GemmaConfig {
    /// The added tokens in the order `TokenizersBackend.__init__` registers them: the saved
    /// ones by id (`added_tokens_decoder`, else `tokenizer.json`'s), then the named special
    /// tokens (bos, eos, unk, pad, mask) and the extra special tokens that are not among them.
    pub(super) fn added_tokens(
        &self,
        file_tokens: &[AddedTokenJson],
    ) -> crate::error::Result<Vec<AddedToken>> {
        let mut saved: Vec<(u32, &AddedTokenJson)> = match &self.added_tokens_decoder {
            Some(decoder) => decoder
                .iter()
                .map(|(id, token)| {
                    id.parse()
                        .map(|id| (id, token))
                        .with_context(|| format!("added_tokens_decoder: the id {id:?}"))
                })
                .collect::<crate::error::Result<_>>()?,
            None => file_tokens
                .iter()
                .map(|token| {
                    token
                        .id
                        .map(|id| (id, token))
                        .with_context(|| format!("tokenizer.json: {:?} has no id", token.content))
                })
                .collect::<crate::error::Result<_>>()?,
        };
        saved.sort_by_key(|(id, _)| *id);
        let mut tokens: Vec<AddedToken> = saved.iter().map(|(_, t)| t.to_added_token()).collect();
        let named = [
            &self.bos_token,
            &self.eos_token,
            &self.unk_token,
            &self.pad_token,
            &self.mask_token,
        ];
        let extra = self.extra_special_tokens()?;
        for token in named.into_iter().flatten().chain(&extra) {
            if !tokens.iter().any(|t| t.content == token.content()) {
                tokens.push(token.to_added_token());
            }
        }
        Ok(tokens)
    }

    fn extra_special_tokens(&self) -> crate::error::Result<Vec<TokenText>> {
        let mut extra = self.additional_special_tokens.clone();
        if self.extra_special_tokens.is_array() {
            extra.extend(
                serde_json::from_value::<Vec<TokenText>>(self.extra_special_tokens.clone())
                    .context("tokenizer_config.json: extra_special_tokens")?,
            );
        }
        Ok(extra)
    }

    /// `padding_side` as `tokenizers` names it.
    pub(super) fn padding_direction(&self) -> crate::error::Result<tokenizers::PaddingDirection> {
        match self.padding_side.as_str() {
            "right" => Ok(tokenizers::PaddingDirection::Right),
            "left" => Ok(tokenizers::PaddingDirection::Left),
            other => {
                bail!("tokenizer_config.json: padding_side {other:?} is neither left nor right")
            }
        }
    }
}
