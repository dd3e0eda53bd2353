//! Loading a GGUF chat model: weights into candle, and the tokenizer rebuilt from the GGUF metadata.
//!
//! GGUF files carry their vocabulary, merges and token types but no `tokenizer.json`, and our machines
//! cannot reach the hub for one; so the byte-level BPE tokenizer is assembled here with the `tokenizers`
//! crate from `tokenizer.ggml.*`, with the pre-tokenizer that `tokenizer.ggml.pre` names. No Python runs.
//! The file is memory-mapped and the products read the weights' blocks where they lie in it: loading
//! copies nothing but norms and biases.

use std::fs::File;
use std::io::{BufReader, Cursor};
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_qwen2;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::error::{Error, Result};
use crate::generate::chat::ChatTemplate;
use crate::generate::{CausalLm, TextModel};
use crate::kernels::Blocks;

/// The Qwen2 pre-tokenizer's split pattern (as in the upstream `tokenizer.json`).
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GGUF token types (llama.cpp's `llama_token_type`) that mark special tokens.
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Which forward pass runs the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// sift's own ([`crate::generate::qwen2`]): all-position logits and a truncatable cache, so
    /// guessed tokens are checked in batches.
    Native,
    /// candle's `quantized_qwen2`, the reference the native pass is tested against.
    Reference,
}

/// Loads the GGUF at `path` as a chat model on `device`.
pub fn load_chat_model(path: &Path, architecture: &str, device: &Device) -> Result<TextModel> {
    load_chat_model_with(path, architecture, device, Forward::Native)
}

/// [`load_chat_model`] with a choice of forward pass.
pub fn load_chat_model_with(
    path: &Path,
    architecture: &str,
    device: &Device,
    forward: Forward,
) -> Result<TextModel> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the weights are read from the mapping for as long as the model lives, so the file
    // must not shrink or change under it: the store renames finished files into place and never
    // rewrites one (a file replaced by a rename stays mapped as it was), and a user's own copy
    // (`--model-file`) is read the way llama.cpp reads it.
    let mapped = Arc::new(unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?);
    let mut reader = Cursor::new(&mapped[..]);
    let content = Content::read(&mut reader).map_err(|e| Error::format(path, e))?;
    let found = metadata_str(&content, "general.architecture").unwrap_or_default();
    if found != architecture {
        return Err(Error::format(
            path,
            format!("the manifest says architecture `{architecture}`, the file says `{found}`"),
        ));
    }
    let tokenizer = tokenizer_from_gguf(&content).map_err(|e| Error::format(path, e))?;
    let stop_tokens = stop_tokens(&content, &tokenizer);
    let template = metadata_str(&content, "tokenizer.chat_template").unwrap_or_default();
    let chat = ChatTemplate::detect(&template, &tokenizer).map_err(|e| Error::format(path, e))?;
    let lm: Box<dyn CausalLm> = match architecture {
        "qwen2" if forward == Forward::Native => Box::new(
            crate::generate::qwen2::Qwen2::from_tensors(
                &content,
                &mut |name| mapped_tensor(&content, &mapped, name),
                device,
            )
            .map_err(|e| Error::format(path, e))?,
        ),
        "qwen2" => Box::new(Qwen2(
            quantized_qwen2::ModelWeights::from_gguf(content, &mut reader, device)
                .map_err(|e| Error::format(path, e))?,
        )),
        other => {
            return Err(Error::format(
                path,
                format!("architecture `{other}` has no loader in this sift"),
            ))
        }
    };
    Ok(TextModel::new(
        lm,
        tokenizer,
        stop_tokens,
        chat,
        device.clone(),
    ))
}

/// The blocks of tensor `name` of the GGUF `content`, where they lie in the file `mapped` into
/// memory ([`Blocks::mapped`]): nothing is copied, the pages come in from the page cache as the
/// products first read them. Copying each tensor out of the mapping (and letting its pages go) took
/// most of the load: `sift bench` with a 9-token prompt, three alternating rounds, load 1.08-1.86 s
/// copied against 0.20-0.22 s in place, peak memory 1.20 against 1.07 GB (the token table's rows are
/// read only as tokens come).
fn mapped_tensor(
    content: &Content,
    mapped: &Arc<memmap2::Mmap>,
    name: &str,
) -> candle_core::Result<Blocks> {
    let Some(info) = content.tensor_infos.get(name) else {
        candle_core::bail!("cannot find tensor info for {name}")
    };
    let start = usize::try_from(content.tensor_data_offset.saturating_add(info.offset))
        .unwrap_or(usize::MAX);
    Blocks::mapped(
        mapped.clone(),
        start,
        info.ggml_dtype,
        info.shape.dims().to_vec(),
    )
    .map_err(|e| candle_core::Error::Msg(format!("{name}: {e}")))
}

/// Only the tokenizer of the GGUF at `path` (reads the metadata, not the weights).
pub fn read_tokenizer(path: &Path) -> Result<Tokenizer> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::new(file);
    let content = Content::read(&mut reader).map_err(|e| Error::format(path, e))?;
    tokenizer_from_gguf(&content).map_err(|e| Error::format(path, e))
}

struct Qwen2(quantized_qwen2::ModelWeights);

impl CausalLm for Qwen2 {
    fn forward(&mut self, input: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        self.0.forward(input, pos)
    }

    fn reset(&mut self) {
        self.0.clear_kv_cache();
    }
}

fn metadata_str(content: &Content, key: &str) -> Option<String> {
    content.metadata.get(key)?.to_string().ok().cloned()
}

fn metadata_array<'a>(
    content: &'a Content,
    key: &str,
) -> std::result::Result<&'a Vec<Value>, String> {
    content
        .metadata
        .get(key)
        .ok_or_else(|| format!("metadata has no `{key}`"))?
        .to_vec()
        .map_err(|e| format!("`{key}`: {e}"))
}

/// Builds the tokenizer that the GGUF metadata describes.
pub fn tokenizer_from_gguf(content: &Content) -> std::result::Result<Tokenizer, String> {
    let model = metadata_str(content, "tokenizer.ggml.model").unwrap_or_default();
    if model != "gpt2" {
        return Err(format!(
            "tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)"
        ));
    }
    let pre = metadata_str(content, "tokenizer.ggml.pre").unwrap_or_default();
    let pattern = match pre.as_str() {
        "qwen2" => QWEN2_PATTERN,
        other => return Err(format!("pre-tokenizer `{other}` is not supported")),
    };

    let tokens = metadata_array(content, "tokenizer.ggml.tokens")?
        .iter()
        .map(|v| v.to_string().cloned().map_err(|e| e.to_string()))
        .collect::<std::result::Result<Vec<String>, String>>()?;
    let types = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|t| t.to_i32().map_err(|e| e.to_string()))
            .collect::<std::result::Result<Vec<i32>, String>>()?,
        None => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err("token_type and tokens differ in length".into());
    }
    let merges = metadata_array(content, "tokenizer.ggml.merges")?
        .iter()
        .map(|v| {
            let s = v.to_string().map_err(|e| e.to_string())?;
            s.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| format!("merge `{s}` is not two tokens"))
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;

    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| format!("BPE: {e}"))?;

    let mut tokenizer = Tokenizer::new(bpe);
    let split = Split::new(
        SplitPattern::Regex(pattern.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| format!("pre-tokenizer pattern: {e}"))?;
    tokenizer
        .with_normalizer(Some(NFC))
        .map_err(|e| e.to_string())?
        .with_pre_tokenizer(Some(Sequence::new(vec![
            PreTokenizerWrapper::Split(split),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)),
        ])))
        .with_decoder(Some(ByteLevelDecoder::default()));

    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, t)| matches!(**t, TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED))
        .map(|(tok, _)| AddedToken::from(tok.clone(), true))
        .collect();
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| format!("special tokens: {e}"))?;
    Ok(tokenizer)
}

/// The model's own end markers: its EOS id, and the ChatML end-of-turn and end-of-text tokens.
fn stop_tokens(content: &Content, tokenizer: &Tokenizer) -> Vec<u32> {
    let mut stops: Vec<u32> = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
        .iter()
        .filter_map(|k| content.metadata.get(*k)?.to_u32().ok())
        .collect();
    for marker in ["<|im_end|>", "<|endoftext|>"] {
        if let Some(id) = tokenizer.token_to_id(marker) {
            stops.push(id);
        }
    }
    stops.sort_unstable();
    stops.dedup();
    stops
}
