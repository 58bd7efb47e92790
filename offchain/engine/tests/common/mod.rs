//! HTTP helpers shared by the engine's integration tests.
#![allow(dead_code, clippy::unwrap_used)] // each test file uses a subset; a failed request fails the test

use serde_json::Value;

/// `GET url` as JSON.
pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// `POST url` with a JSON body, answered as JSON.
pub(crate) async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    client
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
