"""P-tuning's own behaviour: the encoders, training, save/load, disable, refusals."""

from __future__ import annotations

import pytest
import torch
from _p_tuning_support import MAKERS, batch, greedy_by_forward, make_llama, run

from peft_core import PeftModel, get_peft_model
from peft_p_tuning import PromptEncoderConfig


def _model(task="CAUSAL_LM", **kwargs):
    torch.manual_seed(1)
    kwargs.setdefault("encoder_hidden_size", 24)
    return get_peft_model(MAKERS[task](), PromptEncoderConfig(task_type=task, num_virtual_tokens=3, **kwargs))


def test_mlp_and_lstm_encoders_compute_the_documented_functions():
    mlp = _model().base_model.prompt_encoder["default"]
    x = mlp.embedding.weight
    lin = [m for m in mlp.mlp_head if isinstance(m, torch.nn.Linear)]
    expected = lin[2](torch.relu(lin[1](torch.relu(lin[0](x)))))
    assert torch.allclose(mlp.prompt_matrix(), expected, atol=1e-6)
    lstm = _model(encoder_reparameterization_type="LSTM", encoder_num_layers=1).base_model.prompt_encoder["default"]
    hidden = lstm.lstm_head(lstm.embedding.weight.unsqueeze(0))[0][0]
    assert hidden.shape == (3, 48)  # bidirectional: 2 * encoder_hidden_size
    assert torch.allclose(lstm.prompt_matrix(), lstm.mlp_head(hidden), atol=1e-6)


def test_encoder_hidden_size_defaults_to_token_dim_and_mlp_ignores_layers():
    model = _model(encoder_hidden_size=None)
    assert model.peft_config["default"].encoder_hidden_size == 32
    with pytest.warns(UserWarning, match="encoder_num_layers=3 is ignored"):
        _model(encoder_num_layers=3)
    with pytest.raises(ValueError, match="'MLP' or 'LSTM'"):
        PromptEncoderConfig(num_virtual_tokens=2, encoder_reparameterization_type="GRU")


@pytest.mark.parametrize("kind", ["MLP", "LSTM"])
def test_training_changes_only_the_encoder(kind):
    model = _model(encoder_reparameterization_type=kind)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable and all(n.startswith("base_model.prompt_encoder.default.") for n in trainable)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    ids, mask = batch()
    model.train()
    for _ in range(3):
        model(input_ids=ids, attention_mask=mask, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    changed = sorted(n for n, p in model.named_parameters() if not torch.equal(p, before[n]))
    assert changed == trainable


def test_save_load_round_trip_and_refusals(tmp_path):
    model = _model().eval()
    expected = run(model, "CAUSAL_LM")
    model.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(make_llama(), tmp_path)
    assert torch.equal(run(loaded, "CAUSAL_LM"), expected)
    assert set(dict(loaded.base_model.prompt_encoder["default"].named_parameters())) == {"embedding.weight"}
    with pytest.raises(ValueError, match="can't be loaded as trainable"):
        PeftModel.from_pretrained(make_llama(), tmp_path, is_trainable=True)
    # a trainable adapter's encoder can't take a saved matrix either
    with pytest.raises(ValueError, match="reparameterisation network"):
        model.load_adapter(tmp_path, "again", is_trainable=True)
    assert "again" not in model.peft_config
    with pytest.raises(ValueError, match="nothing to\\s+merge"):
        loaded.merge_and_unload()
    ids, mask = batch()
    with pytest.raises(ValueError, match="mixed-adapter batch"):
        loaded(input_ids=ids, attention_mask=mask, adapter_names=["default", "default"])


@pytest.mark.parametrize("task", ["CAUSAL_LM", "SEQ_2_SEQ_LM", "SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"])
def test_disable_adapter_gives_the_base_model(task):
    model = _model(task).eval()
    base = MAKERS[task]()
    with model.disable_adapter():
        assert torch.equal(run(model, task), run(base, task))
    assert not torch.equal(run(model, task), run(base, task))


@pytest.mark.parametrize("task", ["CAUSAL_LM", "SEQ_2_SEQ_LM"])
def test_generate_follows_forward(task):
    model = _model(task, encoder_reparameterization_type="LSTM").eval()
    ids, mask = batch()
    got = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)
    assert torch.equal(got, greedy_by_forward(model, task))
