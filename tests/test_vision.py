"""Each vision backend: token counts, layer selection, CLS handling, its own preprocessing."""

from __future__ import annotations

import pytest
import torch

from mmoe.config import ConfigError
from mmoe.config.schema import VisionConfig
from mmoe.model.vision import build_vision_tower

from tests.conftest import solid_image

HF_CLIP = {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
           "num_hidden_layers": 3, "num_attention_heads": 2, "image_size": 32, "patch_size": 8}
HF_SIGLIP = {**HF_CLIP, "model_type": "siglip_vision_model"}
TIMM_VIT = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 3, "num_heads": 2}
OPEN_CLIP_VIT = {"image_size": 32, "patch_size": 8, "width": 32, "layers": 3, "head_width": 16}

BACKENDS = {
    "hf-clip": dict(backend="hf", config=HF_CLIP),
    "hf-siglip": dict(backend="hf", config=HF_SIGLIP),
    "timm": dict(backend="timm", name="vit_tiny_patch16_224", config=TIMM_VIT),
    "open_clip": dict(backend="open_clip", config=OPEN_CLIP_VIT),
}


def _tower(kind: str, **extra):
    torch.manual_seed(0)
    return build_vision_tower(VisionConfig(**BACKENDS[kind], **extra)).eval()


@pytest.mark.parametrize("kind", list(BACKENDS))
def test_patch_tokens_and_preprocessing(kind):
    tower = _tower(kind)
    pixels = tower.preprocess([solid_image((255, 0, 0), (50, 20)), solid_image((0, 0, 255), (20, 50))])
    assert pixels.shape == (2, 3, 32, 32)
    feats = tower(pixels)
    assert feats.shape == (2, 16, 32)
    assert tower.num_tokens == 16
    assert not feats.requires_grad


@pytest.mark.parametrize("kind", ["hf-clip", "timm", "open_clip"])
def test_cls_patch_prepends_cls(kind):
    tower = _tower(kind, select_feature="cls_patch")
    pixels = tower.preprocess([solid_image((10, 200, 30))])
    feats = tower(pixels)
    assert feats.shape == (1, 17, 32)
    assert torch.allclose(feats[:, 1:], _tower(kind)(pixels))


def test_cls_patch_without_cls_token_is_a_config_error():
    with pytest.raises(ConfigError, match="has no CLS token"):
        _tower("hf-siglip", select_feature="cls_patch")


def test_hf_layer_selection_matches_hidden_states():
    tower = _tower("hf-clip", select_layer=-2)
    pixels = tower.preprocess([solid_image((1, 2, 3))])
    reference = tower.model(pixel_values=pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
    assert torch.equal(tower(pixels), reference)


@pytest.mark.parametrize("kind", ["timm", "open_clip"])
def test_layer_selection_changes_with_layer(kind):
    pixels = _tower(kind).preprocess([solid_image((90, 20, 200))])
    last = _tower(kind, select_layer=-1)(pixels)
    second = _tower(kind, select_layer=-2)(pixels)
    first_block = _tower(kind, select_layer=1)(pixels)
    assert not torch.allclose(last, second)
    # HF-style indexing: hidden_states[-3] of a 3-block model is the output of block 1 (1-based).
    assert torch.allclose(first_block, _tower(kind, select_layer=-3)(pixels))


def test_timm_last_layer_equals_unnormalised_block_output():
    tower = _tower("timm", select_layer=-1)
    pixels = tower.preprocess([solid_image((4, 5, 6))])
    x = tower.model.patch_embed(pixels)
    x = tower.model._pos_embed(x)
    x = tower.model.blocks(tower.model.norm_pre(x))
    assert torch.allclose(tower(pixels), x[:, tower.model.num_prefix_tokens:], atol=1e-6)


def test_pad_mode_pads_with_mean_colour_and_resize_mode_does_not():
    padded = _tower("hf-clip", image_aspect_ratio="pad")
    resized = _tower("hf-clip", image_aspect_ratio="resize")
    wide = solid_image((255, 255, 255), (64, 16))
    top_row_padded = padded.preprocess([wide])[0, :, 0, :]
    top_row_resized = resized.preprocess([wide])[0, :, 0, :]
    # The padded top row is the mean colour, i.e. ~0 after normalisation; the resized one stays white.
    assert top_row_padded.abs().max() < 0.05
    assert top_row_resized.min() > 1.5


def test_trainable_tower_gets_gradients():
    tower = _tower("hf-clip", frozen=False).train()
    tower(tower.preprocess([solid_image((3, 3, 3))])).sum().backward()
    assert any(p.grad is not None for p in tower.parameters())


@pytest.mark.parametrize(
    "cfg,match",
    [
        (dict(backend="timm", name="vit_does_not_exist"), "unknown architecture 'vit_does_not_exist'"),
        (dict(backend="open_clip", name="ViT-Nope-1"), "unknown model 'ViT-Nope-1'"),
        (dict(backend="hf", config={"model_type": "bert"}), "unsupported model_type 'bert'"),
    ],
)
def test_unknown_backbone_names_are_clear_errors(cfg, match):
    with pytest.raises(ConfigError, match=match):
        build_vision_tower(VisionConfig(**cfg))
