"""One call from a model and a ``DataConfig`` to a ``DataLoader`` of model-ready batches."""

from __future__ import annotations

from torch.utils.data import DataLoader

from mmoe.data.collate import Collator
from mmoe.data.config import DataConfig
from mmoe.data.dataset import ConversationDataset
from mmoe.data.sampler import LengthGroupedBatchSampler


def build_dataset(model, data: DataConfig, split: str = "train") -> ConversationDataset:
    """The prepared datasets of ``data.train`` (or ``data.eval``) encoded for ``model``."""
    from mmoe.model.processor import MMoEProcessor

    paths = data.train if split == "train" else data.eval
    if not paths:
        raise ValueError(f"data.{split} lists no prepared dataset; run `mmoe prep` and set data.{split}: [DIR]")
    max_length = data.max_length or model.config.model.tokenizer.max_length
    return ConversationDataset.from_paths(paths, MMoEProcessor.from_model(model), max_length, data.image_roots)


def build_dataloader(
    model, data: DataConfig, batch_size: int, *, split: str = "train", rank: int = 0, world_size: int = 1, epoch: int = 0
) -> DataLoader:
    """Length-grouped (and modality-grouped) batches for this rank; call ``loader.batch_sampler.set_epoch`` each epoch."""
    dataset = build_dataset(model, data, split)
    lengths = dataset.lengths if data.group_by_length else [0] * len(dataset)
    sampler = LengthGroupedBatchSampler(
        lengths, batch_size, has_image=dataset.has_image if data.group_by_modality else None,
        num_replicas=world_size, rank=rank, seed=data.seed,
    )
    sampler.set_epoch(epoch)
    return DataLoader(
        dataset, batch_sampler=sampler, collate_fn=Collator(model.tokenizer.pad_token_id),
        num_workers=data.num_workers, persistent_workers=data.num_workers > 0,
    )
