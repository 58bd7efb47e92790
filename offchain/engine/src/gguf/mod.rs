//! `GgufBackend`: a llama-family GGUF model on candle (CPU), with the tokenizer and chat template
//! taken from the file's own metadata.

mod sampler;
mod template;
mod tokenizer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};

pub use sampler::Sampler;
pub use template::ChatTemplate;
pub use tokenizer::BpeTokenizer;

use crate::backend::{Backend, ChatMessage, ModelInfo, Prompt, SamplingParams, Session, TokenStep};
use crate::error::BackendError;

/// Prompts are fed to the model in chunks of this many tokens (bounds the attention scratch memory).
const PREFILL_CHUNK: usize = 256;

/// End-of-turn tokens recognised by name in addition to `tokenizer.ggml.eos_token_id`.
const END_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end|>",
    "</s>",
];

fn compute(e: candle_core::Error) -> BackendError {
    BackendError::Compute(e.to_string())
}

/// A GGUF model served on the CPU.
pub struct GgufBackend {
    info: ModelInfo,
    weights: ModelWeights,
    tokenizer: Arc<BpeTokenizer>,
    template: ChatTemplate,
    end_of_generation: Arc<Vec<bool>>,
}

impl std::fmt::Debug for GgufBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufBackend")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn md_u32(metadata: &HashMap<String, Value>, key: &str) -> Option<u32> {
    metadata.get(key).and_then(|v| v.to_u32().ok())
}

impl GgufBackend {
    /// Loads the model at `path`. `model_id` defaults to the file stem; `max_context` caps the
    /// context length (which is also capped by candle's rotary table, 4096).
    pub fn load(
        path: &Path,
        model_id: Option<String>,
        max_context: Option<usize>,
    ) -> Result<Self, BackendError> {
        Self::load_with(path, model_id, max_context, true)
    }

    /// [`GgufBackend::load`] with a choice: `requantize` turns Q4_1 weights into Q8_0 at load time.
    /// candle has no SIMD kernel for Q4_1 but a runtime-dispatched AVX2 one for Q8_0; every Q4_1
    /// value is reproduced to within 1/254 of its block's largest magnitude.
    pub fn load_with(
        path: &Path,
        model_id: Option<String>,
        max_context: Option<usize>,
        requantize: bool,
    ) -> Result<Self, BackendError> {
        let io = |source| BackendError::ModelIo {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| BackendError::Model(format!("not a GGUF file: {e}")))?;
        let metadata = content.metadata.clone();
        let arch = metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            return Err(BackendError::Model(format!(
                "architecture '{arch}' is not supported (only 'llama')"
            )));
        }
        let tokenizer = BpeTokenizer::from_gguf(&metadata)?;
        let eos = md_u32(&metadata, "tokenizer.ggml.eos_token_id");
        let bos = md_u32(&metadata, "tokenizer.ggml.bos_token_id");
        let mut end_of_generation = vec![false; tokenizer.vocab_size()];
        for id in eos
            .into_iter()
            .chain(END_TOKENS.iter().filter_map(|t| tokenizer.special_id(t)))
        {
            if let Some(slot) = end_of_generation.get_mut(id as usize) {
                *slot = true;
            }
        }
        let token_text = |id: Option<u32>| {
            id.map(|i| String::from_utf8_lossy(tokenizer.token_bytes(i)).into_owned())
                .unwrap_or_default()
        };
        // Control tokens decode to nothing; the template needs their spelling.
        let spelled = |id: Option<u32>| {
            id.and_then(|i| {
                metadata
                    .get("tokenizer.ggml.tokens")?
                    .to_vec()
                    .ok()?
                    .get(i as usize)?
                    .to_string()
                    .ok()
                    .cloned()
            })
            .unwrap_or_else(|| token_text(id))
        };
        let source = metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .map_or(template::CHATML, String::as_str);
        let template = ChatTemplate::new(source, &spelled(bos), &spelled(eos))?;
        let model_ctx = md_u32(&metadata, "llama.context_length").map_or(2048, |c| c as usize);
        let context_length = model_ctx
            .min(MAX_SEQ_LEN)
            .min(max_context.unwrap_or(usize::MAX));
        let has_q4_1 = content
            .tensor_infos
            .values()
            .any(|t| t.ggml_dtype == GgmlDType::Q4_1);
        let weights = if requantize && has_q4_1 {
            let (content, mut memory) = requantized(&content, &mut file)?;
            ModelWeights::from_gguf(content, &mut memory, &Device::Cpu)
        } else {
            ModelWeights::from_gguf(content, &mut file, &Device::Cpu)
        }
        .map_err(compute)?;
        let id = model_id.unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "gguf".to_owned())
        });
        Ok(Self {
            info: ModelInfo {
                id,
                context_length,
                owned_by: "cocoon".to_owned(),
            },
            weights,
            tokenizer: Arc::new(tokenizer),
            template,
            end_of_generation: Arc::new(end_of_generation),
        })
    }

    /// The tokenizer built from the file's metadata.
    pub fn tokenizer(&self) -> &BpeTokenizer {
        &self.tokenizer
    }
}

/// Rewrites the model in memory with its Q4_1 tensors requantised to Q8_0.
fn requantized(
    content: &gguf_file::Content,
    file: &mut std::fs::File,
) -> Result<(gguf_file::Content, std::io::Cursor<Vec<u8>>), BackendError> {
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let tensor = content.tensor(file, name, &Device::Cpu).map_err(compute)?;
        let tensor = if tensor.dtype() == GgmlDType::Q4_1 {
            let dense = tensor.dequantize(&Device::Cpu).map_err(compute)?;
            QTensor::quantize(&dense, GgmlDType::Q8_0).map_err(compute)?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }
    let metadata: Vec<(&str, &Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut memory = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut memory, &metadata, &refs).map_err(compute)?;
    memory.set_position(0);
    let content = gguf_file::Content::read(&mut memory).map_err(compute)?;
    Ok((content, memory))
}

impl Backend for GgufBackend {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn render_chat(&self, messages: &[ChatMessage]) -> Result<String, BackendError> {
        self.template.render(messages)
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, BackendError> {
        Ok(self.tokenizer.encode(text))
    }

    fn new_session(&self) -> Result<Box<dyn Session>, BackendError> {
        Ok(Box::new(GgufSession {
            model: self.weights.clone(),
            tokenizer: self.tokenizer.clone(),
            end_of_generation: self.end_of_generation.clone(),
            pending: Vec::new(),
            position: 0,
            sampler: Sampler::new(SamplingParams::default()),
        }))
    }

    fn is_compute_heavy(&self) -> bool {
        true
    }
}

/// One generation slot: a model copy sharing the weights, with its own KV cache.
struct GgufSession {
    model: ModelWeights,
    tokenizer: Arc<BpeTokenizer>,
    end_of_generation: Arc<Vec<bool>>,
    /// Tokens not yet fed to the model.
    pending: Vec<u32>,
    /// Tokens already in the KV cache.
    position: usize,
    sampler: Sampler,
}

impl GgufSession {
    /// Feeds `pending` (in chunks) and returns the logits after its last token.
    fn feed(&mut self) -> Result<Vec<f32>, BackendError> {
        let mut logits = None;
        let pending = std::mem::take(&mut self.pending);
        for chunk in pending.chunks(PREFILL_CHUNK) {
            let input = Tensor::new(chunk, &Device::Cpu)
                .and_then(|t| t.unsqueeze(0))
                .map_err(compute)?;
            let out = self.model.forward(&input, self.position).map_err(compute)?;
            self.position += chunk.len();
            logits = Some(out);
        }
        let logits = logits.ok_or_else(|| BackendError::Compute("nothing to decode".into()))?;
        logits
            .squeeze(0)
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(compute)
    }
}

impl Session for GgufSession {
    fn start(&mut self, prompt: &Prompt, sampling: &SamplingParams) -> Result<(), BackendError> {
        if prompt.tokens.is_empty() {
            return Err(BackendError::Compute("the prompt has no tokens".into()));
        }
        self.pending.clear();
        self.pending.extend_from_slice(&prompt.tokens);
        // Position 0 makes candle start a fresh KV cache.
        self.position = 0;
        self.sampler = Sampler::new(*sampling);
        Ok(())
    }

    fn next_token(&mut self, out: &mut Vec<u8>) -> Result<TokenStep, BackendError> {
        let logits = self.feed()?;
        let token = self.sampler.sample(&logits);
        self.pending.push(token);
        if self
            .end_of_generation
            .get(token as usize)
            .copied()
            .unwrap_or(false)
        {
            return Ok(TokenStep::End);
        }
        out.extend_from_slice(self.tokenizer.token_bytes(token));
        Ok(TokenStep::Token)
    }
}
