//! The model's chat template (`tokenizer.chat_template`, Jinja) rendered with minijinja.

use minijinja::{Environment, ErrorKind, context};

use crate::backend::ChatMessage;
use crate::error::BackendError;

/// A compiled chat template.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

const NAME: &str = "chat";

/// ChatML, used when the GGUF file carries no template.
pub(crate) const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

impl ChatTemplate {
    /// Compiles `source`; `bos_token`/`eos_token` are exposed to it as in Hugging Face's renderer.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, BackendError> {
        let mut env = Environment::new();
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|e| BackendError::Model(format!("chat template does not compile: {e}")))?;
        Ok(Self {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        })
    }

    /// Renders `messages` followed by the opening of the assistant's turn.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, BackendError> {
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| BackendError::Template(e.to_string()))?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => self.bos_token,
                eos_token => self.eos_token,
            })
            .map_err(|e| BackendError::Template(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_chatml_and_surfaces_exceptions() {
        let t = ChatTemplate::new(CHATML, "", "<|im_end|>").unwrap();
        let out = t
            .render(&[ChatMessage {
                role: "user".into(),
                content: "Hi".into(),
            }])
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let strict = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
        let err = strict.render(&[]).unwrap_err();
        assert!(err.to_string().contains("no system role"), "{err}");
    }
}
