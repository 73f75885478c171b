//! SentencePiece's precompiled normalisation map (`precompiled_charsmap`, e.g. nmt_nfkc).
//!
//! The blob is a little-endian u32 trie size, a darts-clone double array of that many bytes,
//! then NUL-terminated replacement strings. `normalize_prefix` is SentencePiece's
//! `Normalizer::NormalizePrefix`: the LONGEST matching prefix is replaced, otherwise one
//! character passes through unchanged.

use crate::error::{bail, ensure};

/// A parsed `precompiled_charsmap`.
#[derive(Debug, Clone)]
pub struct CharsMap {
    units: Vec<u32>,
    normalized: Vec<u8>,
}

impl CharsMap {
    /// Parses the blob stored in a SentencePiece model or a tokenizer.json `Precompiled` normalizer.
    pub fn parse(blob: &[u8]) -> crate::error::Result<Self> {
        ensure!(blob.len() >= 4, "precompiled_charsmap is truncated");
        let trie_size =
            u32::from_le_bytes(blob[..4].try_into().expect("four bytes checked above")) as usize;
        ensure!(
            trie_size.is_multiple_of(4) && blob.len() >= 4 + trie_size && trie_size > 0,
            "precompiled_charsmap has a bad trie size {trie_size}"
        );
        let units = blob[4..4 + trie_size]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let normalized = blob[4 + trie_size..].to_vec();
        if std::str::from_utf8(&normalized).is_err() {
            bail!("precompiled_charsmap holds invalid UTF-8");
        }
        Ok(Self { units, normalized })
    }

    /// Darts-clone `commonPrefixSearch`, keeping the longest match: `(value, byte length)`.
    fn longest_match(&self, key: &[u8]) -> Option<(usize, usize)> {
        let unit = |pos: usize| self.units.get(pos).copied();
        let offset = |u: u32| ((u >> 10) << ((u & (1 << 9)) >> 6)) as usize;
        let has_leaf = |u: u32| (u >> 8) & 1 == 1;
        let label = |u: u32| u & ((1 << 31) | 0xFF);

        let mut best = None;
        let mut pos = offset(unit(0)?);
        for (i, &byte) in key.iter().enumerate() {
            pos ^= byte as usize;
            let u = unit(pos)?;
            if label(u) != byte as u32 {
                break;
            }
            pos ^= offset(u);
            if has_leaf(u) {
                let value = unit(pos)? & ((1 << 31) - 1);
                best = Some((value as usize, i + 1));
            }
        }
        best
    }

    /// Normalises the start of `input`: `(replacement, bytes consumed)`.
    pub fn normalize_prefix<'a>(&'a self, input: &'a str) -> (&'a str, usize) {
        if let Some((value, length)) = self.longest_match(input.as_bytes()) {
            if input.is_char_boundary(length) {
                if let Some(tail) = self.normalized.get(value..) {
                    let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
                    if let Ok(replacement) = std::str::from_utf8(&tail[..end]) {
                        return (replacement, length);
                    }
                }
            }
        }
        let length = input.chars().next().map_or(0, char::len_utf8);
        (&input[..length], length)
    }
}
