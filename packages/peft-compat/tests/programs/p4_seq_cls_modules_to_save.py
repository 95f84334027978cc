"""Sequence classification with LoRA: the new head trains in full (modules_to_save), saved and reloaded."""

import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from peft import LoraConfig, PeftModel, TaskType, get_peft_model

out, models = sys.argv[1], sys.argv[2]
base_path = f"{models}/tiny-bert-seq-cls"  # a saved model folder, as a hub download gives

torch.manual_seed(1)
model = get_peft_model(AutoModelForSequenceClassification.from_pretrained(base_path),
                       LoraConfig(task_type=TaskType.SEQ_CLS, r=4, target_modules=["query", "value"]))
optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
ids = torch.randint(0, 100, (4, 10), generator=torch.Generator().manual_seed(5))
labels = torch.tensor([0, 1, 2, 1])
model.train()
for _ in range(2):
    out_ = model(input_ids=ids, labels=labels)
    out_.loss.backward()
    optimizer.step()
    optimizer.zero_grad()
model.eval()
with torch.no_grad():
    logits = model(input_ids=ids).logits
model.save_pretrained(f"{out}/adapter")
keys = sorted(load_file(f"{out}/adapter/adapter_model.safetensors"))
loaded = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(base_path), f"{out}/adapter")
with torch.no_grad():
    reloaded = loaded(input_ids=ids).logits
trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
torch.save({"logits": logits, "reloaded": reloaded, "keys": keys, "trainable": trainable,
            "loss": out_.loss.detach()}, f"{out}/results.pt")
