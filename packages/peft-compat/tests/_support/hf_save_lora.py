"""Run by Hugging Face PEFT (the reference interpreter): save a LoRA adapter for a tiny Llama and its logits."""

import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from peft import LoraConfig, get_peft_model

out = sys.argv[1]
torch.manual_seed(0)
base = LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))
torch.manual_seed(5)
model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "o_proj"], init_lora_weights=False))
model.eval()
ids = torch.randint(0, 128, (2, 7), generator=torch.Generator().manual_seed(11))
with torch.no_grad():
    logits = model(input_ids=ids).logits
model.save_pretrained(f"{out}/adapter")
torch.save({"ids": ids, "logits": logits}, f"{out}/reference.pt")
