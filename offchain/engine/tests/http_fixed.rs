//! The HTTP layer over the fixed backend: every route, streaming and not, errors and limits.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should panic

mod common;

use cocoon_engine::{EngineConfig, EngineHandle, FIXED_MODEL_ID};
use serde_json::{Value, json};

async fn start(config: EngineConfig) -> EngineHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    cocoon_engine::serve(config, listener).await.unwrap()
}

async fn post(engine: &EngineHandle, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", engine.url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The JSON payloads of an SSE body, checking the framing and the final `[DONE]`.
fn sse_events(body: &str) -> Vec<Value> {
    assert!(
        body.ends_with("data: [DONE]\n\n"),
        "stream must end with [DONE]: {body:?}"
    );
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .expect("every event is a data line")
        })
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn chat_completion_echoes_with_usage() {
    let engine = start(EngineConfig::fixed()).await;
    let body = json!({"model": FIXED_MODEL_ID, "messages": [{"role": "user", "content": "hello big world"}]});
    let (status, text) = post(&engine, "/v1/chat/completions", body.to_string()).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], FIXED_MODEL_ID);
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "hello big world");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn max_tokens_and_stop_shape_the_output() {
    let engine = start(EngineConfig::fixed()).await;
    let body = json!({"prompt": "one two three four", "max_tokens": 2});
    let (status, text) = post(&engine, "/v1/completions", body.to_string()).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "one two");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 2);

    let body = json!({"prompt": "one two three four", "stop": ["ee f", "zz"], "max_completion_tokens": 50});
    let (_, text) = post(&engine, "/v1/completions", body.to_string()).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["choices"][0]["text"], "one two thr");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 4);
    engine.shutdown().await;
}

#[tokio::test]
async fn streamed_chat_matches_the_plain_response() {
    let engine = start(EngineConfig::fixed()).await;
    let messages = json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "ünïcödé words here"}]);
    let plain = json!({"messages": messages});
    let (_, text) = post(&engine, "/v1/chat/completions", plain.to_string()).await;
    let plain: Value = serde_json::from_str(&text).unwrap();

    let streamed =
        json!({"messages": messages, "stream": true, "stream_options": {"include_usage": true}});
    let (status, body) = post(&engine, "/v1/chat/completions", streamed.to_string()).await;
    assert_eq!(status, 200);
    let events = sse_events(&body);
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        events
            .iter()
            .all(|e| e["object"] == "chat.completion.chunk")
    );
    let content: String = events
        .iter()
        .filter_map(|e| e["choices"].get(0)?["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        content,
        plain["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let finish = &events[events.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["usage"], Value::Null);
    let usage = events.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], plain["usage"]);
    engine.shutdown().await;
}

#[tokio::test]
async fn streamed_completion_without_usage_has_no_usage_field() {
    let engine = start(EngineConfig::fixed()).await;
    let body = json!({"prompt": "a b c", "stream": true});
    let (_, body) = post(&engine, "/v1/completions", body.to_string()).await;
    let events = sse_events(&body);
    assert!(events.iter().all(|e| e.get("usage").is_none()));
    let text: String = events
        .iter()
        .map(|e| e["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "a b c");
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn models_health_and_metrics() {
    let config = EngineConfig {
        model_id: Some("smol".into()),
        ..EngineConfig::fixed()
    };
    let engine = start(config).await;
    let client = reqwest::Client::new();
    let models = common::get_json(&client, &format!("{}/v1/models", engine.url())).await;
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "smol");
    let health = client
        .get(format!("{}/health", engine.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (status, _) = post(
        &engine,
        "/v1/completions",
        json!({"prompt": "x y"}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let metrics = client
        .get(format!("{}/metrics", engine.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("engine_prompt_tokens_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("engine_completion_tokens_total 3\n"),
        "{metrics}"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn errors_are_openai_shaped_with_stable_codes() {
    let engine = start(EngineConfig::fixed()).await;
    let cases: Vec<(&str, String, u16, &str, Value)> = vec![
        (
            "/v1/chat/completions",
            "{not json".into(),
            400,
            "invalid_json",
            Value::Null,
        ),
        (
            "/v1/chat/completions",
            "[]".into(),
            400,
            "invalid_json",
            Value::Null,
        ),
        (
            "/v1/chat/completions",
            json!({}).to_string(),
            400,
            "missing_parameter",
            json!("messages"),
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "x"}], "n": 3}).to_string(),
            400,
            "unsupported_parameter",
            json!("n"),
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "x"}], "model": "gpt-4"}).to_string(),
            404,
            "model_not_found",
            json!("model"),
        ),
        (
            "/v1/completions",
            json!({"prompt": "x", "max_tokens": -1}).to_string(),
            400,
            "invalid_parameter",
            json!("max_tokens"),
        ),
        (
            "/v1/completions",
            json!({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}).to_string(),
            400,
            "invalid_parameter",
            json!("stop"),
        ),
        ("/v1/nothing", "{}".into(), 404, "not_found", Value::Null),
    ];
    for (path, body, status, code, param) in cases {
        let (got, text) = post(&engine, path, body.clone()).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (got, v["error"]["code"].as_str().unwrap()),
            (status, code),
            "{path} {body}: {text}"
        );
        assert_eq!(v["error"]["param"], param);
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(v["error"]["type"].is_string());
    }
    let resp = reqwest::get(format!("{}/v1/chat/completions", engine.url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    // The engine is still healthy after all of that.
    let (status, _) = post(
        &engine,
        "/v1/completions",
        json!({"prompt": "ok"}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    engine.shutdown().await;
}

#[tokio::test]
async fn body_limit_is_enforced_with_and_without_content_length() {
    let config = EngineConfig {
        max_body_bytes: 4096,
        ..EngineConfig::fixed()
    };
    let engine = start(config).await;
    let big = json!({"prompt": "x ".repeat(4000)}).to_string();
    let (status, text) = post(&engine, "/v1/completions", big.clone()).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("request_too_large"));
    // Chunked upload: no content-length, the limit still applies while reading.
    let chunks = futures::stream::iter(
        big.into_bytes()
            .chunks(1000)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let (status, _) = post(
        &engine,
        "/v1/completions",
        reqwest::Body::wrap_stream(chunks),
    )
    .await;
    assert_eq!(status, 413);
    let (status, _) = post(
        &engine,
        "/v1/completions",
        json!({"prompt": "small"}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    engine.shutdown().await;
}

#[tokio::test]
async fn invalid_config_is_rejected_before_serving() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = cocoon_engine::serve(EngineConfig::gguf("/definitely/missing.gguf"), listener)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}
