"""`LoraConfig`: Hugging Face PEFT's LoRA config (0.21.2), field for field.

Every field HF writes to `adapter_config.json` exists here with HF's name, type and default, so a
config round-trips between the two libraries. Fields of LoRA variants this package does not
implement are accepted only at their default value and refused otherwise (see `not_implemented`),
because silently ignoring them would compute different outputs than HF.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping, Optional, Union

from peft_core import ConfigError
from peft_core.config_fields import ExcludeModulesField, FanInFanOutField, LayerSelectionFields, TargetingFields, pattern_field

from .inits.configs import CordaConfig, EvaConfig, LoftQConfig, LoraGAConfig, as_subconfig
from .variants.configs import BdLoraConfig, KasaConfig, MontecloraConfig, VeloraConfig

_PISSA_RE = re.compile(r"^pissa(_niter_\d+)?$")
BIAS_MODES = ("none", "all", "lora_only")


@dataclass
class LoraRuntimeConfig:
    """Settings that affect how an adapter runs, never what it computes; not saved (Hugging Face PEFT's)."""

    ephemeral_gpu_offload: bool = field(
        default=False,
        metadata={
            "help": "Hugging Face PEFT moves offloaded (CPU) base weights to the GPU for DoRA's initial norms. "
            "Accepted for compatibility; a no-op here: norms are computed where the weights are."
        },
    )


@dataclass
class LoraConfig(LayerSelectionFields, FanInFanOutField, ExcludeModulesField, TargetingFields):
    """Configuration of a LoRA adapter; the same fields and defaults as Hugging Face PEFT 0.21.2.

    Main fields: `r` (rank), `lora_alpha` (scaling = alpha / r, or alpha / sqrt(r) with
    `use_rslora`), `target_modules` (list: exact names or dotted suffixes; str: regex full match;
    `"all-linear"`), `lora_dropout`, `bias`, `use_dora`, `init_lora_weights`, `rank_pattern` /
    `alpha_pattern`, `layers_to_transform` / `layers_pattern`, `modules_to_save`, `lora_bias`.
    """

    peft_type: str = "LORA"
    r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: Union[int, float] = field(default=8, metadata={"help": "Scaling numerator: alpha / r."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA branch input, in [0, 1)."})
    bias: Literal["none", "all", "lora_only"] = field(
        default="none", metadata={"help": "Which base biases to train and save: 'none', 'all' or 'lora_only'."}
    )
    use_rslora: bool = field(default=False, metadata={"help": "Rank-stabilised scaling alpha / sqrt(r)."})
    init_lora_weights: Union[bool, str] = field(
        default=True,
        metadata={
            "help": "True (B=0), False (random), 'gaussian', 'pissa', 'pissa_niter_<k>', 'olora', 'orthogonal', 'mica'."
        },
    )
    rank_pattern: Optional[dict] = pattern_field("rank, overriding r")
    alpha_pattern: Optional[dict] = pattern_field("alpha, overriding lora_alpha")
    megatron_config: Optional[dict] = field(default=None, metadata={"help": "Not supported (Megatron layers)."})
    megatron_core: Optional[str] = field(default="megatron.core", metadata={"help": "Megatron module (unused)."})
    trainable_token_indices: Optional[Union[list[int], dict[str, list[int]]]] = field(
        default=None,
        metadata={
            "help": "Embedding rows (token ids) to train next to LoRA: a list (the input embedding) or "
            "{layer name: ids}; the file holds those rows only."
        },
    )
    loftq_config: Union[dict, None] = field(
        default_factory=dict, metadata={"help": "LoftQ settings (LoftQConfig as a dict) for init_lora_weights='loftq'."}
    )
    eva_config: Optional[EvaConfig] = field(default=None, metadata={"help": "EVA settings (init_lora_weights='eva')."})
    corda_config: Optional[CordaConfig] = field(
        default=None, metadata={"help": "CorDA settings (init_lora_weights='corda')."}
    )
    lora_ga_config: Optional[LoraGAConfig] = field(
        default=None, metadata={"help": "LoRA-GA settings (init_lora_weights='lora_ga')."}
    )
    use_dora: bool = field(default=False, metadata={"help": "Weight-decomposed LoRA (DoRA)."})
    velora_config: Optional[VeloraConfig] = field(
        default=None, metadata={"help": "VeLoRA: compressed activations for A's gradient (VeloraConfig)."}
    )
    alora_invocation_tokens: Optional[list[int]] = field(
        default=None,
        metadata={
            "help": "Activated LoRA: token ids of the invocation sequence; the adapter acts only from its last "
            "occurrence in the input onward (causal LMs)."
        },
    )
    use_qalora: bool = field(default=False, metadata={"help": "Not supported (QALoRA)."})
    qalora_group_size: int = field(default=16, metadata={"help": "QALoRA pooling group size (unused)."})
    monteclora_config: Optional[MontecloraConfig] = field(
        default=None, metadata={"help": "MonteCLoRA: Monte Carlo sampled A during training (MontecloraConfig)."}
    )
    layer_replication: Optional[list[tuple[int, int]]] = field(
        default=None,
        metadata={
            "help": "Build a deeper model from repeated layers sharing base weights: [[start, end), ...] ranges "
            "of the original layers, each copy with its own LoRA."
        },
    )
    lora_bias: bool = field(default=False, metadata={"help": "Give lora_B a (trainable) bias."})
    target_parameters: Optional[list[str]] = field(
        default=None,
        metadata={
            "help": "Parameters to adapt directly (names or dotted suffixes), e.g. the stacked MoE expert weights "
            "['experts.gate_up_proj', 'experts.down_proj']."
        },
    )
    use_bdlora: Optional[BdLoraConfig] = field(
        default=None, metadata={"help": "BD-LoRA: block-diagonal A or B per module name (BdLoraConfig)."}
    )
    arrow_config: Optional[dict] = field(default=None, metadata={"help": "Not supported (Arrow routing)."})
    kasa_config: Optional[KasaConfig] = field(
        default=None,
        metadata={"help": "KaSA: drop the r smallest singular components of each base weight, learn a diagonal (KasaConfig)."},
    )
    runtime_config: LoraRuntimeConfig = field(
        default_factory=LoraRuntimeConfig, metadata={"help": "Runtime settings, not saved (see LoraRuntimeConfig)."}
    )
    ensure_weight_tying: bool = field(
        default=False,
        metadata={
            "help": "Tied input/output embeddings: refuse trainable_token_indices that would untie them (tied "
            "layers always follow the input embedding's rows when their ids agree)."
        },
    )

    not_implemented: ClassVar[Mapping[str, Any]] = {
        "use_qalora": False,
        "megatron_config": None,
        "arrow_config": None,
    }

    # Variant sub-configs Hugging Face PEFT turns on whenever they are not None: `{}` means "this variant with
    # its default settings", never "unset". Why each is refused here (also in the README).
    refused_variants: ClassVar[Mapping[str, str]] = {
        "use_qalora": "QALoRA runs only on GPTQ-quantized layers in Hugging Face PEFT, and this package adapts no "
        "GPTQ layers",
        "arrow_config": "Arrow routing (create_arrow_model: per-token top-k routing over several task LoRAs) is not "
        "implemented; its task adapters are plain LoRA files that load here one by one",
        "megatron_config": "Megatron tensor-parallel LoRA layers are not implemented",
    }

    def _refuse_not_implemented(self) -> None:
        for option, reason in self.refused_variants.items():
            value = getattr(self, option, None)
            unset = value is None or value is False or (option == "megatron_config" and not value)
            if option in self.not_implemented and not unset:
                raise ConfigError(
                    f"{type(self).__name__}.{option}={value!r} asks for a LoRA variant peft-lora does not implement: "
                    f"{reason}. Refusing it rather than computing different outputs than Hugging Face PEFT; remove "
                    f"the option (an empty dict also turns the variant on)."
                )
        super()._refuse_not_implemented()

    def __post_init__(self) -> None:
        if isinstance(self.runtime_config, dict):
            self.runtime_config = LoraRuntimeConfig(**self.runtime_config)
        self._prepare_init_configs()
        super().__post_init__()
        self._validate()

    def _prepare_init_configs(self) -> None:
        """Sub-configs of the data-driven inits as Hugging Face PEFT keeps them (warnings included)."""
        name = type(self).__name__
        self.eva_config = as_subconfig(self.eva_config, EvaConfig, f"{name}.eva_config")
        self.corda_config = as_subconfig(self.corda_config, CordaConfig, f"{name}.corda_config")
        self.lora_ga_config = as_subconfig(self.lora_ga_config, LoraGAConfig, f"{name}.lora_ga_config")
        self.use_bdlora = as_subconfig(self.use_bdlora, BdLoraConfig, f"{name}.use_bdlora")
        self.velora_config = as_subconfig(self.velora_config, VeloraConfig, f"{name}.velora_config")
        self.kasa_config = as_subconfig(self.kasa_config, KasaConfig, f"{name}.kasa_config")
        self.monteclora_config = as_subconfig(self.monteclora_config, MontecloraConfig, f"{name}.monteclora_config")
        if self.loftq_config is None:
            self.loftq_config = {}
        if self.init_lora_weights == "loftq":
            if not self.loftq_config:
                raise ConfigError(f"{name}: init_lora_weights='loftq' needs loftq_config (e.g. LoftQConfig(loftq_bits=4)).")
            if isinstance(self.loftq_config, LoftQConfig):
                self.loftq_config = dataclasses.asdict(self.loftq_config)
            as_subconfig(dict(self.loftq_config), LoftQConfig, f"{name}.loftq_config")  # validates the fields
        elif self.loftq_config:
            warnings.warn("`loftq_config` specified but will be ignored when `init_lora_weights` is not 'loftq'.")
            self.loftq_config = {}
        elif self.init_lora_weights == "eva" and self.eva_config is None:
            warnings.warn("`init_lora_weights` is 'eva' but `eva_config` is not specified. Using default EVA config.")
            self.eva_config = EvaConfig()
        elif self.init_lora_weights != "eva" and self.eva_config is not None:
            warnings.warn("`eva_config` specified but will be ignored when `init_lora_weights` is not 'eva'.")
        elif self.init_lora_weights == "corda" and self.corda_config is None:
            warnings.warn("`init_lora_weights` is 'corda' but `corda_config` is not specified. Using default CorDA config.")
            self.corda_config = CordaConfig()
        elif self.init_lora_weights != "corda" and self.corda_config is not None:
            warnings.warn("`corda_config` specified but will be ignored when `init_lora_weights` is not 'corda'.")

    # -- validation -----------------------------------------------------------------------------
    def _validate(self) -> None:
        name = type(self).__name__
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r <= 0:
            raise ConfigError(f"{name}.r must be a positive integer (the LoRA rank), got {self.r!r}.")
        if isinstance(self.lora_alpha, bool) or not isinstance(self.lora_alpha, (int, float)):
            raise ConfigError(f"{name}.lora_alpha must be a number, got {self.lora_alpha!r}.")
        if (
            isinstance(self.lora_dropout, bool)
            or not isinstance(self.lora_dropout, (int, float))
            or not (0.0 <= self.lora_dropout < 1.0)
        ):
            raise ConfigError(f"{name}.lora_dropout must be a probability in [0, 1), got {self.lora_dropout!r}.")
        if self.bias not in BIAS_MODES:
            raise ConfigError(f"{name}.bias must be one of {BIAS_MODES}, got {self.bias!r}.")
        self._validate_init()
        self._validate_patterns()
        if isinstance(self.target_modules, str) and self.layers_to_transform is not None:
            raise ConfigError(
                f"{name}: `layers_to_transform` cannot be used when `target_modules` is a str (a regex matched "
                f"against full module names); put the layer numbers into the regex or pass a list of names."
            )
        if isinstance(self.target_modules, str) and self.layers_pattern is not None:
            raise ConfigError(
                f"{name}: `layers_pattern` cannot be used when `target_modules` is a str (a regex matched against "
                f"full module names); pass target_modules as a list of names instead."
            )
        if self.layers_pattern and self.layers_to_transform is None:
            raise ConfigError(
                f"{name}: when `layers_pattern` is specified, `layers_to_transform` must also be specified "
                f"(layers_pattern only says where the layer index is)."
            )
        if self.lora_bias:
            if self.init_lora_weights not in (True, False):
                raise ConfigError(
                    f"{name}: lora_bias=True is only supported with init_lora_weights=True or False, got "
                    f"init_lora_weights={self.init_lora_weights!r}."
                )
            if self.use_dora:
                raise ConfigError(f"{name}: lora_bias=True is not supported with DoRA; set use_dora=False.")
        if self.alora_invocation_tokens is not None:
            tokens = self.alora_invocation_tokens
            if not tokens or any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in tokens):
                raise ConfigError(
                    f"{name}.alora_invocation_tokens must be a non-empty list of token ids (the tokenized invocation "
                    f"string), got {tokens!r}."
                )
            if self.task_type != "CAUSAL_LM":
                warnings.warn("aLoRA is currently only supported for CAUSAL_LM task.")
        if self.use_dora and init_family(self.init_lora_weights) == "mica":
            raise ConfigError(f"{name}: init_lora_weights='mica' can't be combined with use_dora=True.")
        if (
            self.use_rslora
            and (self.rank_pattern or self.alpha_pattern)
            and init_family(self.init_lora_weights) in ("pissa", "olora")
        ):
            warnings.warn(
                "Using Rank-Stabilized LoRA with rank_pattern/alpha_pattern and post-training conversion of modified "
                "base weights (PiSSA/OLoRA) means the initial base weights can't be restored by conversion; if you "
                "intend to convert, don't use rslora or rank_pattern/alpha_pattern."
            )

    def _validate_init(self) -> None:
        value = self.init_lora_weights
        name = type(self).__name__
        if isinstance(value, bool):
            return
        if not isinstance(value, str):
            raise ConfigError(f"{name}.init_lora_weights must be a bool or a string, got {value!r}.")
        if init_family(value) is None:
            raise ConfigError(
                f"Unknown initialization {name}.init_lora_weights={value!r}; use True, False, 'gaussian', 'pissa', "
                f"'pissa_niter_<k>' (k >= 0 subspace iterations), 'olora', 'orthogonal', 'mica', 'loftq', 'eva', "
                f"'corda' or 'lora_ga'."
            )

    def _validate_patterns(self) -> None:
        name = type(self).__name__
        if self.rank_pattern is None:
            self.rank_pattern = {}
        if self.alpha_pattern is None:
            self.alpha_pattern = {}
        for key, value in self.rank_pattern.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name}.rank_pattern[{key!r}] must be a positive integer rank, got {value!r}.")
        for key, value in self.alpha_pattern.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name}.alpha_pattern[{key!r}] must be a number, got {value!r}.")
        for pattern in (*self.rank_pattern, *self.alpha_pattern):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"{name}: rank/alpha pattern {pattern!r} is not a valid regex ({exc}).") from exc


def init_family(value: object) -> str | None:
    """The init family of an `init_lora_weights` value ('default', 'random', 'gaussian', 'pissa', ...)."""
    if value is True:
        return "default"
    if value is False:
        return "random"
    if not isinstance(value, str):
        return None
    lowered = value.lower()
    if lowered in ("gaussian", "olora", "mica"):
        return lowered
    if value in ("loftq", "eva", "corda", "lora_ga"):
        return value
    if value == "orthogonal":
        return "orthogonal"
    if _PISSA_RE.match(value):
        return "pissa"
    return None
