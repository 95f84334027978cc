"""LoRA merge_and_unload: the merged plain model gives the adapted model's outputs."""

import sys

import torch
from transformers import AutoModelForCausalLM

from peft import LoraConfig, get_peft_model

out, models = sys.argv[1], sys.argv[2]
base_path = f"{models}/tiny-llama"  # a saved model folder, as a hub download gives
base = AutoModelForCausalLM.from_pretrained(base_path)
torch.manual_seed(1)
model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
ids = torch.randint(0, 128, (2, 9), generator=torch.Generator().manual_seed(3))
model.eval()
with torch.no_grad():
    adapted = model(input_ids=ids).logits
    merged_model = model.merge_and_unload()
    merged = merged_model(input_ids=ids).logits
weights = {k: v.clone() for k, v in merged_model.state_dict().items() if "layers.0" in k}
torch.save({"adapted": adapted, "merged": merged, "type": type(merged_model).__name__, "weights": weights},
           f"{out}/results.pt")
