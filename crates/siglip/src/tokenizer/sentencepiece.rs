//! A SentencePiece unigram encoder, faithful to the C++ library that SiglipTokenizer calls.
//!
//! Built from `spiece.model` (the ModelProto) or from a `tokenizer.json` holding the same
//! Unigram vocabulary and `Precompiled` normaliser. Mirrors `Normalizer::Normalize`
//! (normalizer.cc), `Model::Encode` (unigram_model.cc: Viterbi in f32, unknown characters
//! scored `min_score - 10`) and the merging of unknown runs in `PopulateSentencePieceText`.

use std::collections::HashMap;

use crate::error::{bail, Context};
use base64::Engine as _;
use prost::Message;

use super::model_proto::ModelProto;

use super::charsmap::CharsMap;

/// What SentencePiece does with a piece when encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceKind {
    /// Matched in text, scored by its log-probability.
    Normal,
    /// Matched in text, always preferred.
    UserDefined,
    /// Never matched in text: control pieces (`</s>`), `<unk>`, unused and byte pieces.
    Reserved,
}

/// One encoded piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Vocabulary id (`unk_id` for unknown runs).
    pub id: u32,
}

/// A unigram SentencePiece model with its normaliser.
#[derive(Debug, Clone)]
pub struct SentencePiece {
    scores: Vec<f32>,
    kinds: Vec<PieceKind>,
    /// Matchable pieces (normal and user-defined) by their text.
    lookup: HashMap<String, u32>,
    /// Every piece by its text, reserved ones included (`piece_to_id`).
    ids: HashMap<String, u32>,
    longest_piece: usize,
    unk_id: u32,
    min_score: f32,
    max_score: f32,
    charsmap: Option<CharsMap>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
}

const SPACE_SYMBOL: &str = "\u{2581}";
const UNK_PENALTY: f32 = 10.0;

impl SentencePiece {
    /// Parses a `spiece.model` file's bytes.
    pub fn from_model_proto(bytes: &[u8]) -> crate::error::Result<Self> {
        let proto =
            ModelProto::decode(bytes).context("spiece.model is not a SentencePiece model")?;
        if let Some(trainer) = &proto.trainer_spec {
            match trainer.model_type.unwrap_or(1) {
                1 => {}
                2 => bail!(
                    "spiece.model is a BPE model (Gemma's, SigLIP 2's?): such tokenizers are \
                     read from tokenizer.json"
                ),
                other => bail!("spiece.model is not a unigram model (model type {other})"),
            }
            if trainer.byte_fallback.unwrap_or(false) {
                bail!("spiece.model uses byte fallback, which SigLIP tokenizers never do");
            }
        }
        let pieces = proto
            .pieces
            .iter()
            .map(|p| {
                let kind = match p.kind.unwrap_or(1) {
                    1 => PieceKind::Normal,
                    4 => PieceKind::UserDefined,
                    _ => PieceKind::Reserved,
                };
                (
                    p.piece.clone().unwrap_or_default(),
                    p.score.unwrap_or(0.0),
                    kind,
                )
            })
            .collect::<Vec<_>>();
        let unk_id = proto
            .pieces
            .iter()
            .position(|p| p.kind == Some(2))
            .context("spiece.model has no unknown piece")?;
        let spec = proto.normalizer_spec.unwrap_or_default();
        let charsmap = match spec.precompiled_charsmap.as_deref() {
            Some(blob) if !blob.is_empty() => Some(CharsMap::parse(blob)?),
            _ => None,
        };
        Ok(Self::new(
            pieces,
            unk_id as u32,
            charsmap,
            spec.add_dummy_prefix.unwrap_or(true),
            spec.remove_extra_whitespaces.unwrap_or(true),
            spec.escape_whitespaces.unwrap_or(true),
        ))
    }

    /// Reads a Hugging Face `tokenizer.json` with a Unigram model: its vocabulary, its
    /// `Precompiled` normaliser and its Metaspace prefix rule. Its added special tokens
    /// are reserved pieces, as control pieces are in SentencePiece.
    pub fn from_tokenizer_json(text: &str) -> crate::error::Result<Self> {
        let json: serde_json::Value =
            serde_json::from_str(text).context("tokenizer.json is not JSON")?;
        let model = &json["model"];
        if model["type"] != "Unigram" {
            bail!(
                "tokenizer.json has a {} model; SigLIP needs a Unigram one",
                model["type"]
            );
        }
        if model["byte_fallback"].as_bool().unwrap_or(false) {
            bail!("tokenizer.json uses byte fallback, which SigLIP tokenizers never do");
        }
        let special: Vec<&str> = json["added_tokens"]
            .as_array()
            .map(|tokens| {
                tokens
                    .iter()
                    .filter(|t| t["special"].as_bool().unwrap_or(false))
                    .filter_map(|t| t["content"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let unk_id = model["unk_id"]
            .as_u64()
            .context("tokenizer.json has no unk_id")? as u32;
        let pieces = model["vocab"]
            .as_array()
            .context("tokenizer.json has no Unigram vocab")?
            .iter()
            .enumerate()
            .map(|(id, entry)| {
                let piece = entry[0].as_str().context("bad vocab entry")?.to_string();
                let score = entry[1].as_f64().context("bad vocab entry")? as f32;
                let reserved = id as u32 == unk_id || special.contains(&piece.as_str());
                let kind = if reserved {
                    PieceKind::Reserved
                } else {
                    PieceKind::Normal
                };
                Ok((piece, score, kind))
            })
            .collect::<crate::error::Result<Vec<_>>>()?;
        let charsmap = match find_precompiled(&json["normalizer"]) {
            Some(b64) => Some(CharsMap::parse(
                &base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .context("precompiled_charsmap is not base64")?,
            )?),
            None => None,
        };
        let add_dummy_prefix = metaspace_prepends(&json["pre_tokenizer"]).unwrap_or(true);
        Ok(Self::new(
            pieces,
            unk_id,
            charsmap,
            add_dummy_prefix,
            true,
            true,
        ))
    }

    fn new(
        pieces: Vec<(String, f32, PieceKind)>,
        unk_id: u32,
        charsmap: Option<CharsMap>,
        add_dummy_prefix: bool,
        remove_extra_whitespaces: bool,
        escape_whitespaces: bool,
    ) -> Self {
        let normal_scores = || {
            pieces
                .iter()
                .filter(|p| p.2 == PieceKind::Normal)
                .map(|p| p.1)
        };
        let min_score = normal_scores().fold(f32::MAX, f32::min);
        let max_score = normal_scores().fold(f32::MIN_POSITIVE, f32::max);
        let mut lookup = HashMap::new();
        let mut ids = HashMap::new();
        for (id, (piece, _, kind)) in pieces.iter().enumerate() {
            ids.entry(piece.clone()).or_insert(id as u32);
            if *kind != PieceKind::Reserved {
                lookup.entry(piece.clone()).or_insert(id as u32);
            }
        }
        Self {
            longest_piece: lookup.keys().map(String::len).max().unwrap_or(0),
            scores: pieces.iter().map(|p| p.1).collect(),
            kinds: pieces.iter().map(|p| p.2).collect(),
            lookup,
            ids,
            unk_id,
            min_score,
            max_score,
            charsmap,
            add_dummy_prefix,
            remove_extra_whitespaces,
            escape_whitespaces,
        }
    }

    /// The id of a piece's text, as `piece_to_id`: unknown text maps to `unk_id`.
    pub fn piece_to_id(&self, piece: &str) -> u32 {
        self.ids.get(piece).copied().unwrap_or(self.unk_id)
    }

    /// Number of pieces in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.scores.len()
    }

    /// `sp.encode(text)`: normalise, then segment.
    pub fn encode(&self, text: &str) -> Vec<Piece> {
        let normalized = self.normalize(text);
        self.segment(&normalized, usize::MAX, normalized.len()).0
    }

    /// More than `wanted` first pieces of the encoding of any text that starts with `prefix`,
    /// if `prefix` settles them; `None` if it does not. The normalised form of the prefix's
    /// last [`UNSETTLED_TAIL_BYTES`] may differ from the whole text's, so only what comes
    /// before them counts. The cost is bounded by the prefix.
    pub fn encode_first(&self, prefix: &str, wanted: usize) -> Option<Vec<Piece>> {
        let normalized = self.normalize(prefix);
        let settled = normalized.len().checked_sub(UNSETTLED_TAIL_BYTES)?;
        match self.segment(&normalized, wanted, settled) {
            (pieces, true) => Some(pieces),
            (_, false) => None,
        }
    }

    /// SentencePiece's `Normalizer::Normalize` (without user-defined symbols).
    fn normalize(&self, mut input: &str) -> String {
        let prefix = |s: &'_ str| -> (String, usize) {
            match &self.charsmap {
                Some(map) => {
                    let (out, used) = map.normalize_prefix(s);
                    (out.to_string(), used)
                }
                None => {
                    let len = s.chars().next().map_or(0, char::len_utf8);
                    (s[..len].to_string(), len)
                }
            }
        };
        if self.remove_extra_whitespaces {
            while !input.is_empty() {
                let (out, used) = prefix(input);
                if out != " " {
                    break;
                }
                input = &input[used..];
            }
        }
        let mut normalized = String::with_capacity(input.len() + 3);
        if input.is_empty() {
            return normalized;
        }
        let space = if self.escape_whitespaces {
            SPACE_SYMBOL
        } else {
            " "
        };
        if self.add_dummy_prefix {
            normalized.push_str(space);
        }
        let mut prev_space = self.remove_extra_whitespaces;
        while !input.is_empty() {
            let (out, used) = prefix(input);
            let mut piece = out.as_str();
            if prev_space {
                piece = piece.trim_start_matches(' ');
            }
            if !piece.is_empty() {
                for c in piece.chars() {
                    if c == ' ' {
                        normalized.push_str(space);
                    } else {
                        normalized.push(c);
                    }
                }
                prev_space = piece.ends_with(' ');
            }
            input = &input[used..];
            if !self.remove_extra_whitespaces {
                prev_space = false;
            }
        }
        if self.remove_extra_whitespaces {
            while normalized.ends_with(space) {
                normalized.truncate(normalized.len() - space.len());
            }
        }
        normalized
    }

    /// Viterbi over the lattice of matchable pieces, as `unigram::Model::Encode`; the pieces,
    /// and whether they stopped early at `wanted` certain ones.
    ///
    /// With more than `wanted` pieces certain, it stops: no piece is longer than `reach`
    /// bytes, so every path to a later position passes through one of the last `reach`
    /// positions settled, and where the best paths to all of those meet, the path up to that
    /// point is every longer text's. A position's best path depends only on the text before
    /// it, so the check holds for any text that shares `text[..checked_until]`. It runs every
    /// [`CERTAINTY_CHECK_BYTES`].
    fn segment(&self, text: &str, wanted: usize, checked_until: usize) -> (Vec<Piece>, bool) {
        #[derive(Clone, Copy)]
        struct Best {
            id: u32,
            score: f32,
            start: Option<usize>,
            /// Pieces on the best path to here, a run of unknown pieces counting once (as
            /// they come out).
            pieces: usize,
        }
        let unset = Best {
            id: 0,
            score: 0.0,
            start: None,
            pieces: 0,
        };
        let mut best = vec![unset; text.len() + 1];
        let unk_score = self.min_score - UNK_PENALTY;
        let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        // An unknown character is one piece of up to 4 bytes.
        let reach = self.longest_piece.max(4);
        let mut next_check = CERTAINTY_CHECK_BYTES;
        let mut end = text.len();
        let mut certain = false;
        for (n, &start) in boundaries.iter().enumerate() {
            if start >= next_check && start <= checked_until && wanted < usize::MAX {
                next_check = start + CERTAINTY_CHECK_BYTES;
                // best[..=start] is settled: start is the next position pieces leave from.
                let window = boundaries[..=n]
                    .iter()
                    .rev()
                    .take_while(|&&p| p + reach > start)
                    .copied();
                if let Some(meet) = meeting_point(window, |p| best[p].start) {
                    if best[meet].pieces > wanted {
                        end = meet;
                        certain = true;
                        break;
                    }
                }
            }
            let here = best[start].score;
            let after_unknown = start > 0 && best[start].id == self.unk_id;
            let pieces_here = best[start].pieces;
            let unk_id = self.unk_id;
            let pieces_after =
                |id: u32| pieces_here + usize::from(!(after_unknown && id == unk_id));
            let char_len = boundaries.get(n + 1).copied().unwrap_or(text.len()) - start;
            let mut has_single = false;
            let ends = boundaries[n + 1..].iter().copied().chain([text.len()]);
            for end in ends.take_while(|&e| e - start <= self.longest_piece) {
                let Some(&id) = self.lookup.get(&text[start..end]) else {
                    continue;
                };
                let length = end - start;
                let score = match self.kinds[id as usize] {
                    PieceKind::UserDefined => length as f32 * self.max_score - 0.1,
                    _ => self.scores[id as usize],
                };
                let candidate = score + here;
                let target = &mut best[end];
                if target.start.is_none() || candidate > target.score {
                    *target = Best {
                        id,
                        score: candidate,
                        start: Some(start),
                        pieces: pieces_after(id),
                    };
                }
                has_single |= length == char_len;
            }
            if !has_single {
                let candidate = unk_score + here;
                let target = &mut best[start + char_len];
                if target.start.is_none() || candidate > target.score {
                    *target = Best {
                        id: self.unk_id,
                        score: candidate,
                        start: Some(start),
                        pieces: pieces_after(self.unk_id),
                    };
                }
            }
        }
        let mut pieces = Vec::new();
        while end > 0 {
            let node = best[end];
            pieces.push(Piece { id: node.id });
            end = node.start.unwrap_or(0);
        }
        pieces.reverse();
        // Runs of unknown pieces become one piece, as SentencePieceProcessor does.
        pieces.dedup_by(|b, a| a.id == self.unk_id && b.id == self.unk_id);
        (pieces, certain)
    }
}

/// How often, in bytes of normalised text, [`SentencePiece::segment`] checks whether the
/// pieces it was asked for are certain.
const CERTAINTY_CHECK_BYTES: usize = 1024;

/// The end of a normalised prefix that may normalise differently once the text goes on (a
/// rule matching across the cut, trailing whitespace removed): far longer than any rule.
const UNSETTLED_TAIL_BYTES: usize = 256;

/// The latest position that the best paths back from every position of `window` all pass
/// through (`back` gives each position's predecessor on its best path), or `None` if they do
/// not meet within a bounded walk.
fn meeting_point(
    window: impl Iterator<Item = usize>,
    back: impl Fn(usize) -> Option<usize>,
) -> Option<usize> {
    const MAX_STEPS: usize = 1 << 14;
    let mut heads: Vec<usize> = window.collect();
    for _ in 0..MAX_STEPS {
        let latest = *heads.iter().max()?;
        if heads.iter().all(|&h| h == latest) {
            return Some(latest);
        }
        // Step back every path that is ahead of the others; paths only move earlier.
        for head in heads.iter_mut().filter(|h| **h == latest) {
            *head = back(*head)?;
        }
    }
    None
}

/// The base64 `precompiled_charsmap` of a (possibly nested) `Precompiled` normaliser.
fn find_precompiled(normalizer: &serde_json::Value) -> Option<&str> {
    match normalizer["type"].as_str()? {
        "Precompiled" => normalizer["precompiled_charsmap"].as_str(),
        "Sequence" => normalizer["normalizers"]
            .as_array()?
            .iter()
            .find_map(find_precompiled),
        _ => None,
    }
}

/// Whether a (possibly nested) Metaspace pre-tokeniser adds the "▁" prefix.
fn metaspace_prepends(pre_tokenizer: &serde_json::Value) -> Option<bool> {
    match pre_tokenizer["type"].as_str()? {
        "Metaspace" => match pre_tokenizer["prepend_scheme"].as_str() {
            Some(scheme) => Some(scheme != "never"),
            None => pre_tokenizer["add_prefix_space"].as_bool(),
        },
        "Sequence" => pre_tokenizer["pretokenizers"]
            .as_array()?
            .iter()
            .find_map(metaspace_prepends),
        _ => None,
    }
}
