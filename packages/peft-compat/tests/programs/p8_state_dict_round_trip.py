"""get_peft_model_state_dict / set_peft_model_state_dict: copy a trained adapter into a fresh model."""

import sys

import torch
from transformers import AutoModelForCausalLM

from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

out, models = sys.argv[1], sys.argv[2]
base_path = f"{models}/tiny-gpt2"  # a saved model folder, as a hub download gives

torch.manual_seed(1)
config = LoraConfig(r=4, target_modules=["c_attn", "c_proj"], init_lora_weights=False, fan_in_fan_out=True)
model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_path), config)
state = get_peft_model_state_dict(model)
fresh = get_peft_model(AutoModelForCausalLM.from_pretrained(base_path),
                       LoraConfig(r=4, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True))
result = set_peft_model_state_dict(fresh, state)
ids = torch.randint(0, 100, (2, 6), generator=torch.Generator().manual_seed(9))
model.eval()
fresh.eval()
with torch.no_grad():
    expected = model(input_ids=ids).logits
    got = fresh(input_ids=ids).logits
torch.save({"keys": sorted(state), "shapes": {k: tuple(v.shape) for k, v in state.items()}, "expected": expected,
            "got": got, "unexpected": list(result.unexpected_keys)}, f"{out}/results.pt")
