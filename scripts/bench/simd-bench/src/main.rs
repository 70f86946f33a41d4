//! Prompt and decode speed of a GGUF model on the CPU: best of N runs.
//! Usage: simd-bench MODEL.gguf [threads] [runs]

use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;

const PROMPT_TOKENS: usize = 256;
const DECODE_TOKENS: usize = 256;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model_path = args.next().ok_or("usage: simd-bench MODEL.gguf [threads] [runs]")?;
    let threads: i32 = args.next().map_or(Ok(2), |s| s.parse())?;
    let runs: usize = args.next().map_or(Ok(5), |s| s.parse())?;

    let mut backend = LlamaBackend::init()?;
    backend.void_logs();
    let model = LlamaModel::load_from_file(&backend, &model_path, &LlamaModelParams::default())?;
    let text = "Once upon a time, there was a little girl named Lily. ".repeat(40);
    let mut tokens = model.vocab().tokenize(text.as_bytes(), true, false);
    tokens.truncate(PROMPT_TOKENS);

    let (mut best_prompt, mut best_decode) = (0.0f64, 0.0f64);
    for _ in 0..runs {
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(1024))
            .with_n_batch(512)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let mut ctx = model.new_context(&backend, params)?;
        let mut batch = LlamaBatch::new(512, 1);
        for (i, token) in tokens.iter().enumerate() {
            batch.add(*token, i as i32, &[0], i + 1 == tokens.len())?;
        }
        let start = Instant::now();
        ctx.decode(&mut batch)?;
        let prompt_tps = tokens.len() as f64 / start.elapsed().as_secs_f64();

        let mut sampler = LlamaSampler::greedy();
        let mut pos = tokens.len() as i32;
        let start = Instant::now();
        for _ in 0..DECODE_TOKENS {
            let token = sampler.sample(&ctx, batch.n_tokens() - 1);
            batch.clear();
            batch.add(token, pos, &[0], true)?;
            pos += 1;
            ctx.decode(&mut batch)?;
        }
        let decode_tps = DECODE_TOKENS as f64 / start.elapsed().as_secs_f64();
        best_prompt = best_prompt.max(prompt_tps);
        best_decode = best_decode.max(decode_tps);
    }
    println!(
        "{{\"threads\":{threads},\"prompt_tokens\":{},\"prompt_tps\":{best_prompt:.1},\"decode_tokens\":{DECODE_TOKENS},\"decode_tps\":{best_decode:.1}}}",
        tokens.len()
    );
    Ok(())
}
