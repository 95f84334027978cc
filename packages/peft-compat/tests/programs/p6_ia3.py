"""(IA)^3 with the default targets of a causal LM: train, merge, save, load."""

import json
import sys

import torch
from transformers import AutoModelForCausalLM

from peft import IA3Config, PeftModel, get_peft_model

out, models = sys.argv[1], sys.argv[2]
base_path = f"{models}/tiny-llama"  # a saved model folder, as a hub download gives

torch.manual_seed(1)
model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_path), IA3Config(task_type="CAUSAL_LM"))
ids = torch.randint(0, 128, (2, 8), generator=torch.Generator().manual_seed(7))
optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
loss = model(input_ids=ids, labels=ids).loss
loss.backward()
optimizer.step()
model.eval()
with torch.no_grad():
    logits = model(input_ids=ids).logits
model.save_pretrained(f"{out}/adapter")
with open(f"{out}/adapter/adapter_config.json") as fh:
    saved = json.load(fh)
loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), f"{out}/adapter")
with torch.no_grad():
    reloaded = loaded(input_ids=ids).logits
    merged = loaded.merge_and_unload()(input_ids=ids).logits
torch.save({"logits": logits, "reloaded": reloaded, "merged": merged, "loss": loss.detach(),
            "targets": sorted(saved["target_modules"]), "ff": sorted(saved["feedforward_modules"])},
           f"{out}/results.pt")
