"""Several LoRA adapters: add, switch with set_adapter, disable_adapter, delete, save all."""

import os
import sys

import torch
from transformers import AutoModelForCausalLM

from peft import LoraConfig, PeftModel, get_peft_model

out, models = sys.argv[1], sys.argv[2]
base_path = f"{models}/tiny-llama"  # a saved model folder, as a hub download gives

torch.manual_seed(1)
model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_path),
                       LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
model.add_adapter("second", LoraConfig(r=2, lora_alpha=4, target_modules=["v_proj", "o_proj"], init_lora_weights=False))
model.add_adapter("third", LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
ids = torch.randint(0, 128, (2, 7), generator=torch.Generator().manual_seed(4))
model.eval()
results = {}
with torch.no_grad():
    results["default"] = model(input_ids=ids).logits
    model.set_adapter("second")
    results["second"] = model(input_ids=ids).logits
    results["active"] = list(model.active_adapters)
    with model.disable_adapter():
        results["disabled"] = model(input_ids=ids).logits
    model.delete_adapter("third")
    results["adapters"] = sorted(model.peft_config)
model.save_pretrained(f"{out}/adapters")
results["files"] = sorted(os.path.relpath(os.path.join(d, f), f"{out}/adapters")
                          for d, _, fs in os.walk(f"{out}/adapters") for f in fs if f != "README.md")
loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), f"{out}/adapters")
loaded.load_adapter(f"{out}/adapters/second", adapter_name="second")
loaded.set_adapter("second")
with torch.no_grad():
    results["reloaded_second"] = loaded(input_ids=ids).logits
torch.save(results, f"{out}/results.pt")
