"""AutoPeftModelForCausalLM.from_pretrained: base model from the adapter config, then the adapter."""

import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from peft import AutoPeftModelForCausalLM, LoraConfig, PeftModelForCausalLM, get_peft_model

out = sys.argv[1]
torch.manual_seed(0)
base = LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))
base.save_pretrained(f"{out}/base")
base = LlamaForCausalLM.from_pretrained(f"{out}/base")  # name_or_path is the folder: the adapter records it
torch.manual_seed(1)
model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "k_proj"], init_lora_weights=False,
                                        task_type="CAUSAL_LM"))
model.save_pretrained(f"{out}/adapter")
ids = torch.randint(0, 128, (2, 5), generator=torch.Generator().manual_seed(8))
model.eval()
loaded = AutoPeftModelForCausalLM.from_pretrained(f"{out}/adapter")
with torch.no_grad():
    expected = model(input_ids=ids).logits
    got = loaded(input_ids=ids).logits
torch.save({"expected": expected, "got": got, "is_causal_wrapper": isinstance(loaded, PeftModelForCausalLM),
            "training": loaded.training}, f"{out}/results.pt")
