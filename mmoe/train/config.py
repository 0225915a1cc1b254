"""The ``train`` section of a recipe: schedule, stage (what trains, at which learning rate), logging, checkpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mmoe.config.base import StrictModel
from mmoe.train.method_configs import RoMAConfig, RouterLensConfig

# Parameter groups a stage can train; see mmoe.train.stages for how parameters are classified.
GROUPS = ("vision", "projector", "moe_projector", "llm", "experts", "routers", "aux_routers")
Group = Literal["vision", "projector", "moe_projector", "llm", "experts", "routers", "aux_routers"]


class StageConfig(StrictModel):
    """What is trained and with which learning rate; everything else is frozen.

    ``lr`` maps a group to its learning rate; groups without an entry use ``train.lr``.
    ``experts_from`` (CEFT): a selection file written by ``train.router_lens``; only the experts it
    names train (the others' slices of each stacked expert weight get zero gradients).
    """

    name: str = "stage"
    trainable: list[Group] = Field(default_factory=lambda: ["projector"])
    lr: dict[Group, float] = Field(default_factory=dict)
    experts_from: str | None = None

    @model_validator(mode="after")
    def _lr_groups_trainable(self) -> "StageConfig":
        frozen = sorted(set(self.lr) - set(self.trainable))
        if frozen:
            raise ValueError(f"stage {self.name!r} sets lr for {frozen}, which are not in trainable {self.trainable}")
        if not self.trainable:
            raise ValueError(f"stage {self.name!r} trains nothing; list groups in 'trainable' ({', '.join(GROUPS)})")
        return self


Precision = Literal["auto", "fp32", "bf16", "fp16"]
Reporter = Literal["tensorboard", "wandb"]


class TrainConfig(StrictModel):
    """How long (``max_steps`` or ``epochs``: exactly one), how fast, what is logged where, what is saved.

    ``init_from``: a saved model's weights to start from (``DIR/model``); ``init_groups``: load only the
    parameters (and group buffers) of these groups, as this model declares them, e.g. ``[llm]`` to start a
    MoE recipe from a base model whose experts have other shapes (the other groups stay as initialised).
    ``deepspeed``: a preset shipped with mmoe (``zero2``, the default; ``zero3``) or a DeepSpeed JSON path.
    ``eval_every``: validation loss on ``data.eval`` every N optimizer steps (0 = only after the last step).
    ``precision``: ``auto`` is bf16 on GPUs that have it, fp16 with dynamic loss scaling on GPUs that do
    not (V100, T4), fp32 on CPU. ``report_to``: metric sinks besides ``metrics.jsonl`` (wandb runs offline
    unless ``WANDB_MODE=online``).
    """

    output_dir: str = "runs/train"
    init_from: str | None = None
    init_groups: list[Group] | None = None
    max_steps: int | None = Field(None, gt=0)
    epochs: float | None = Field(None, gt=0)
    eval_every: int = Field(0, ge=0)
    seed: int = 0
    resume: str | None = "auto"
    resume_changes: Literal["refuse", "allow"] = "refuse"  # allow: resume with changed model/optimiser fields
    resume_trust_pickle: bool = False  # unpickle a trusted legacy checkpoint without the allow-list (docs/security.md)
    deepspeed: str | None = None
    micro_batch_size: int = Field(8, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    lr: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    schedule: Literal["cosine", "constant"] = "cosine"
    max_grad_norm: float | None = 1.0
    precision: Precision = "auto"
    log_every: int = Field(1, gt=0)
    save_every: int = Field(0, ge=0)
    keep_last: int = Field(2, gt=0)
    nonfinite: Literal["stop", "skip"] = "stop"
    report_to: list[Reporter] = Field(default_factory=lambda: ["tensorboard"])
    wandb_project: str = "mmoe"
    progress: bool = True
    stage: StageConfig = StageConfig()
    roma: RoMAConfig | None = None
    router_lens: RouterLensConfig | None = None

    @model_validator(mode="after")
    def _init_groups_need_init_from(self) -> "TrainConfig":
        if self.init_groups is not None and (self.init_from is None or not self.init_groups):
            raise ValueError("train.init_groups selects parameter groups of train.init_from: set init_from and name at least one group")
        return self

    @model_validator(mode="after")
    def _one_schedule_length(self) -> "TrainConfig":
        if (self.max_steps is None) == (self.epochs is None):
            given = "both are set" if self.max_steps is not None else "neither is set"
            raise ValueError(f"set exactly one of train.max_steps or train.epochs ({given}; "
                             "to switch a recipe's max_steps to epochs, also pass train.max_steps=null)")
        return self
