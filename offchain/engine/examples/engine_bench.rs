//! Decode throughput of the GGUF backend: median tokens/s of several 128-token greedy generations.
//!
//! `cargo run --release -p cocoon-engine --example engine_bench` prints `{"engine_tokens_per_s": ...}`.
//! Environment: `COCOON_MODEL_PATH` (default: the repo's `.cache/models` file), `BENCH_RUNS` (5),
//! `BENCH_TOKENS` (128), `BENCH_REQUANTIZE=0` (keep Q4_1), `BENCH_VERBOSE=1` to print the generated text to stderr. Threads follow
//! candle's `CANDLE_NUM_THREADS` (default: physical cores); set it to 2 to match the reference figure.

use std::path::PathBuf;
use std::time::Instant;

use cocoon_engine::{Backend, ChatMessage, GgufBackend, Prompt, SamplingParams, TokenStep};

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let path = std::env::var_os("COCOON_MODEL_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    let runs = env_usize("BENCH_RUNS", 5);
    let tokens = env_usize("BENCH_TOKENS", 128);
    let verbose = std::env::var_os("BENCH_VERBOSE").is_some();
    // BENCH_REQUANTIZE=0 measures candle's own (scalar) Q4_1 kernels.
    let requantize = std::env::var("BENCH_REQUANTIZE").map_or(true, |v| v != "0");
    let backend = GgufBackend::load_with(&path, None, None, requantize)?;
    let messages = [ChatMessage {
        role: "user".into(),
        content: "Write a long story about a lighthouse keeper and the sea.".into(),
    }];
    let text = backend.render_chat(&messages)?;
    let prompt = Prompt {
        tokens: backend.encode(&text)?,
        text,
    };
    if verbose {
        let pieces: Vec<String> = prompt
            .tokens
            .iter()
            .map(|&t| backend.tokenizer().decode(&[t]))
            .collect();
        eprintln!("prompt tokens {:?}\n{pieces:?}", prompt.tokens);
    }
    let mut session = backend.new_session()?;
    let mut rates = Vec::with_capacity(runs);
    for run in 0..runs {
        session.start(&prompt, &SamplingParams::default())?;
        let mut out = Vec::new();
        // The first step is the prompt prefill; time only the decode steps after it.
        session.next_token(&mut out)?;
        let started = Instant::now();
        let mut decoded = 0usize;
        while decoded < tokens {
            // Generation continues past an end token so every run decodes the same count.
            let _ = session.next_token(&mut out)? == TokenStep::End;
            decoded += 1;
        }
        let rate = decoded as f64 / started.elapsed().as_secs_f64();
        if verbose {
            eprintln!(
                "run {run}: {rate:.1} tokens/s: {}",
                String::from_utf8_lossy(&out)
            );
        }
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "{}",
        serde_json::json!({ "engine_tokens_per_s": (median * 10.0).round() / 10.0 })
    );
    Ok(())
}
