"""``data_pipeline``: what one CPU core prepares per second (decode PNG bytes, resize and normalise,
tokenise the conversation, pad into a batch) against what the MoLE training step consumes at the
same shape. Stages run with one torch thread, so their rates are per core."""

from __future__ import annotations

import io

import torch
from PIL import Image

from mmoe.bench import models
from mmoe.bench.settings import BenchSettings
from mmoe.bench.timing import compare, rate


def _png(size: int, seed: int) -> bytes:
    """A noisy RGB image encoded as PNG, twice the model's input side (so resizing does work)."""
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (2 * size, 2 * size, 3), generator=generator, dtype=torch.uint8).numpy()
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def run(settings: BenchSettings) -> dict:
    from mmoe.data.dataset import open_image
    from mmoe.model.processor import MMoEProcessor
    from mmoe.tokenization.templates import Turn

    p = settings.pick(models.SIZES)
    model = models.build("mole", p, settings, models.mole_overrides(p)).train()
    processor = MMoEProcessor.from_model(model)
    count = p["samples"]
    blobs = [_png(p["image"], i) for i in range(count)]
    answer = "abcdefghij" * (p["text_chars"] // 10)
    conversations = [[Turn("user", f"<image>\nDescribe picture {i}."), Turn("assistant", answer)] for i in range(count)]
    decoded = [open_image({"bytes": b}, None) for b in blobs]
    encoded = [processor.encode(c) for c in conversations]
    batch = models.training_batch(model, p, settings)
    optimizer = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        optimizer.step()

    stages = {
        "decode": lambda: [open_image({"bytes": b}, None) for b in blobs],
        "resize": lambda: [processor.pixel_values([img]) for img in decoded],
        "tokenise": lambda: [processor.encode(c) for c in conversations],
        "collate": lambda: processor.pad(encoded, decoded),
    }
    threads = torch.get_num_threads()

    def one_core(fn):
        def call() -> None:
            torch.set_num_threads(1)
            try:
                fn()
            finally:
                torch.set_num_threads(threads)

        return call

    variants = {name: one_core(fn) for name, fn in stages.items()}
    variants["pipeline"] = one_core(lambda: [fn() for fn in stages.values()])
    variants["train_step"] = train_step
    result = compare(variants, {"pipeline/train_step": ("pipeline", "train_step")}, settings)
    rates = {name: rate(count, summary) for name, summary in result["variants"].items()}
    result["samples_per_s"] = rates
    # cores of data loading needed to keep the step fed: the step's rate over one core's pipeline rate
    result["cores_to_feed_step"] = rates["train_step"]["median"] / rates["pipeline"]["median"]
    return {"params": {**p, "train_step_threads": threads}, **result}
