"""A small in-memory colour task for trainer tests (the real data pipeline is tested in tests/data)."""

from __future__ import annotations

from PIL import Image

from mmoe.model.processor import MMoEProcessor
from mmoe.tokenization import Turn
from mmoe.train.loader import ResumableLoader, random_plan

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220), "yellow": (230, 220, 20)}


class ColourDataset:
    """Sample i: a solid image and 'what colour?' -> the colour name; every 5th sample has no image."""

    def __init__(self, processor: MMoEProcessor, n: int = 64) -> None:
        self.processor, self.n = processor, n

    def __len__(self) -> int:
        return self.n

    def has_image(self, i: int) -> bool:
        return i % 5 != 4

    def __getitem__(self, i: int) -> dict:
        name = list(COLOURS)[i % len(COLOURS)]
        if not self.has_image(i):
            turns, images = [Turn("user", "Say the word " + name), Turn("assistant", name)], []
        else:
            turns, images = [Turn("user", "<image>\nWhat colour?"), Turn("assistant", name)], [Image.new("RGB", (32, 32), COLOURS[name])]
        return {"encoded": self.processor.encode(turns), "images": images}


def collate(processor: MMoEProcessor):
    return lambda samples: processor.pad([s["encoded"] for s in samples], [img for s in samples for img in s["images"]])


def toy_factory(cfg, model, rank, world, n: int = 64):
    processor = MMoEProcessor.from_model(model)
    dataset = ColourDataset(processor, n)
    plan = random_plan(len(dataset), cfg.train.micro_batch_size, cfg.train.seed, rank, world)
    return ResumableLoader(dataset, collate(processor), plan)


def recording_factory(box: dict):
    """A ``toy_factory`` that keeps the model it feeds, and its parameters before training, in ``box``."""

    def factory(cfg, model, rank, world):
        box["model"] = model
        box["before"] = {n: p.detach().clone() for n, p in model.named_parameters()}
        return toy_factory(cfg, model, rank, world)

    return factory


class WrappedLoader:
    """A loader that delegates its resumable state to ``loader``; subclasses alter the batches."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def state_dict(self):
        return self.loader.state_dict()

    def batches_per_epoch(self) -> int:
        return self.loader.batches_per_epoch()

    def load_state_dict(self, state):
        self.loader.load_state_dict(state)
