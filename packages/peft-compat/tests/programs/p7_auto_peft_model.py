"""AutoPeftModelForCausalLM.from_pretrained: base model from the adapter config, then the adapter."""

import sys

import torch
from transformers import AutoModelForCausalLM

from peft import AutoPeftModelForCausalLM, LoraConfig, PeftModelForCausalLM, get_peft_model

out, models = sys.argv[1], sys.argv[2]
base_path = f"{models}/tiny-llama"  # a saved model folder, as a hub download gives
base = AutoModelForCausalLM.from_pretrained(base_path)  # the adapter records this path
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
