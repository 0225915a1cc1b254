"""Router statistics split by language when the batch carries language ids."""

from __future__ import annotations

import torch

from mmoe import build_model
from mmoe.config import load_config
from mmoe.languages import language_id

from tests.conftest import CONFIGS


def test_tokens_per_expert_by_language_adds_up():
    model = build_model(load_config(CONFIGS / "mole.yaml")).eval()
    ids = torch.randint(0, 200, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    languages = torch.tensor([[language_id("ar")] * 12, [language_id("tr")] * 12])
    stats = model(input_ids=ids, attention_mask=mask, language_ids=languages).router_stats
    layer = next(iter(stats.values()))
    assert set(k for k in layer if k.startswith("tokens_per_expert/")) == {"tokens_per_expert/ar", "tokens_per_expert/tr"}
    assert int(layer["tokens_per_expert/ar"].sum()) == 12 and int(layer["tokens_per_expert/tr"].sum()) == 9
    torch.testing.assert_close(layer["tokens_per_expert/ar"] + layer["tokens_per_expert/tr"], layer["tokens_per_expert"])
