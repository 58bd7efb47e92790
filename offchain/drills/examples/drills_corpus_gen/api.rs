//! API bodies and requests for the gateway, the proxy (directly, over its TLS) and the engine.
//!
//! `expect` is the `error.code` the gateway and the proxy answer with (they share
//! `cocoon_protocol::api::parse_request`; bodies that pass it reach the engine through the worker,
//! whose 4xx answers pass through unchanged). `expect_engine` is the engine's own code for the same
//! request sent to it directly, `ok` when it serves it.

use crate::Gen;

const M: &str = cocoon_drills::binding::DRILL_MODEL;

fn chat(extra: &str) -> String {
    format!(r#"{{"model":"{M}","messages":[{{"role":"user","content":"hello drill"}}]{extra}}}"#)
}

fn completion(extra: &str) -> String {
    format!(r#"{{"model":"{M}","prompt":"hello drill"{extra}}}"#)
}

struct Api<'a> {
    g: &'a mut Gen,
}

impl Api<'_> {
    fn case(&mut self, name: &str, body: &[u8], expect: &str, engine: Option<&str>, why: &str) {
        let c = self
            .g
            .add(&format!("api/{name}.json"), body, "http", expect, why);
        c.expect_engine = engine.map(str::to_owned);
    }

    fn completion(&mut self, name: &str, body: &str, expect: &str, engine: &str, why: &str) {
        let c = self.g.add(
            &format!("api/{name}.json"),
            body.as_bytes(),
            "http",
            expect,
            why,
        );
        c.expect_engine = Some(engine.to_owned());
        c.path = Some("/v1/completions".into());
    }

    fn with_header(&mut self, name: &str, header: (&str, &str), expect: &str, why: &str) {
        let c = self.g.add(
            &format!("api/{name}.json"),
            chat("").as_bytes(),
            "http",
            expect,
            why,
        );
        c.headers = vec![(header.0.to_owned(), header.1.to_owned())];
    }
}

pub(crate) fn generate(g: &mut Gen) {
    let mut a = Api { g };
    let bad = "invalid_json";
    // Not JSON, or not an object.
    a.case(
        "not_json_unclosed",
        b"{\"model\":",
        bad,
        Some(bad),
        "unterminated object",
    );
    a.case("empty_body", b"", bad, Some(bad), "no body at all");
    a.case(
        "array_body",
        b"[1,2]",
        bad,
        Some(bad),
        "an array, not an object",
    );
    a.case(
        "string_body",
        b"\"hi\"",
        bad,
        Some(bad),
        "a string, not an object",
    );
    a.case("null_body", b"null", bad, Some(bad), "null");
    let trailing = format!("{} x", chat(""));
    a.case(
        "trailing_garbage",
        trailing.as_bytes(),
        bad,
        Some(bad),
        "garbage after the object",
    );
    let mut utf8 = chat("").into_bytes();
    let at = utf8
        .windows(5)
        .position(|w| w == b"hello")
        .expect("content");
    utf8[at] = 0xff;
    utf8[at + 1] = 0xfe;
    a.case(
        "bad_utf8",
        &utf8,
        bad,
        Some(bad),
        "invalid UTF-8 inside a string",
    );
    let surrogate = chat("").replace("hello drill", "\\ud800 lone");
    a.case(
        "lone_surrogate",
        surrogate.as_bytes(),
        bad,
        Some(bad),
        "escaped lone UTF-16 surrogate",
    );
    let ctrl = chat("").replace("hello drill", "a\u{1}b");
    a.case(
        "raw_control_char",
        ctrl.as_bytes(),
        bad,
        Some(bad),
        "unescaped control character in a string",
    );
    let bom = format!("\u{feff}{}", chat(""));
    a.case(
        "utf8_bom",
        bom.as_bytes(),
        bad,
        Some(bad),
        "byte order mark before the JSON",
    );
    let depth = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    a.case(
        "depth_bomb_array",
        depth.as_bytes(),
        bad,
        Some(bad),
        "20,000 nested arrays (serde_json stops at 128)",
    );
    let nested = chat("").replace(
        "\"hello drill\"",
        &format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000)),
    );
    a.case(
        "depth_bomb_in_content",
        nested.as_bytes(),
        bad,
        Some(bad),
        "5,000 nested arrays inside message content",
    );
    let inf = chat(r#","max_tokens":1e400"#);
    a.case(
        "number_out_of_range",
        inf.as_bytes(),
        bad,
        Some(bad),
        "a number beyond f64",
    );
    // Size.
    let c = a.g.add(
        "api/huge_body.json",
        chat("").as_bytes(),
        "http",
        "body_too_large",
        "a valid body padded to 1.5 MiB (limit 1 MiB)",
    );
    c.pad_to = Some(3 << 19);
    c.expect_engine = Some("request_too_large".into());
    // Fields outside the allowlist.
    let uf = "unsupported_field";
    a.case(
        "unknown_field",
        chat(r#","evil":1"#).as_bytes(),
        uf,
        Some("ok"),
        "a field no OpenAI client sends; the engine ignores unknown fields",
    );
    a.case(
        "legacy_functions",
        chat(r#","functions":[]"#).as_bytes(),
        uf,
        Some("unsupported_parameter"),
        "legacy `functions` is outside the allowlist",
    );
    a.case(
        "completion_field_on_chat",
        chat(r#","best_of":1"#).as_bytes(),
        uf,
        Some("ok"),
        "`best_of` belongs to /v1/completions",
    );
    a.case(
        "prototype_key",
        chat(r#","__proto__":{}"#).as_bytes(),
        uf,
        Some("ok"),
        "a key that trips JavaScript servers",
    );
    // Model.
    let inv = "invalid_field";
    a.case(
        "model_missing",
        br#"{"messages":[{"role":"user","content":"x"}]}"#,
        inv,
        Some("ok"),
        "no model; the engine serves its own",
    );
    a.case(
        "model_empty",
        chat("").replace(M, "").as_bytes(),
        inv,
        Some("model_not_found"),
        "empty model name",
    );
    a.case(
        "model_number",
        br#"{"model":7,"messages":[{"role":"user","content":"x"}]}"#,
        inv,
        Some("invalid_parameter"),
        "model is a number",
    );
    let long = chat("").replace(M, &"m".repeat(300));
    a.case(
        "model_too_long",
        long.as_bytes(),
        inv,
        Some("model_not_found"),
        "model name of 300 bytes",
    );
    a.case(
        "model_unknown",
        chat("").replace(M, "no-such-model").as_bytes(),
        "model_not_found",
        Some("model_not_found"),
        "no worker serves this model",
    );
    // Messages.
    a.case(
        "messages_missing",
        format!(r#"{{"model":"{M}"}}"#).as_bytes(),
        inv,
        Some("missing_parameter"),
        "no messages",
    );
    a.case(
        "messages_empty",
        format!(r#"{{"model":"{M}","messages":[]}}"#).as_bytes(),
        inv,
        Some("invalid_parameter"),
        "empty messages",
    );
    a.case(
        "messages_object",
        format!(r#"{{"model":"{M}","messages":{{}}}}"#).as_bytes(),
        inv,
        Some("invalid_parameter"),
        "messages is an object",
    );
    a.case(
        "messages_strings",
        format!(r#"{{"model":"{M}","messages":["hi"]}}"#).as_bytes(),
        inv,
        Some("invalid_parameter"),
        "messages are strings",
    );
    a.case(
        "message_without_role",
        format!(r#"{{"model":"{M}","messages":[{{"content":"x"}}]}}"#).as_bytes(),
        "missing_parameter",
        Some("missing_parameter"),
        "passes the allowlist; the engine refuses it and the 400 passes through",
    );
    a.case(
        "message_unknown_role",
        chat("").replace("\"user\"", "\"wizard\"").as_bytes(),
        "invalid_parameter",
        Some("invalid_parameter"),
        "unknown role, refused by the engine",
    );
    a.case(
        "content_image_part",
        chat("")
            .replace(
                "\"hello drill\"",
                r#"[{"type":"image_url","image_url":{"url":"x"}}]"#,
            )
            .as_bytes(),
        "unsupported_parameter",
        Some("unsupported_parameter"),
        "image parts on a text engine",
    );
    a.case(
        "content_number",
        chat("").replace("\"hello drill\"", "42").as_bytes(),
        "invalid_parameter",
        Some("invalid_parameter"),
        "content is a number",
    );
    // Token limits.
    for (name, v) in [
        ("zero", "0"),
        ("negative", "-1"),
        ("huge", "1000000000000"),
        ("fraction", "1.5"),
        ("string", "\"10\""),
    ] {
        a.case(
            &format!("max_tokens_{name}"),
            chat(&format!(r#","max_tokens":{v}"#)).as_bytes(),
            inv,
            Some("invalid_parameter"),
            &format!("max_tokens = {v}"),
        );
    }
    a.case(
        "max_completion_tokens_huge",
        chat(r#","max_completion_tokens":99999999999"#).as_bytes(),
        inv,
        Some("invalid_parameter"),
        "beyond the 32,768 limit and u32",
    );
    a.case(
        "n_zero",
        chat(r#","n":0"#).as_bytes(),
        inv,
        Some("unsupported_parameter"),
        "n = 0",
    );
    a.case(
        "n_huge",
        chat(r#","n":1000"#).as_bytes(),
        inv,
        Some("unsupported_parameter"),
        "n = 1000 (limit 4)",
    );
    a.case(
        "n_two_streamed",
        chat(r#","n":2,"stream":true"#).as_bytes(),
        "unsupported_parameter",
        Some("unsupported_parameter"),
        "n = 2 passes the limits; the engine serves one choice",
    );
    // Stream flags.
    a.case(
        "stream_string",
        chat(r#","stream":"yes""#).as_bytes(),
        inv,
        Some("invalid_parameter"),
        "stream is a string",
    );
    a.case(
        "stream_number",
        chat(r#","stream":1"#).as_bytes(),
        inv,
        Some("invalid_parameter"),
        "stream is a number",
    );
    a.case(
        "stream_options_string",
        chat(r#","stream":true,"stream_options":"x""#).as_bytes(),
        inv,
        Some("invalid_parameter"),
        "stream_options is a string",
    );
    // Sampling values the allowlist admits and the engine refuses.
    let ip = "invalid_parameter";
    a.case(
        "temperature_high",
        chat(r#","temperature":5"#).as_bytes(),
        ip,
        Some(ip),
        "temperature 5 (range 0..2)",
    );
    a.case(
        "temperature_string",
        chat(r#","temperature":"hot""#).as_bytes(),
        ip,
        Some(ip),
        "temperature is a string",
    );
    a.case(
        "top_p_zero",
        chat(r#","top_p":0"#).as_bytes(),
        ip,
        Some(ip),
        "top_p 0",
    );
    a.case(
        "seed_string",
        chat(r#","seed":"x""#).as_bytes(),
        ip,
        Some(ip),
        "seed is a string",
    );
    a.case(
        "stop_number",
        chat(r#","stop":5"#).as_bytes(),
        ip,
        Some(ip),
        "stop is a number",
    );
    a.case(
        "tools_on_text_engine",
        chat(r#","tools":[]"#).as_bytes(),
        "unsupported_parameter",
        Some("unsupported_parameter"),
        "tools on an engine without tool use",
    );
    a.case(
        "logprobs_true",
        chat(r#","logprobs":true"#).as_bytes(),
        "unsupported_parameter",
        Some("unsupported_parameter"),
        "logprobs on an engine without them",
    );
    // /v1/completions.
    a.completion(
        "completion_prompt_missing",
        &format!(r#"{{"model":"{M}"}}"#),
        inv,
        "missing_parameter",
        "no prompt",
    );
    a.completion(
        "completion_prompt_number",
        &completion("").replace("\"hello drill\"", "3"),
        inv,
        "invalid_parameter",
        "prompt is a number",
    );
    a.completion(
        "completion_with_messages",
        &completion(r#","messages":[]"#),
        uf,
        "ok",
        "`messages` belongs to chat",
    );
    a.completion(
        "completion_echo",
        &completion(r#","echo":true"#),
        "unsupported_parameter",
        "unsupported_parameter",
        "echo on an engine without it",
    );
    a.completion(
        "completion_prompt_batch",
        &completion("").replace("\"hello drill\"", r#"["a","b"]"#),
        "unsupported_parameter",
        "unsupported_parameter",
        "a batch of prompts",
    );
    // Headers, methods, paths (gateway and proxy only, except the routes).
    a.with_header(
        "price_cap_word",
        ("x-cocoon-max-coefficient", "abc"),
        "invalid_price_cap",
        "price cap is not a number",
    );
    a.with_header(
        "price_cap_negative",
        ("x-cocoon-max-coefficient", "-1"),
        "invalid_price_cap",
        "negative price cap",
    );
    a.with_header(
        "price_cap_overflow",
        ("x-cocoon-max-coefficient", "99999999999999999999999"),
        "invalid_price_cap",
        "price cap beyond u64",
    );
    a.with_header(
        "price_cap_zero",
        ("x-cocoon-max-coefficient", "0"),
        "no_worker_available",
        "no worker is that cheap",
    );
    a.with_header(
        "timeout_word",
        ("x-cocoon-timeout-ms", "soon"),
        inv,
        "timeout header is not a number (checked by the proxy)",
    );
    let c = a.g.add(
        "api/get_on_chat.json",
        b"",
        "http",
        "method_not_allowed",
        "GET on an inference route",
    );
    c.method = Some("GET".into());
    c.expect_engine = Some("method_not_allowed".into());
    let c = a.g.add(
        "api/put_on_completions.json",
        completion("").as_bytes(),
        "http",
        "method_not_allowed",
        "PUT on an inference route",
    );
    c.method = Some("PUT".into());
    c.path = Some("/v1/completions".into());
    c.expect_engine = Some("method_not_allowed".into());
    let c = a.g.add(
        "api/unknown_path.json",
        chat("").as_bytes(),
        "http",
        "not_found",
        "POST to a route that does not exist",
    );
    c.path = Some("/v1/embeddings".into());
    c.expect_engine = Some("not_found".into());
    let c = a.g.add(
        "api/path_traversal.json",
        chat("").as_bytes(),
        "http",
        "not_found",
        "dot segments in the path",
    );
    c.path = Some("/v1/../v1/chat/completions".into());
    c.expect_engine = Some("not_found".into());
}
