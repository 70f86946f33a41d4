//! llama.cpp in this process, free of Bevy: the llama.cpp modules picked at run time
//! (`backends`), the GGUF header checks (`model_info`), the engine with its sampler and KV-cache
//! reuse (`engine`), UTF-8-safe streaming and stop strings (`text`), warm-start files
//! (`warm_file`), and the local backend that puts them behind the chat contract (`local`).

pub mod backends;
pub mod engine;
pub mod local;
pub mod model_info;
pub mod text;
pub mod warm_file;
