//! Where a text may be cut so that the ids of the part before the cut are the first ids of the
//! whole text: what keeps the work of a long text bounded by the part that is kept.
//!
//! A cut between the characters `x` and `y` is safe when nothing that joins text can join
//! across it:
//! - added tokens are matched before BPE: no added token holds `x` followed by `y` (on the
//!   raw text for literal tokens, on the normalised one for the others), none that must be a
//!   single word ends in `x`, and `x` is not whitespace (an `lstrip` token further on would eat
//!   the whitespace up to the first other character; `rstrip` only eats after its own token);
//! - the normalisers (Lowercase, " " to "▁") map each character on its own;
//! - the pre-tokenizer splits nothing (no space is left after the normaliser), so BPE sees the
//!   whole chunk as one word, and a merge `(a, b)` could join across the cut only if `a` ends
//!   with the symbol before it and `b` starts with the one after: no merge pairs those ends.
//!   A character that is no piece is byte pieces (`<0x..>`, ending in '>' and starting with
//!   '<'), none of which is `<unk>` when all 256 are pieces; otherwise unknown characters are
//!   never cut beside, as `<unk>` pieces fuse.
//!
//! The rule is read from the vocabulary, never assumed. In Gemma's, as in any SentencePiece
//! vocabulary trained with `split_by_whitespace` (GemmaConverter's notes say Gemma's was), no
//! piece holds "▁" after another character: every space after a non-space character is a safe
//! cut. Characters that no merge joins (a CJK character beside an unknown one, often
//! punctuation) are others.

use std::collections::HashSet;

use tokenizers::models::bpe::{Merges, Vocab};
use tokenizers::AddedToken;

/// Which cuts are safe for one tokenizer.
#[derive(Debug, Clone)]
pub(super) struct Cuts {
    lowercase: bool,
    /// `(last character of a, first character of b)` for every merge `(a, b)`.
    merge_ends: HashSet<(char, char)>,
    /// Adjacent characters inside a literal added token.
    literal_token_pairs: HashSet<(char, char)>,
    /// Adjacent characters inside a normalised added token, as normalised.
    normalized_token_pairs: HashSet<(char, char)>,
    /// The last characters of the added tokens that must be a single word.
    single_word_ends: HashSet<char>,
    /// The characters that are pieces; the others fall back to bytes.
    char_pieces: HashSet<char>,
    /// All 256 byte pieces exist: no character becomes `<unk>`.
    bytes_complete: bool,
}

/// One character as the normaliser maps it: lowercased when asked, a space to "▁".
fn normalized(c: char, lowercase: bool) -> impl Iterator<Item = char> {
    let lowered = lowercase.then(|| c.to_lowercase());
    let kept = (!lowercase).then_some(c);
    lowered
        .into_iter()
        .flatten()
        .chain(kept)
        .map(|c| if c == ' ' { '\u{2581}' } else { c })
}

fn adjacent_pairs(text: &str) -> impl Iterator<Item = (char, char)> + '_ {
    text.chars().zip(text.chars().skip(1))
}

impl Cuts {
    pub(super) fn new(
        vocab: &Vocab,
        merges: &Merges,
        added: &[AddedToken],
        lowercase: bool,
    ) -> Self {
        let last = |s: &str| s.chars().next_back();
        let first = |s: &str| s.chars().next();
        let merge_ends = merges
            .iter()
            .filter_map(|(a, b)| Some((last(a)?, first(b)?)))
            .collect();
        let mut literal_token_pairs = HashSet::new();
        let mut normalized_token_pairs = HashSet::new();
        for token in added {
            if token.normalized {
                let normalized: String = token
                    .content
                    .chars()
                    .flat_map(|c| normalized(c, lowercase))
                    .collect();
                normalized_token_pairs.extend(adjacent_pairs(&normalized));
            } else {
                literal_token_pairs.extend(adjacent_pairs(&token.content));
            }
        }
        let single_word_ends = added
            .iter()
            .filter(|t| t.single_word)
            .filter_map(|t| last(&t.content))
            .collect();
        let char_pieces = vocab
            .keys()
            .filter_map(|piece| {
                let mut chars = piece.chars();
                chars.next().filter(|_| chars.next().is_none())
            })
            .collect();
        let bytes_complete = (0..=255u8).all(|b| vocab.contains_key(&format!("<0x{b:02X}>")));
        Self {
            lowercase,
            merge_ends,
            literal_token_pairs,
            normalized_token_pairs,
            single_word_ends,
            char_pieces,
            bytes_complete,
        }
    }

    /// The byte offset of the last safe cut in `text[start..end]` (`end` a character boundary
    /// before the text's end), if any.
    pub(super) fn last_cut(&self, text: &str, start: usize, end: usize) -> Option<usize> {
        let mut after = text[end..].chars().next()?;
        for (i, before) in text[..end].char_indices().rev() {
            let cut = i + before.len_utf8();
            if cut <= start {
                break;
            }
            if self.is_safe(before, after) {
                return Some(cut);
            }
            after = before;
        }
        None
    }

    /// Whether nothing joins `before` and `after` (see the module documentation).
    fn is_safe(&self, before: char, after: char) -> bool {
        if before.is_whitespace()
            || self.literal_token_pairs.contains(&(before, after))
            || self.single_word_ends.contains(&before)
        {
            return false;
        }
        let (Some(x), Some(y)) = (
            normalized(before, self.lowercase).last(),
            normalized(after, self.lowercase).next(),
        ) else {
            return false;
        };
        if self.normalized_token_pairs.contains(&(x, y)) {
            return false;
        }
        let symbol_end = match self.char_pieces.contains(&x) {
            true => x,
            false if self.bytes_complete => '>',
            false => return false,
        };
        let symbol_start = match self.char_pieces.contains(&y) {
            true => y,
            false if self.bytes_complete => '<',
            false => return false,
        };
        !self.merge_ends.contains(&(symbol_end, symbol_start))
    }
}
