"""Training batches from the recipe's ``data`` section: prepared datasets, length-grouped, resumable."""

from __future__ import annotations

from mmoe.config.errors import ConfigError
from mmoe.train.loader import ResumableLoader


def build_train_loader(cfg, model, rank: int, world_size: int) -> ResumableLoader:
    from mmoe.data.collate import Collator
    from mmoe.data.loader import build_dataset
    from mmoe.data.sampler import LengthGroupedBatchSampler

    if cfg.data is None or not cfg.data.train:
        raise ConfigError("training needs data.train: a list of prepared dataset directories (made by `mmoe prep`)")
    dataset = build_dataset(model, cfg.data, "train")
    lengths = dataset.lengths if cfg.data.group_by_length else [0] * len(dataset)
    sampler = LengthGroupedBatchSampler(
        lengths, cfg.train.micro_batch_size, has_image=dataset.has_image if cfg.data.group_by_modality else None,
        num_replicas=world_size, rank=rank, seed=cfg.data.seed,
    )

    def plan(epoch: int) -> list[list[int]]:
        sampler.set_epoch(epoch)
        return list(sampler)

    return ResumableLoader(dataset, Collator(model.tokenizer.pad_token_id), plan, cfg.data.num_workers)
