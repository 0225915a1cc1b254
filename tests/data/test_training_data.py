"""Training-time data: dataset over prepared records, truncation, collate, length-grouped batches, a forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmoe.data.collate import Collator, model_inputs
from mmoe.data.config import DataConfig
from mmoe.data.dataset import ConversationDataset
from mmoe.data.loader import build_dataloader
from mmoe.data.prep import prepare
from mmoe.data.sampler import LengthGroupedBatchSampler
from mmoe.data.truncation import encode_within
from mmoe.languages import language_id
from mmoe.model.processor import MMoEProcessor
from mmoe.model.splice import IGNORE_INDEX
from mmoe.tokenization import Turn, build_byte_tokenizer
from tests.data.conftest import prep_config, write_array


@pytest.fixture(scope="module")
def tiny_model():
    from mmoe import build_model
    from mmoe.config import load_config

    return build_model(load_config("configs/tiny.yaml"))


@pytest.fixture
def prepared(messy, tmp_path):
    root, rows, _, _ = messy
    out = tmp_path / "prepared"
    prepare(prep_config(write_array(rows, root / "data.json")), out, progress=False)
    return out


def test_dataset_collate_and_forward(prepared, tiny_model):
    processor = MMoEProcessor.from_model(tiny_model)
    ds = ConversationDataset.from_paths(str(prepared), processor, max_length=512)
    assert len(ds) == 5 and ds.has_image.tolist() == [True, True, True, False, True]
    samples = [ds[i] for i in range(len(ds))]
    assert [s["num_images"] for s in samples] == [1, 1, 2, 0, 1]
    assert samples[2]["pixel_values"].shape == (2, 3, 32, 32) and samples[3]["pixel_values"] is None
    batch = Collator(tiny_model.tokenizer.pad_token_id)(samples)
    assert batch["pixel_values"].shape[0] == 5
    assert batch["image_counts"].tolist() == [1, 1, 2, 0, 1]
    assert (batch["input_ids"] == tiny_model.image_token_id).sum() == 5 * tiny_model.tokens_per_image
    assert batch["language_ids"][0, 0] == language_id("en")
    assert batch["labels"][batch["attention_mask"] == 0].eq(IGNORE_INDEX).all()
    out = tiny_model(**model_inputs(batch))
    assert torch.isfinite(out.loss)


def test_dataloader_from_data_config(prepared, tiny_model):
    loader = build_dataloader(tiny_model, DataConfig(train=[str(prepared)], num_workers=0), batch_size=2)
    batches = list(loader)
    assert sum(len(b["image_counts"]) for b in batches) >= 5
    mixed = [b for b in batches if (b["image_counts"] > 0).any() and (b["image_counts"] == 0).any()]
    assert len(mixed) <= 1  # modality grouping: only the leftover batch may mix


def _processor(tpi: int = 8) -> MMoEProcessor:
    return MMoEProcessor(build_byte_tokenizer(), None, tokens_per_image=tpi, template="chatml")


def test_truncation_drops_trailing_turns_first():
    turns = [Turn("user", "<image>\nShort?"), Turn("assistant", "Yes."), Turn("user", "x" * 300), Turn("assistant", "y" * 300)]
    processor = _processor()
    full = processor.encode(turns)
    fitted = encode_within(processor, turns, 200)
    assert fitted.truncated and len(fitted.encoded.input_ids) <= 200
    assert fitted.encoded.input_ids == full.input_ids[: len(fitted.encoded.input_ids)]
    assert fitted.encoded.num_images == 1 and any(l != IGNORE_INDEX for l in fitted.encoded.labels)


@pytest.mark.parametrize("limit", range(40, 80))
def test_truncation_never_cuts_an_image(limit):
    processor = _processor(tpi=8)
    turns = [Turn("user", "Look: <image> and <image> then <image>"), Turn("assistant", "z" * 50)]
    fitted = encode_within(processor, turns, limit)
    ids = fitted.encoded.input_ids
    assert len(ids) <= limit
    assert ids.count(processor.image_token_id) == 8 * fitted.encoded.num_images
    runs, run = [], 0
    for t in ids + [-1]:
        if t == processor.image_token_id:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    assert all(r % 8 == 0 for r in runs)


def test_untouched_when_it_fits():
    processor = _processor()
    turns = [Turn("user", "<image>\nHi"), Turn("assistant", "Hello")]
    fitted = encode_within(processor, turns, 1000)
    assert not fitted.truncated and fitted.encoded == processor.encode(turns)


def test_length_grouped_sampler_ranks_and_modality():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 1000, size=203)
    has_image = rng.random(203) < 0.7
    per_rank = []
    for rank in range(2):
        sampler = LengthGroupedBatchSampler(lengths, 4, has_image=has_image, num_replicas=2, rank=rank, seed=3, mega_batch_mult=4)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert all(len(b) == 4 for b in batches)
        assert sum(len(set(has_image[b])) > 1 for b in batches) <= 2  # only the two groups' leftovers may mix
        per_rank.append(batches)
    assert len(per_rank[0]) == len(per_rank[1])
    seen = {i for batches in per_rank for b in batches for i in b}
    assert seen == set(range(203))
    spread = np.mean([np.ptp(lengths[b]) for b in per_rank[0]])
    assert spread < np.ptp(lengths) / 4  # batches hold similar lengths
    again = list(LengthGroupedBatchSampler(lengths, 4, has_image=has_image, num_replicas=2, rank=0, seed=3, mega_batch_mult=4))
    assert again == per_rank[0]
