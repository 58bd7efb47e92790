//! GPT-2-style byte-level BPE built from GGUF metadata (`tokenizer.ggml.*`).
//!
//! Encoding: special tokens written in the text are matched first; the rest is pre-tokenised (digits
//! one by one, then the GPT-2 word pattern), each piece's bytes are mapped to GPT-2's printable
//! characters and merged by rank. Decoding maps each token back to raw bytes; control tokens decode to
//! nothing.

use std::collections::{BinaryHeap, HashMap};

use candle_core::quantized::gguf_file::Value;
use regex::Regex;

use crate::error::BackendError;

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// GPT-2 pre-tokeniser; llama.cpp and HF add `(?!\S)` to the whitespace branch, emulated in code.
const GPT2_PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

/// A byte-level BPE tokenizer.
#[derive(Debug)]
pub struct BpeTokenizer {
    /// Raw bytes of every token (empty for control tokens).
    token_bytes: Vec<Vec<u8>>,
    /// Token id of each single byte (the unknown token, or nothing, for bytes outside the vocab).
    byte_token: [Option<u32>; 256],
    /// (left, right) → (rank, merged token).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Special tokens matched verbatim in the text, longest first.
    specials: Vec<(String, u32)>,
    /// Control token ids.
    control: Vec<bool>,
    pattern: Regex,
}

/// GPT-2's byte → printable character table.
fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap_or('\0')
        };
    }
    table
}

fn md<'a>(metadata: &'a HashMap<String, Value>, key: &str) -> Result<&'a Value, BackendError> {
    metadata
        .get(key)
        .ok_or_else(|| BackendError::Model(format!("GGUF metadata has no '{key}'")))
}

fn strings(value: &Value, key: &str) -> Result<Vec<String>, BackendError> {
    let bad = || BackendError::Model(format!("GGUF metadata '{key}' is not a string array"));
    value
        .to_vec()
        .map_err(|_| bad())?
        .iter()
        .map(|v| v.to_string().cloned().map_err(|_| bad()))
        .collect()
}

impl BpeTokenizer {
    /// Builds the tokenizer from GGUF metadata; only `tokenizer.ggml.model = gpt2` is supported.
    pub fn from_gguf(metadata: &HashMap<String, Value>) -> Result<Self, BackendError> {
        let model = md(metadata, "tokenizer.ggml.model")?
            .to_string()
            .map_err(|e| BackendError::Model(e.to_string()))?;
        if model != "gpt2" {
            return Err(BackendError::Model(format!(
                "tokenizer model '{model}' is not supported (only byte-level BPE 'gpt2')"
            )));
        }
        let tokens = strings(
            md(metadata, "tokenizer.ggml.tokens")?,
            "tokenizer.ggml.tokens",
        )?;
        let merges = strings(
            md(metadata, "tokenizer.ggml.merges")?,
            "tokenizer.ggml.merges",
        )?;
        let unknown = metadata
            .get("tokenizer.ggml.unknown_token_id")
            .and_then(|v| v.to_u32().ok());
        let types: Vec<i32> = match metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .map_err(|e| BackendError::Model(e.to_string()))?
                .iter()
                .map(|t| t.to_i32().unwrap_or(1))
                .collect(),
            None => vec![1; tokens.len()],
        };
        Self::new(&tokens, &types, &merges, unknown)
    }

    /// Builds the tokenizer from its vocabulary (GPT-2 character form), token types and merges.
    pub fn new(
        tokens: &[String],
        types: &[i32],
        merges: &[String],
        unknown: Option<u32>,
    ) -> Result<Self, BackendError> {
        let table = byte_to_char();
        let mut char_to_byte = HashMap::with_capacity(256);
        for (b, c) in table.iter().enumerate() {
            char_to_byte.insert(*c, b as u8);
        }
        let ids: HashMap<&str, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect();
        let mut specials = Vec::new();
        let mut control = vec![false; tokens.len()];
        let mut token_bytes = Vec::with_capacity(tokens.len());
        for (i, token) in tokens.iter().enumerate() {
            let kind = types.get(i).copied().unwrap_or(1);
            if kind == TOKEN_TYPE_CONTROL || kind == TOKEN_TYPE_USER_DEFINED {
                if !token.is_empty() {
                    specials.push((token.clone(), i as u32));
                }
                control[i] = kind == TOKEN_TYPE_CONTROL;
                token_bytes.push(if kind == TOKEN_TYPE_CONTROL {
                    Vec::new()
                } else {
                    token.as_bytes().to_vec()
                });
            } else {
                // Characters outside the byte table (never in a well-formed vocab) pass as UTF-8.
                let mut bytes = Vec::with_capacity(token.len());
                for c in token.chars() {
                    match char_to_byte.get(&c) {
                        Some(b) => bytes.push(*b),
                        None => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                    }
                }
                token_bytes.push(bytes);
            }
        }
        specials.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        let mut byte_token = [None; 256];
        for (b, c) in table.iter().enumerate() {
            byte_token[b] = ids
                .get(c.encode_utf8(&mut [0; 4]) as &str)
                .copied()
                .or(unknown);
        }
        let mut merge_map = HashMap::with_capacity(merges.len());
        for (rank, merge) in merges.iter().enumerate() {
            let Some((left, right)) = merge.split_once(' ') else {
                return Err(BackendError::Model(format!("malformed merge '{merge}'")));
            };
            let (Some(&l), Some(&r), Some(&m)) = (
                ids.get(left),
                ids.get(right),
                ids.get(format!("{left}{right}").as_str()),
            ) else {
                // A merge whose parts are not in the vocabulary can never apply.
                continue;
            };
            merge_map.entry((l, r)).or_insert((rank as u32, m));
        }
        let pattern =
            Regex::new(GPT2_PATTERN).map_err(|e| BackendError::Model(format!("regex: {e}")))?;
        Ok(Self {
            token_bytes,
            byte_token,
            merges: merge_map,
            specials,
            control,
            pattern,
        })
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    /// The raw bytes token `id` contributes to the output (nothing for control tokens).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.token_bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// True for control tokens such as `<|im_end|>`.
    pub fn is_control(&self, id: u32) -> bool {
        self.control.get(id as usize).copied().unwrap_or(false)
    }

    /// The id of a special token given its text.
    pub fn special_id(&self, text: &str) -> Option<u32> {
        self.specials
            .iter()
            .find(|(t, _)| t == text)
            .map(|(_, id)| *id)
    }

    /// Decodes tokens to text (lossy on invalid UTF-8).
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&id| self.token_bytes(id))
            .copied()
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Encodes text; special tokens written in it become their ids.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        let mut rest = text;
        while !rest.is_empty() {
            let next_special = self
                .specials
                .iter()
                .filter_map(|(t, id)| rest.find(t.as_str()).map(|at| (at, t.len(), *id)))
                .min_by_key(|&(at, len, _)| (at, std::cmp::Reverse(len)));
            match next_special {
                Some((at, len, id)) => {
                    self.encode_ordinary(&rest[..at], &mut out);
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    self.encode_ordinary(rest, &mut out);
                    break;
                }
            }
        }
        out
    }

    /// Pre-tokenises text without special tokens and BPE-encodes each piece.
    fn encode_ordinary(&self, text: &str, out: &mut Vec<u32>) {
        // Digits stand alone (SmolLM's and llama.cpp's `\p{N}` pre-split), then the GPT-2 pattern.
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c.is_numeric() {
                self.encode_words(&text[start..i], out);
                self.bpe(&text.as_bytes()[i..i + c.len_utf8()], out);
                start = i + c.len_utf8();
            }
        }
        self.encode_words(&text[start..], out);
    }

    fn encode_words(&self, text: &str, out: &mut Vec<u32>) {
        let mut pos = 0;
        while pos < text.len() {
            let Some(m) = self.pattern.find_at(text, pos) else {
                break;
            };
            let mut end = m.end();
            let piece = m.as_str();
            // `\s+(?!\S)`: a whitespace run followed by more text leaves its last character to
            // start the next piece (where " ?\p{L}+" and friends pick up a single space).
            if end < text.len() && piece.chars().all(char::is_whitespace) {
                let last = piece.chars().next_back().map_or(0, char::len_utf8);
                if piece.len() > last {
                    end -= last;
                }
            }
            self.bpe(&text.as_bytes()[m.start()..end], out);
            pos = end;
        }
    }

    /// Merges the bytes of one piece by rank, lowest first (heap over a linked list: O(n log n)).
    fn bpe(&self, bytes: &[u8], out: &mut Vec<u32>) {
        if bytes.is_empty() {
            return;
        }
        let mut ids: Vec<u32> = bytes
            .iter()
            .filter_map(|&b| self.byte_token[b as usize])
            .collect();
        if ids.is_empty() {
            return;
        }
        if ids.len() == 1 {
            out.push(ids[0]);
            return;
        }
        let n = ids.len();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        // Min-heap on (rank, position) via Reverse; stale entries are skipped when popped.
        let mut heap = BinaryHeap::new();
        let pair = |ids: &[u32], i: usize, j: usize| self.merges.get(&(ids[i], ids[j])).copied();
        for i in 0..n - 1 {
            if let Some((rank, merged)) = pair(&ids, i, i + 1) {
                heap.push(std::cmp::Reverse((rank, i, ids[i], ids[i + 1], merged)));
            }
        }
        while let Some(std::cmp::Reverse((_, i, left, right, merged))) = heap.pop() {
            let j = next[i];
            if !alive[i] || j >= n || ids[i] != left || ids[j] != right {
                continue;
            }
            ids[i] = merged;
            alive[j] = false;
            next[i] = next[j];
            if next[j] < n {
                prev[next[j]] = i;
            }
            let p = prev[i];
            if p < n
                && let Some((rank, m)) = pair(&ids, p, i)
            {
                heap.push(std::cmp::Reverse((rank, p, ids[p], ids[i], m)));
            }
            let k = next[i];
            if k < n
                && let Some((rank, m)) = pair(&ids, i, k)
            {
                heap.push(std::cmp::Reverse((rank, i, ids[i], ids[k], m)));
            }
        }
        out.extend(
            ids.iter()
                .zip(&alive)
                .filter(|(_, a)| **a)
                .map(|(id, _)| *id),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> BpeTokenizer {
        let table = byte_to_char();
        let mut tokens: Vec<String> = vec!["<|end|>".into()];
        tokens.extend(table.iter().map(|c| c.to_string()));
        for t in [
            "Ġw", "or", "Ġwor", "ld", "Ġworld", "ll", "he", "hell", "hello",
        ] {
            tokens.push(t.into());
        }
        let mut types = vec![1; tokens.len()];
        types[0] = TOKEN_TYPE_CONTROL;
        let merges: Vec<String> = [
            "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "l l", "h e", "he ll", "hell o",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        BpeTokenizer::new(&tokens, &types, &merges, None).unwrap()
    }

    #[test]
    fn merges_by_rank_and_round_trips() {
        let tok = tiny();
        let ids = tok.encode("hello world<|end|>");
        let pieces: Vec<String> = ids.iter().map(|&i| tok.decode(&[i])).collect();
        assert_eq!(pieces, vec!["hello", " world", ""]);
        assert!(tok.is_control(*ids.last().unwrap()));
        let text = "héllo  wörld\n\n 12 x's ✓";
        assert_eq!(tok.decode(&tok.encode(text)), text);
    }

    #[test]
    fn whitespace_run_leaves_one_space_for_the_next_word() {
        let tok = tiny();
        // "a   world": the run of three spaces splits into two spaces plus " world".
        let ids = tok.encode("a   world");
        let pieces: Vec<String> = ids.iter().map(|&i| tok.decode(&[i])).collect();
        assert_eq!(pieces, vec!["a", " ", " ", " world"]);
    }

    #[test]
    fn long_pieces_are_fast_enough_to_finish() {
        let tok = tiny();
        let text = " ".repeat(200_000);
        assert_eq!(tok.encode(&text).len(), 200_000);
    }
}
