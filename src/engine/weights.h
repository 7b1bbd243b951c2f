// Loading and saving a model directory (Hugging Face layout):
//   DIR/config.json                          ModelConfig
//   DIR/model.safetensors                    all tensors, or
//   DIR/model.safetensors.index.json + shards {"weight_map": {tensor name: shard file}}
// On-disk dtypes float32 / bfloat16 / float16 are converted to the compute dtype chosen at load.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <c10/core/ScalarType.h>

#include "engine/model.h"

namespace grm::engine {

// Reads DIR/config.json and the weights (model.safetensors preferred over the sharded index when both exist).
// Every tensor the architecture expects must be present with the configured shape; tensors it does not
// expect are errors, except rotary "inv_freq" buffers and lm_head.weight of a tied model (ignored, as HF
// does). Throws grm::Error naming the file and the tensors (missing / unexpected / wrong shape / bad dtype).
//
// after_layer, when given, is called once decoder block `layer`'s tensors are all loaded (each block once, in
// the order their last tensor arrives), then once with layer == num_hidden_layers when every tensor is: so that
// LocalGenerator::open can pack each block (Transformer::pack_and_release) before the next one is read. Tensors
// are read in the model's parameter order, block by block, so at most a block's worth of float32 values is
// loaded and not yet packed, besides the embedding (and an untied head), which wait for the last call.
using AfterLayer = std::function<void(Transformer& model, int64_t layer)>;
std::shared_ptr<Transformer> load_model(const std::string& dir, c10::ScalarType dtype = c10::kFloat,
                                        const AfterLayer& after_layer = {});

// Loads weights into an existing model (same rules as load_model); `dir` holds the safetensors files.
void load_weights(Transformer& model, const std::string& dir, const AfterLayer& after_layer = {});

// Writes DIR/model.safetensors (tensors in the model's dtype, atomically) and then DIR/config.json (with
// torch_dtype set to the model's dtype, atomically). Creates DIR when missing.
void save_model(const Transformer& model, const std::string& dir);

// "float32" | "bfloat16" | "float16" (HF torch_dtype names) ↔ dtype. Also accepts "f32", "bf16", "f16",
// "fp32", "fp16". Throws grm::Error for anything else.
c10::ScalarType dtype_from_name(const std::string& name);
std::string dtype_name(c10::ScalarType dtype);

}  // namespace grm::engine
