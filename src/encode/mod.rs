//! The encoder path: a batch of texts in, one L2-normalised mean-pooled vector per text out.
//!
//! e5 models are trained with a role prefix (`query: ` or `passage: `) and read up to their position
//! limit; longer inputs are cut at the limit. Texts are batched with padding and an attention mask, so
//! padding never leaks into the mean.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;

use crate::error::{Error, Result};
use crate::model::e5s1::{self, E5Tokenizer};

/// The prefix e5 expects before a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Query,
    Passage,
}

impl Prefix {
    fn as_str(self) -> &'static str {
        match self {
            Prefix::Query => "query: ",
            Prefix::Passage => "passage: ",
        }
    }
}

/// A loaded sentence encoder.
pub struct Encoder {
    model: BertModel,
    tokenizer: E5Tokenizer,
    pad_id: u32,
    max_tokens: usize,
    hidden: usize,
    device: Device,
}

impl Encoder {
    /// Loads an E5S1 image onto `device`.
    pub fn load_e5s1(path: &std::path::Path, device: &Device) -> Result<Self> {
        let image = e5s1::load(path, device)?;
        let vb = VarBuilder::from_tensors(image.tensors, DType::F32, device);
        let model = BertModel::load(vb, &image.config).map_err(|e| Error::format(path, e))?;
        Ok(Self {
            model,
            tokenizer: image.tokenizer,
            pad_id: image.pad_id,
            max_tokens: image.config.max_position_embeddings,
            hidden: image.config.hidden_size,
            device: device.clone(),
        })
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.hidden
    }

    /// Token ids for `text` with its prefix and the `<s> … </s>` frame, cut at the position limit.
    pub fn tokens(&self, text: &str, prefix: Prefix) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(format!("{}{text}", prefix.as_str()), true)?;
        let mut ids = enc.get_ids().to_vec();
        if ids.len() > self.max_tokens {
            let last = *ids.last().unwrap_or(&self.pad_id);
            ids.truncate(self.max_tokens - 1);
            ids.push(last);
        }
        Ok(ids)
    }

    /// One unit vector per text, in order.
    pub fn embed(&self, texts: &[&str], prefix: Prefix) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let ids = texts
            .iter()
            .map(|t| self.tokens(t, prefix))
            .collect::<Result<Vec<_>>>()?;
        let width = ids.iter().map(Vec::len).max().unwrap_or(0);
        let mut flat = Vec::with_capacity(ids.len() * width);
        let mut mask = Vec::with_capacity(ids.len() * width);
        for row in &ids {
            flat.extend(row.iter().copied());
            flat.extend(std::iter::repeat_n(self.pad_id, width - row.len()));
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            mask.extend(std::iter::repeat_n(0u32, width - row.len()));
        }
        let shape = (ids.len(), width);
        let input = Tensor::from_vec(flat, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let types = input.zeros_like()?;
        let hidden = self.model.forward(&input, &types, Some(&mask))?;
        // Mean over real tokens only, then unit length.
        let mask_f = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask_f)?.sum(1)?;
        let counts = mask_f.sum(1)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
        let unit = mean.broadcast_div(&norm)?;
        Ok(unit.to_vec2::<f32>()?)
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
