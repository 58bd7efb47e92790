//! Built-in CPU inference engine: an OpenAI-compatible HTTP server over candle serving GGUF models.
