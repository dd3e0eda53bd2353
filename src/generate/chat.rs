//! Turning chat messages into the token sequence a chat model was trained on.
//!
//! The markers come from the model (its chat template and its special tokens), the message text from the
//! caller. Message text is tokenized with special-token matching switched off, so an article that contains
//! `<|im_end|>` or `<|im_start|>system` stays text: untrusted input can never open a turn of its own.

use tokenizers::Tokenizer;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// A ChatML template: `<|im_start|>ROLE\nTEXT<|im_end|>\n` per message, then an open assistant turn.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    im_start: u32,
    im_end: u32,
}

impl ChatTemplate {
    /// Recognises the model's template. Only ChatML is supported; anything else is refused rather than
    /// guessed, since a wrong template silently degrades every answer.
    pub fn detect(template: &str, tokenizer: &Tokenizer) -> std::result::Result<Self, String> {
        if !template.contains("<|im_start|>") {
            return Err("the chat template is not ChatML (no `<|im_start|>`)".into());
        }
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| format!("the vocabulary has no `{t}`"))
        };
        Ok(Self {
            im_start: id("<|im_start|>")?,
            im_end: id("<|im_end|>")?,
        })
    }

    /// Tokens for `messages` followed by the opening of the assistant's turn.
    pub fn render(&self, tokenizer: &Tokenizer, messages: &[Message]) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for m in messages {
            ids.push(self.im_start);
            ids.extend(plain_tokens(tokenizer, &format!("{}\n", m.role.as_str()))?);
            ids.extend(plain_tokens(tokenizer, &m.content)?);
            ids.push(self.im_end);
            ids.extend(plain_tokens(tokenizer, "\n")?);
        }
        ids.push(self.im_start);
        ids.extend(plain_tokens(tokenizer, "assistant\n")?);
        Ok(ids)
    }
}

/// Tokenizes `text` as text only. `tokenizer` must have special-token matching switched off
/// (`set_encode_special_tokens(true)`, as [`crate::generate::TextModel`] keeps it), so that special-token
/// strings inside `text` are not recognised.
pub fn plain_tokens(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    debug_assert!(tokenizer.get_encode_special_tokens());
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let enc = tokenizer
        .encode(text, false)
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(enc.get_ids().to_vec())
}
