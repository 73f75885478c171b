//! The one tokenizer type the rest of the crate uses: SentencePiece Unigram for SigLIP 1, Gemma
//! BPE for SigLIP 2, chosen by the checkpoint's files; and the `text_lowercase` setting.

use std::path::Path;

use super::gemma::GemmaTokenizer;
use super::model_proto::ModelProto;
use super::sentencepiece::SentencePiece;
use super::SiglipTokenizer;
use crate::error::{bail, Context};
use crate::files::TokenizerFile;

/// Whether prompts are lowercased before tokenization (the `text_lowercase` setting).
///
/// SigLIP 2 was trained on lowercased text (its `tokenizer_config.json` says
/// `do_lower_case: true`), but transformers lowercases only for NaFlex checkpoints
/// (`Siglip2Tokenizer`); FixRes ones load `GemmaTokenizer`, which does not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TextLowercase {
    /// As the checkpoint was trained: `do_lower_case` of `tokenizer_config.json` (for Gemma,
    /// no when absent; for SentencePiece, SiglipTokenizer's default, yes).
    #[default]
    Auto,
    /// Always lowercase (transformers' ids for NaFlex checkpoints).
    On,
    /// Never lowercase (transformers' ids for FixRes SigLIP 2 checkpoints).
    Off,
}

impl TextLowercase {
    /// The setting applied to a checkpoint whose `do_lower_case` is `trained`.
    pub fn resolve(self, trained: bool) -> bool {
        match self {
            TextLowercase::Auto => trained,
            TextLowercase::On => true,
            TextLowercase::Off => false,
        }
    }
}

/// A `text_lowercase` value other than "auto", "true" or "false".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("text_lowercase is auto, true or false, not {0:?}")]
pub struct ParseTextLowercaseError(String);

impl std::str::FromStr for TextLowercase {
    type Err = ParseTextLowercaseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(TextLowercase::Auto),
            "true" => Ok(TextLowercase::On),
            "false" => Ok(TextLowercase::Off),
            other => Err(ParseTextLowercaseError(other.to_string())),
        }
    }
}

impl std::fmt::Display for TextLowercase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TextLowercase::Auto => "auto",
            TextLowercase::On => "true",
            TextLowercase::Off => "false",
        })
    }
}

/// Reads `"auto"`, `"true"`, `"false"`, or a boolean (`text_lowercase = true` in TOML).
impl<'de> serde::Deserialize<'de> for TextLowercase {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Value {
            Bool(bool),
            Text(String),
        }
        match Value::deserialize(deserializer)? {
            Value::Bool(true) => Ok(TextLowercase::On),
            Value::Bool(false) => Ok(TextLowercase::Off),
            Value::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A checkpoint's tokenizer: prompt to `max_length` ids, as transformers tokenizes for it.
#[derive(Debug, Clone)]
pub enum PromptTokenizer {
    /// SigLIP 1: SentencePiece Unigram (`SiglipTokenizer`).
    SentencePiece(SiglipTokenizer),
    /// SigLIP 2: Gemma's BPE (`GemmaTokenizer`, `Siglip2Tokenizer`).
    Gemma(GemmaTokenizer),
}

/// Only the model type of a `tokenizer.json`; the rest is skipped unread.
#[derive(serde::Deserialize)]
struct ModelType {
    model: ModelTypeInner,
}

#[derive(serde::Deserialize)]
struct ModelTypeInner {
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl PromptTokenizer {
    /// Loads the tokenizer of `file`: a `tokenizer.json` by its model type ("Unigram" or
    /// "BPE"), or a SentencePiece Unigram model; with `tokenizer_config.json` when present.
    /// `lowercase` overrides `do_lower_case` unless [`TextLowercase::Auto`].
    pub fn load(
        file: &TokenizerFile,
        tokenizer_config: Option<&Path>,
        max_length: usize,
        lowercase: TextLowercase,
    ) -> crate::error::Result<Self> {
        match file {
            TokenizerFile::Json(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let kind = serde_json::from_str::<ModelType>(&text)
                    .with_context(|| format!("{}: no model", path.display()))?
                    .model
                    .kind;
                match kind.as_deref() {
                    Some("Unigram") => {
                        let sp = SentencePiece::from_tokenizer_json(&text)
                            .with_context(|| path.display().to_string())?;
                        let tokenizer = SiglipTokenizer::new(sp, tokenizer_config, max_length)?;
                        Ok(Self::SentencePiece(tokenizer.lowercasing(lowercase)))
                    }
                    Some("BPE") => {
                        GemmaTokenizer::from_json(&text, tokenizer_config, max_length, lowercase)
                            .with_context(|| path.display().to_string())
                            .map(Self::Gemma)
                    }
                    other => bail!(
                        "{}: a {} model; SigLIP tokenizers are Unigram (SigLIP) or BPE (SigLIP 2)",
                        path.display(),
                        other.map_or("untyped".to_string(), |kind| format!("{kind:?}"))
                    ),
                }
            }
            TokenizerFile::SentencePiece(path) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let is_bpe = prost::Message::decode(bytes.as_slice())
                    .ok()
                    .and_then(|proto: ModelProto| proto.trainer_spec?.model_type)
                    == Some(2);
                if is_bpe {
                    bail!(
                        "{}: a SentencePiece BPE model (Gemma's, SigLIP 2): it is read from \
                         tokenizer.json, which this checkpoint lacks",
                        path.display()
                    );
                }
                let sp = SentencePiece::from_model_proto(&bytes)
                    .with_context(|| path.display().to_string())?;
                let tokenizer = SiglipTokenizer::new(sp, tokenizer_config, max_length)?;
                Ok(Self::SentencePiece(tokenizer.lowercasing(lowercase)))
            }
        }
    }

    /// Ids of `text`, exactly `max_length` of them.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self {
            Self::SentencePiece(t) => t.encode(text),
            Self::Gemma(t) => t.encode(text),
        }
    }

    /// One more than the largest id it gives.
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::SentencePiece(t) => t.vocab_size(),
            Self::Gemma(t) => t.vocab_size(),
        }
    }

    /// Length of every encoded prompt.
    pub fn max_length(&self) -> usize {
        match self {
            Self::SentencePiece(t) => t.max_length(),
            Self::Gemma(t) => t.max_length(),
        }
    }

    /// Whether prompts are lowercased (the resolved `text_lowercase`).
    pub fn lowercases(&self) -> bool {
        match self {
            Self::SentencePiece(t) => t.lower_case,
            Self::Gemma(t) => t.lowercases(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixture(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(rel)
    }

    #[test]
    fn text_lowercase_reads_and_writes_the_setting() {
        for (text, setting) in [
            ("auto", TextLowercase::Auto),
            ("true", TextLowercase::On),
            ("false", TextLowercase::Off),
        ] {
            assert_eq!(text.parse::<TextLowercase>(), Ok(setting));
            assert_eq!(setting.to_string(), text);
            let json: TextLowercase = serde_json::from_str(&format!("{text:?}")).unwrap();
            assert_eq!(json, setting);
        }
        assert_eq!(
            serde_json::from_str::<TextLowercase>("true").unwrap(),
            TextLowercase::On
        );
        assert_eq!(
            serde_json::from_str::<TextLowercase>("false").unwrap(),
            TextLowercase::Off
        );
        let error = "yes".parse::<TextLowercase>().unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"text_lowercase is auto, true or false, not "yes""#
        );
        assert!(serde_json::from_str::<TextLowercase>("\"True\"").is_err());
    }

    /// SigLIP 1 checkpoints: `auto` is SiglipTokenizer's own behaviour, the others override
    /// `do_lower_case`.
    #[test]
    fn sentencepiece_lowercasing_follows_the_setting() {
        let files = [
            TokenizerFile::Json(fixture("models/tiny-p16/tokenizer.json")),
            TokenizerFile::SentencePiece(fixture("models/tiny-p14/spiece.model")),
        ];
        for file in files {
            let config = fixture("models/tiny-p16/tokenizer_config.json");
            let load = |setting| PromptTokenizer::load(&file, Some(&config), 64, setting).unwrap();
            let ours = SiglipTokenizer::load(&file, Some(&config), 64).unwrap();
            let (auto, on, off) = (
                load(TextLowercase::Auto),
                load(TextLowercase::On),
                load(TextLowercase::Off),
            );
            assert!(matches!(auto, PromptTokenizer::SentencePiece(_)));
            assert!(auto.lowercases() && on.lowercases() && !off.lowercases());
            assert_eq!(auto.vocab_size(), ours.vocab_size());
            assert_eq!(auto.max_length(), 64);
            for text in ["A Photo of a CAT.", "ΟΔΟΣ", "cat"] {
                assert_eq!(auto.encode(text), ours.encode(text));
                assert_eq!(on.encode(text), ours.encode(text));
            }
            assert_ne!(
                off.encode("A Photo of a CAT."),
                ours.encode("A Photo of a CAT.")
            );
        }
    }

    #[test]
    fn other_tokenizers_are_refused_with_their_kind() {
        let dir = std::env::temp_dir().join(format!("siglip-prompt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wordpiece = dir.join("tokenizer.json");
        std::fs::write(
            &wordpiece,
            r#"{"model": {"type": "WordPiece", "vocab": {}}}"#,
        )
        .unwrap();
        let error = PromptTokenizer::load(
            &TokenizerFile::Json(wordpiece),
            None,
            64,
            TextLowercase::Auto,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains(r#"a "WordPiece" model"#),
            "{error}"
        );
        // Gemma's SentencePiece model without its tokenizer.json.
        let bpe = TokenizerFile::SentencePiece(fixture("siglip2/gemma-tokenizer/tokenizer.model"));
        let error = PromptTokenizer::load(&bpe, None, 64, TextLowercase::Auto).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("tokenizer.json, which this checkpoint lacks"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
