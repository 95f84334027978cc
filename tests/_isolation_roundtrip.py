"""Save/load round trip of every method a package provides, with only the package's declared dependencies.

Run by the isolation check (`tests/test_workspace_isolation.py`) in a fresh venv holding the package's
wheel and its `[project].dependencies` and nothing else (no dev group), as
`python _isolation_roundtrip.py [--core] METHOD...`; prints one JSON line per method. Imports nothing from
the workspace but the installed packages: a dependency used at run time but not declared (numpy through
`safetensors.torch.save_file`, ...) fails here. `--core` registers a tiny method defined below, for
peft-core alone. A method whose config can't be made generically for the tiny model here (X-LoRA needs LoRA
experts, VB-LoRA's default vector length exceeds the layers) runs on its own conformance cases instead;
one whose every case needs a module missing here (transformers) is reported as skipped, with the reason.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import tempfile
import traceback

import torch
from torch import nn


class TinyModel(nn.Module):
    """Linear layers for layer methods, an embedding and a dict config for prompt-learning methods."""

    def __init__(self) -> None:
        super().__init__()
        self.config = {"model_type": "custom", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
        self.embed_tokens = nn.Embedding(32, 64)
        self.lin0 = nn.Linear(64, 64)  # 64: room for the default sizes (FourierFT's 1000 frequencies, MiSS's r=64)
        self.lin1 = nn.Linear(64, 64)

    def get_input_embeddings(self) -> nn.Module:
        return self.embed_tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin1(torch.relu(self.lin0(x)))


def register_core_probe_method() -> str:
    """A minimal low-rank method, so peft-core's own save/load runs without any method package."""
    from typing import Optional

    from peft_core import BaseTuner, BaseTunerLayer, PeftConfig, register_peft_method

    @dataclasses.dataclass
    class ProbeConfig(PeftConfig):
        peft_type: str = "ISOPROBE"
        r: int = 2
        target_modules: Optional[list] = None

    class ProbeLinear(BaseTunerLayer):
        adapter_layer_names = ("isoprobe_A",)

        def __init__(self, base: nn.Linear) -> None:
            super().__init__(base)
            self.isoprobe_A = nn.ParameterDict()

        def update_layer(self, name: str, r: int) -> None:
            self.isoprobe_A[name] = nn.Parameter(torch.randn(self.get_base_layer().out_features))
            self._active_adapter = [name]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.base_layer(x)
            for name in self.active_adapters:
                out = out * self.isoprobe_A[name]
            return out

    class ProbeModel(BaseTuner):
        prefix = "isoprobe_"

        def _create_and_replace(self, config, adapter_name, target, target_name, parent, current_key):
            layer = ProbeLinear(target)
            layer.update_layer(adapter_name, config.r)
            setattr(parent, target_name, layer)

    register_peft_method(name="isoprobe", config_cls=ProbeConfig, model_cls=ProbeModel, plugin_api=">=1,<2")
    return "isoprobe"


def make_config(name: str):
    from peft_core import get_peft_method

    config_cls = get_peft_method(name).config_cls
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    kwargs = {}
    if "num_virtual_tokens" in fields:
        kwargs["num_virtual_tokens"] = 3
    elif "target_modules" in fields:
        kwargs["target_modules"] = ["lin0", "lin1"]
    for field_name, f in fields.items():
        if field_name.startswith("init") and f.default is True:
            kwargs[field_name] = False
    # fields some configs require, by Hugging Face PEFT's names
    for field_name, value in FIELDS_WITHOUT_A_USABLE_DEFAULT.items():
        if field_name in fields:
            kwargs[field_name] = value
    return config_cls(**kwargs)


FIELDS_WITHOUT_A_USABLE_DEFAULT = {"total_step": 10, "feedforward_modules": ["lin1"]}


def subject(name: str) -> tuple[nn.Module, object, object]:
    """(base model, config, forward inputs or None) to round-trip `name` on: the generic TinyModel config,
    or else (a method whose config can't be made generically, or doesn't fit TinyModel) the first of the
    method's own conformance cases (`peft.conformance`) whose model needs nothing that is missing here."""
    from peft_core import PeftError, get_peft_model

    try:
        config = make_config(name)
        get_peft_model(TinyModel(), copy.deepcopy(config))
        return TinyModel(), config, None
    except PeftError as exc:
        generic_error = f"{type(exc).__name__}: {exc}"
    from peft_core.testing import load_suite

    try:
        suite, _ = load_suite(name)
    except LookupError:
        raise RuntimeError(f"the generic config fails ({generic_error}) and the method declares no conformance cases")
    for case in suite.cases:
        if case.model.missing() is None:
            return case.model.build(), case.config(), case.model.make_inputs()
    raise Unsupported(
        f"the generic config fails ({generic_error}) and every conformance case needs a module not installed "
        f"here ({sorted({m for c in suite.cases for m in c.model.requires})})"
    )


class Unsupported(Exception):
    """No model this environment can build takes the method."""


def round_trip(name: str) -> dict:
    from peft_core import PeftModel, get_peft_model, get_peft_model_state_dict

    torch.manual_seed(0)
    try:
        base, config, inputs = subject(name)
    except Unsupported as exc:
        return {"method": name, "ok": True, "skipped": str(exc)}
    model = get_peft_model(copy.deepcopy(base), config)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.1)  # not the initial values: the file must carry them
    saved = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp)
        reloaded = get_peft_model_state_dict(loaded)
    problems = []
    if sorted(saved) != sorted(reloaded):
        problems.append(f"keys differ after the round trip: {sorted(saved)[:4]} vs {sorted(reloaded)[:4]}")
    elif not all(torch.equal(saved[k], reloaded[k].to(saved[k].dtype)) for k in saved):
        problems.append("tensor values differ after the round trip")
    if not saved:
        problems.append("nothing was saved")
    if inputs is not None or not model.peft_config["default"].is_prompt_learning:
        from peft_core.testing import output_of

        kwargs = inputs if inputs is not None else {"x": torch.randn(2, 64)}
        with torch.no_grad():
            if not torch.allclose(output_of(model.eval()(**kwargs)), output_of(loaded.eval()(**kwargs))):
                problems.append("outputs differ after the round trip")
    return {"method": name, "ok": not problems, "problems": problems, "keys": len(saved)}


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("--")]
    if "--core" in argv:
        names.append(register_core_probe_method())
    failed = 0
    for name in names:
        try:
            result = round_trip(name)
        except BaseException:  # noqa: BLE001 - reported
            result = {"method": name, "ok": False, "problems": [traceback.format_exc(limit=8)]}
        failed += not result["ok"]
        print(json.dumps(result))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
