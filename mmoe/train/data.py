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


class EvalBatches:
    """The ``data.eval`` datasets as ``(batch, counted)`` pairs in a fixed order; iterable again for each evaluation."""

    def __init__(self, dataset, collate, plan: list[tuple[list[int], bool]], num_workers: int) -> None:
        self.dataset, self.collate, self.plan, self.num_workers = dataset, collate, plan, num_workers

    def __iter__(self):
        from torch.utils.data import DataLoader

        loader = DataLoader(self.dataset, batch_sampler=[indices for indices, _ in self.plan],
                            collate_fn=self.collate, num_workers=self.num_workers)
        return zip(loader, (counted for _, counted in self.plan))


def build_eval_batches(cfg, model, rank: int, world_size: int) -> EvalBatches | None:
    """Validation batches of ``data.eval`` for this rank, or None when the recipe names no eval data."""
    from mmoe.data.collate import Collator
    from mmoe.data.loader import build_dataset
    from mmoe.train.validation import eval_plan

    if cfg.data is None or not cfg.data.eval:
        return None
    dataset = build_dataset(model, cfg.data, "eval")
    plan = eval_plan(len(dataset), cfg.train.micro_batch_size, rank, world_size)
    return EvalBatches(dataset, Collator(model.tokenizer.pad_token_id), plan, cfg.data.num_workers)
