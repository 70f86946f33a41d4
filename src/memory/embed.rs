//! Sentence vectors through llama.cpp itself (no second ML runtime): an embedding GGUF (BERT
//! family, e.g. all-MiniLM-L6-v2) loaded on the CPU, mean-pooled, unit length. Bevy-free.
//!
//! llama.cpp aborts the process (not an error) when a batch holds more tokens than its micro
//! batch or when `n_seq_max` does not divide it: texts are cut to the model's context and
//! batches are split before they reach it.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

use super::store::MemoryError;
use crate::llm::runtime::engine::backend;
use crate::llm::runtime::model_info::read_model_info;

/// Turns texts into unit vectors of one fixed dimension: the memory's seam to a model.
pub trait Embed: Send {
    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, MemoryError>;
    /// Length of every vector.
    fn dimension(&self) -> usize;
}

/// Sequences per batch (a divisor of every micro batch size we use).
const SEQUENCES: usize = 8;
/// Tokens per text at most (BERT models are trained on 512).
const MAX_TOKENS: u32 = 512;

self_cell::self_cell!(
    /// The model and the one context that borrows it (made once: creating a context costs
    /// more than embedding a sentence).
    struct Session {
        owner: LlamaModel,
        #[covariant]
        dependent: LlamaContext,
    }
);

pub struct LlamaEmbedder {
    session: Session,
    path: PathBuf,
    n_ctx: u32,
    dimension: usize,
    pub load_time: Duration,
}

impl LlamaEmbedder {
    /// Loads an embedding GGUF on the CPU (it is small; the GPU is left to the chat model).
    pub fn load(path: &Path, threads: u16) -> Result<Self, MemoryError> {
        let start = Instant::now();
        let fail =
            |message: String| MemoryError::Embedding(format!("{}: {message}", path.display()));
        read_model_info(path).map_err(|e| MemoryError::Embedding(e.to_string()))?;
        let backend = backend().map_err(|e| fail(e.to_string()))?;
        let params = LlamaModelParams::default()
            .with_devices(&[])
            .map_err(|e| fail(e.to_string()))?;
        let model =
            LlamaModel::load_from_file(backend, path, &params).map_err(|e| fail(e.to_string()))?;
        let dimension = usize::try_from(model.n_embd_out())
            .ok()
            .filter(|d| *d > 0)
            .ok_or_else(|| fail("the model has no embedding size".into()))?;
        let n_ctx = match model.n_ctx_train() {
            0 => MAX_TOKENS,
            trained => trained.min(MAX_TOKENS),
        };
        let threads = i32::from(threads.max(1));
        let params = LlamaContextParams::default()
            .with_embeddings(true)
            .with_pooling_type(LlamaPoolingType::Mean)
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_ctx)
            .with_n_ubatch(n_ctx)
            .with_n_seq_max(SEQUENCES as u32)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let session = Session::try_new(model, |model| model.new_context(backend, params))
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            session,
            path: path.to_owned(),
            n_ctx,
            dimension,
            load_time: start.elapsed(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The text's tokens, cut to the context with the closing token kept.
    fn tokens(&self, text: &str) -> Vec<LlamaToken> {
        let mut tokens = self
            .session
            .borrow_owner()
            .vocab()
            .tokenize(text.as_bytes(), true, false);
        let limit = self.n_ctx as usize;
        if tokens.len() > limit
            && let Some(last) = tokens.last().copied()
        {
            tokens.truncate(limit - 1);
            tokens.push(last);
        }
        tokens
    }
}

/// `vector` scaled to unit length.
pub fn unit(vector: &[f32]) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    vector.iter().map(|x| x / norm).collect()
}

// SAFETY: a llama.cpp context may be used from any thread, one thread at a time.
// `LlamaEmbedder` owns its model and context together (self_cell), is not `Sync`, and every use
// goes through `&mut self` (as `LlmEngine`).
#[allow(unsafe_code)]
unsafe impl Send for LlamaEmbedder {}

impl Embed for LlamaEmbedder {
    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, MemoryError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let fail =
            |message: String| MemoryError::Embedding(format!("{}: {message}", self.path.display()));
        let mut batch = LlamaBatch::new(self.n_ctx as usize, 1);
        let mut out = Vec::with_capacity(texts.len());
        let tokens: Vec<Vec<LlamaToken>> = texts.iter().map(|t| self.tokens(t)).collect();
        let n_ctx = self.n_ctx as usize;
        let mut start = 0;
        while start < tokens.len() {
            // As many texts as fit one micro batch, at most SEQUENCES.
            let mut end = start;
            let mut used = 0;
            while end < tokens.len() && end - start < SEQUENCES && used + tokens[end].len() <= n_ctx
            {
                used += tokens[end].len();
                end += 1;
            }
            batch.clear();
            for (seq, text) in tokens[start..end].iter().enumerate() {
                batch
                    .add_sequence(text, seq as i32, true)
                    .map_err(|e| fail(e.to_string()))?;
            }
            self.session.with_dependent_mut(|_, context| {
                context
                    .decode(&mut batch)
                    .map_err(|e| fail(e.to_string()))?;
                for seq in 0..end - start {
                    let vector = context
                        .embeddings_seq_ith(seq as i32)
                        .map_err(|e| fail(e.to_string()))?;
                    out.push(unit(vector));
                }
                context.clear_kv_cache();
                Ok::<(), MemoryError>(())
            })?;
            start = end;
        }
        Ok(out)
    }

    fn dimension(&self) -> usize {
        self.dimension
    }
}
