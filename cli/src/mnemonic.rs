//! New 24-word TON mnemonics.
//!
//! TON mnemonics are BIP-39 English words, but the checksum is TON's own: a phrase is valid
//! (without a password) when the first byte of PBKDF2-SHA512(HMAC-SHA512(phrase), "TON seed
//! version", 390 iterations) is zero. We draw random words until `tonlib-core` accepts the phrase,
//! about 256 draws on average.

use anyhow::{Result, bail};
use cocoon_ton::MNEMONIC_WORDS;
use cocoon_ton::tonlib::wallet::mnemonic::{Mnemonic, WORDLIST_EN_SET};
use rand::Rng;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

/// Draws a fresh valid mnemonic from the operating system's random source.
pub(crate) fn generate() -> Result<Zeroizing<String>> {
    let mut words: Vec<&'static str> = vec![""; WORDLIST_EN_SET.len()];
    for (word, index) in WORDLIST_EN_SET.iter() {
        if let Some(slot) = words.get_mut(*index) {
            *slot = word;
        }
    }
    if words.len() != 2048 || words.iter().any(|w| w.is_empty()) {
        bail!("the mnemonic word list is not the 2048-word BIP-39 list");
    }
    for _ in 0..100_000 {
        let phrase: Vec<&str> = (0..MNEMONIC_WORDS)
            .map(|_| words[OsRng.gen_range(0..words.len())])
            .collect();
        if Mnemonic::new(phrase.clone(), &None).is_ok() {
            return Ok(Zeroizing::new(phrase.join(" ")));
        }
    }
    bail!("no valid mnemonic after 100000 draws (broken random source?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_phrases_are_valid_and_differ() {
        let a = generate().expect("a");
        let b = generate().expect("b");
        assert_ne!(*a, *b);
        assert_eq!(a.split(' ').count(), MNEMONIC_WORDS);
        cocoon_ton::keypair_from_mnemonic(&a).expect("valid TON mnemonic");
    }
}
