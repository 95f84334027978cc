"""LoRA on a causal LM: a few training steps, save, load into a fresh base, compare logits."""

import sys

import torch
from transformers import AutoModelForCausalLM

from peft import LoraConfig, PeftModel, TaskType, get_peft_model

out, models = sys.argv[1], sys.argv[2]
base_path = f"{models}/tiny-llama"  # a saved model folder, as a hub download gives

torch.manual_seed(1)
config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, task_type=TaskType.CAUSAL_LM)
model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_path), config)
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
ids = torch.randint(0, 128, (4, 12), generator=torch.Generator().manual_seed(2))
losses = []
for _ in range(3):
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    losses.append(loss.detach())
model.eval()
with torch.no_grad():
    trained = model(input_ids=ids).logits
model.save_pretrained(f"{out}/adapter")
loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), f"{out}/adapter")
with torch.no_grad():
    reloaded = loaded(input_ids=ids).logits
trainable, total = model.get_nb_trainable_parameters()
torch.save({"losses": torch.stack(losses), "trained": trained, "reloaded": reloaded,
            "counts": torch.tensor([trainable, total])}, f"{out}/results.pt")
