//! The real model (SmolLM2-135M-Instruct Q4_1, `make setup`): tokenizer, chat template,
//! deterministic greedy generation and streaming, through the library and over HTTP.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should panic

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use cocoon_engine::{
    Backend, ChatMessage, EngineConfig, GgufBackend, Prompt, SamplingParams, generate,
};
use serde_json::{Value, json};

/// The model file, found as the binaries find it (`COCOON_MODEL_PATH`, else `.cache/models/` from
/// this crate's folder up to the repository root). Missing, every test here fails with the reason:
/// a real-model test that skips would pass while testing nothing.
fn model_path() -> PathBuf {
    match cocoon_engine::locate_model(None) {
        Ok(path) => path,
        Err(e) => panic!(
            "the real-model tests need SmolLM2-135M-Instruct Q4_1: run `make setup` first \
             (it fetches the model into .cache/models/).\n{e}"
        ),
    }
}

#[test]
fn model_is_present() {
    assert!(model_path().is_file());
}

fn backend() -> Arc<GgufBackend> {
    static BACKEND: OnceLock<Arc<GgufBackend>> = OnceLock::new();
    BACKEND
        .get_or_init(|| Arc::new(GgufBackend::load(&model_path(), None, None).unwrap()))
        .clone()
}

fn user(content: &str) -> Vec<ChatMessage> {
    vec![ChatMessage {
        role: "user".into(),
        content: content.into(),
    }]
}

#[test]
fn tokenizer_round_trips_and_knows_special_tokens() {
    let backend = backend();
    let tok = backend.tokenizer();
    assert_eq!(tok.vocab_size(), 49152);
    for text in [
        "Hello, world! 12345",
        "  indented\n\tcode(x) => x*2;",
        "naïve café — 日本語 🦀",
        "I'm here, they'll go",
    ] {
        let ids = tok.encode(text);
        assert!(!ids.is_empty() && ids.len() < text.len());
        assert_eq!(tok.decode(&ids), text);
    }
    // Digits are split one by one; common words are single tokens.
    assert_eq!(tok.encode("2024").len(), 4);
    assert_eq!(tok.encode(" the").len(), 1);
    let ids = tok.encode("<|im_start|>user\nhi<|im_end|>");
    assert_eq!(ids.first(), Some(&1));
    assert_eq!(ids.last(), Some(&2));
    assert!(tok.is_control(2));
}

#[test]
fn chat_template_comes_from_the_gguf_metadata() {
    let backend = backend();
    let prompt = backend.render_chat(&user("What is 2+2?")).unwrap();
    assert!(prompt.starts_with("<|im_start|>system\n"), "{prompt}");
    assert!(prompt.contains("<|im_start|>user\nWhat is 2+2?<|im_end|>\n"));
    assert!(prompt.ends_with("<|im_start|>assistant\n"));
    let with_system = vec![
        ChatMessage {
            role: "system".into(),
            content: "Be terse.".into(),
        },
        ChatMessage {
            role: "user".into(),
            content: "Hi".into(),
        },
    ];
    let prompt = backend.render_chat(&with_system).unwrap();
    assert!(
        prompt.starts_with("<|im_start|>system\nBe terse.<|im_end|>\n"),
        "{prompt}"
    );
}

fn greedy(
    backend: &GgufBackend,
    messages: &[ChatMessage],
    max_tokens: usize,
) -> (String, generate::Outcome, usize) {
    let text = backend.render_chat(messages).unwrap();
    let prompt = Prompt {
        tokens: backend.encode(&text).unwrap(),
        text,
    };
    let mut session = backend.new_session().unwrap();
    let mut out = String::new();
    let outcome = generate::run(
        session.as_mut(),
        &prompt,
        &SamplingParams::default(),
        max_tokens,
        &[],
        &mut |p| {
            out.push_str(p);
            true
        },
    )
    .unwrap();
    (out, outcome, prompt.tokens.len())
}

#[test]
fn greedy_generation_is_deterministic_and_real() {
    let backend = backend();
    let messages = user("What is the capital of France?");
    let (first, outcome, prompt_tokens) = greedy(&backend, &messages, 12);
    let (second, _, _) = greedy(&backend, &messages, 12);
    assert_eq!(first, second);
    eprintln!("greedy answer: {first:?}");
    // Real text: words made of letters, no replacement characters from broken byte sequences.
    assert!(!first.contains('\u{fffd}'), "{first:?}");
    let words = first
        .split_whitespace()
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2);
    assert!(words.count() >= 2, "not text: {first:?}");
    assert!(outcome.completion_tokens >= 1 && outcome.completion_tokens <= 12);
    assert_eq!(
        prompt_tokens,
        backend
            .encode(&backend.render_chat(&messages).unwrap())
            .unwrap()
            .len()
    );
}

#[tokio::test]
async fn http_stream_equals_plain_text_with_exact_usage() {
    let path = model_path();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = EngineConfig {
        model_id: Some("smollm2".into()),
        ..EngineConfig::gguf(&path)
    };
    let engine = cocoon_engine::serve(config, listener).await.unwrap();
    let client = reqwest::Client::new();
    let models = common::get_json(&client, &format!("{}/v1/models", engine.url())).await;
    assert_eq!(models["data"][0]["id"], "smollm2");
    assert_eq!(models["data"][0]["max_model_len"], 4096);
    let url = format!("{}/v1/chat/completions", engine.url());
    let messages = json!([{"role": "user", "content": "Name three colours."}]);
    let body = json!({"messages": messages, "temperature": 0, "max_tokens": 16});
    let plain = common::post_json(&client, &url, &body).await;
    let text = plain["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!text.trim().is_empty(), "{plain}");
    let backend = backend();
    let rendered = backend.render_chat(&user("Name three colours.")).unwrap();
    let prompt_tokens = backend.encode(&rendered).unwrap().len();
    assert_eq!(plain["usage"]["prompt_tokens"], prompt_tokens);
    let completion = plain["usage"]["completion_tokens"].as_u64().unwrap();
    let finish = plain["choices"][0]["finish_reason"].as_str().unwrap();
    match finish {
        "length" => assert_eq!(completion, 16),
        "stop" => assert!(completion < 16),
        other => panic!("finish_reason {other}"),
    }
    // Without an end token, the completion re-tokenises to exactly the generated tokens.
    if finish == "length" {
        assert_eq!(
            backend.encode(&format!("{rendered}{text}")).unwrap().len() as u64,
            prompt_tokens as u64 + completion
        );
    }

    let streamed = client
        .post(&url)
        .json(
            &json!({"messages": messages, "temperature": 0, "max_tokens": 16, "stream": true,
                      "stream_options": {"include_usage": true}}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut content = String::new();
    let mut usage = Value::Null;
    for event in streamed.split("\n\n").filter(|e| !e.is_empty()) {
        let data = event.strip_prefix("data: ").unwrap();
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        if let Some(piece) = v["choices"]
            .get(0)
            .and_then(|c| c["delta"]["content"].as_str())
        {
            content.push_str(piece);
        }
        if !v["usage"].is_null() {
            usage = v["usage"].clone();
        }
    }
    assert!(streamed.ends_with("data: [DONE]\n\n"));
    assert_eq!(content, text);
    assert_eq!(usage, plain["usage"]);
    engine.shutdown().await;
}
