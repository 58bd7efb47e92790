//! Writes the malformed-input corpus (`offchain/drills/corpus/`) and its manifest.
//!
//! `cargo run -p cocoon-drills --example drills_corpus_gen` rewrites every file. Keys come from the
//! fixed seeds in `cocoon_drills::binding`, so signatures are reproducible; certificates carry random
//! serial numbers, so their bytes (not their meaning) change on every run. The expected error classes
//! are written here by hand from the parsers' documented behaviour, never by running them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a generator: any failure should stop it loudly

mod api;
mod cells;
mod certs;
mod quotes;
mod receipts;
mod vouchers;

use std::path::PathBuf;

use cocoon_drills::binding::Binding;
use cocoon_drills::manifest::{Case, Manifest, corpus_dir};

/// Collects case files and manifest entries.
pub(crate) struct Gen {
    dir: PathBuf,
    pub(crate) cases: Vec<Case>,
    pub(crate) binding: Binding,
}

impl Gen {
    /// Writes `data` to `corpus/<file>` and records the case.
    pub(crate) fn add(
        &mut self,
        file: &str,
        data: &[u8],
        target: &str,
        expect: &str,
        why: &str,
    ) -> &mut Case {
        let path = self.dir.join(file);
        std::fs::create_dir_all(path.parent().expect("case files live in a category")).unwrap();
        std::fs::write(&path, data).unwrap();
        assert!(
            !self.cases.iter().any(|c| c.file == file),
            "duplicate case file {file}"
        );
        self.cases.push(Case {
            file: file.to_owned(),
            target: target.to_owned(),
            expect: expect.to_owned(),
            expect_engine: None,
            path: None,
            method: None,
            headers: Vec::new(),
            pad_to: None,
            known_bug: None,
            why: why.to_owned(),
        });
        self.cases.last_mut().expect("just pushed")
    }
}

fn main() {
    let dir = corpus_dir();
    for category in ["api", "cells", "certs", "quotes", "vouchers", "receipts"] {
        let _ = std::fs::remove_dir_all(dir.join(category));
    }
    let mut g = Gen {
        dir: dir.clone(),
        cases: Vec::new(),
        binding: Binding::drill().expect("binding"),
    };
    api::generate(&mut g);
    cells::generate(&mut g);
    certs::generate(&mut g);
    quotes::generate(&mut g);
    vouchers::generate(&mut g);
    receipts::generate(&mut g);
    let manifest = Manifest { cases: g.cases };
    let mut text = String::from(
        "# The malformed-input corpus. Written by\n\
         # `cargo run -p cocoon-drills --example drills_corpus_gen`; see src/manifest.rs for the fields.\n\n",
    );
    text.push_str(&toml::to_string(&manifest).expect("manifest serialises"));
    std::fs::write(dir.join("manifest.toml"), text).unwrap();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for c in &manifest.cases {
        *counts.entry(c.category()).or_default() += 1;
    }
    println!("{} cases: {counts:?}", manifest.cases.len());
}
