"""The joint: splice positions, padding sides, label masking, modality ids, LLM families, generation."""

from __future__ import annotations

import pytest
import torch

from mmoe import MMoEProcessor, build_model
from mmoe.model.splice import IGNORE_INDEX, ImageTokenMismatch
from mmoe.tokenization import Turn

from tests.conftest import solid_image, tiny_with

RED, BLUE = solid_image((220, 30, 30)), solid_image((30, 30, 220), (20, 44))


@pytest.fixture(scope="module")
def model():
    from mmoe.config import load_config
    from tests.conftest import CONFIGS

    return build_model(load_config(CONFIGS / "tiny.yaml")).eval()


def _ids(model, text: str) -> list[int]:
    return model.tokenizer(text, add_special_tokens=False)["input_ids"]


def _reference_embeds(model, pieces, images):
    """Independent splice: concatenate text-piece embeddings and each image's projected tokens."""
    embed = model.llm.get_input_embeddings()
    out, k = [], 0
    for piece in pieces:
        if piece == "<img>":
            with torch.no_grad():
                out.append(model.encode_images(model.vision_tower.preprocess([images[k]]))[0])
            k += 1
        else:
            out.append(embed(torch.tensor(_ids(model, piece))))
    return torch.cat(out)


def _sample(model, pieces) -> list[int]:
    ids = []
    for piece in pieces:
        ids += [model.image_token_id] * model.tokens_per_image if piece == "<img>" else _ids(model, piece)
    return ids


CASES = {
    "image-in-middle": (["Look: ", "<img>", " what colour?"], [RED]),
    "two-images": (["A", "<img>", " and B", "<img>", " differ?"], [RED, BLUE]),
    "no-image": (["just text here"], []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_splice_matches_independent_reference(model, case):
    pieces, images = CASES[case]
    ids = torch.tensor([_sample(model, pieces)])
    pixels = model.vision_tower.preprocess(images) if images else None
    with torch.no_grad():
        ours = model(input_ids=ids, pixel_values=pixels).logits
        ref = model.llm(inputs_embeds=_reference_embeds(model, pieces, images)[None]).logits
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_side_does_not_change_real_positions(model, side):
    samples = [(["Look: ", "<img>", " what colour?"], [RED]), (["x", "<img>", " and", "<img>", " y, longer text"], [BLUE, RED]), (["text only"], [])]
    rows = [_sample(model, p) for p, _ in samples]
    width = max(map(len, rows))
    pad = model.tokenizer.pad_token_id
    ids = torch.full((len(rows), width), pad)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        sl = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[r, sl] = torch.tensor(row)
        mask[r, sl] = 1
    images = [img for _, imgs in samples for img in imgs]
    with torch.no_grad():
        batched = model(input_ids=ids, attention_mask=mask, pixel_values=model.vision_tower.preprocess(images)).logits
        for r, (pieces, imgs) in enumerate(samples):
            alone = model(input_ids=torch.tensor([rows[r]]), pixel_values=model.vision_tower.preprocess(imgs) if imgs else None).logits[0]
            sl = slice(width - len(rows[r]), width) if side == "left" else slice(0, len(rows[r]))
            torch.testing.assert_close(batched[r, sl], alone, rtol=1e-4, atol=1e-4)


def test_modality_ids_and_image_labels_masked(model):
    ids = torch.tensor([_sample(model, ["a", "<img>", "b"])])
    labels = ids.clone()
    spliced = model.embed_inputs(ids, pixel_values=model.vision_tower.preprocess([RED]), labels=labels)
    image_positions = ids[0] == model.image_token_id
    assert spliced.modality_ids[0].bool().tolist() == image_positions.tolist()
    assert (spliced.labels[0][image_positions] == IGNORE_INDEX).all()
    assert (spliced.labels[0][~image_positions] == ids[0][~image_positions]).all()


def test_loss_ignores_image_and_prompt_positions(model):
    processor = MMoEProcessor.from_model(model)
    enc = processor.encode([Turn("user", "<image>\nColour?"), Turn("assistant", "red")])
    ids, labels = torch.tensor([enc.input_ids]), torch.tensor([enc.labels])
    pixels = processor.pixel_values([RED])
    out = model(input_ids=ids, pixel_values=pixels, labels=labels)
    logits = out.logits[0, :-1]
    target = labels[0, 1:]
    keep = target != IGNORE_INDEX
    manual = torch.nn.functional.cross_entropy(logits[keep], target[keep])
    torch.testing.assert_close(out.loss, manual)
    assert out.aux_losses == {} and out.router_stats == {}
    supervised = model.tokenizer.decode(labels[0][labels[0] != IGNORE_INDEX])
    assert supervised == "red<|im_end|>\n"


def test_wrong_number_of_images_is_a_clear_error(model):
    ids = torch.tensor([_sample(model, ["a", "<img>", "b", "<img>"])])
    with pytest.raises(ImageTokenMismatch, match="placeholders for 2 image\\(s\\).*pixel_values hold 1 image"):
        model(input_ids=ids, pixel_values=model.vision_tower.preprocess([RED]))


def test_placeholders_without_pixels_is_a_clear_error(model):
    ids = torch.tensor([_sample(model, ["a", "<img>"])])
    with pytest.raises(ImageTokenMismatch, match="no pixel_values"):
        model(input_ids=ids)


def test_partial_image_run_is_a_clear_error(model):
    ids = torch.tensor([_ids(model, "a") + [model.image_token_id] * (model.tokens_per_image - 1)])
    with pytest.raises(ImageTokenMismatch, match="multiples of 16"):
        model(input_ids=ids, pixel_values=model.vision_tower.preprocess([RED]))


def test_text_only_training_batch_still_touches_projector(model):
    model.train()
    try:
        ids = torch.tensor([_ids(model, "hello there")])
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        assert all(p.grad is not None for p in model.projector.parameters())
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def _greedy_without_cache(model, batch, steps):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    new = []
    for _ in range(steps):
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=batch.get("pixel_values"), use_cache=False).logits
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        new.append(nxt)
        ids = torch.cat([ids, nxt], 1)
        mask = torch.cat([mask, torch.ones_like(nxt)], 1)
    return torch.cat(new, 1)


LLM_FAMILIES = {
    "llama": {"model_type": "llama", "vocab_size": 264, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2},
    "qwen2": {"model_type": "qwen2", "vocab_size": 264, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2},
    "qwen3": {"model_type": "qwen3", "vocab_size": 264, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16},
}


@pytest.mark.parametrize("family", list(LLM_FAMILIES))
def test_cached_greedy_generation_matches_uncached_loop(family):
    model = build_model(tiny_with(llm={"config": LLM_FAMILIES[family]})).eval()
    processor = MMoEProcessor.from_model(model)
    batch = processor.prompts(
        [[Turn("user", "<image>\nColour?")], [Turn("user", "Say something longer, please.")]],
        [[RED], []],
    )
    generated = model.generate(**batch, max_new_tokens=6, do_sample=False, min_new_tokens=6)
    torch.testing.assert_close(generated, _greedy_without_cache(model, batch, 6))


def test_sampling_is_seeded(model):
    processor = MMoEProcessor.from_model(model)
    batch = processor.prompts([[Turn("user", "<image>\nHi")]], [[BLUE]])
    torch.manual_seed(3)
    a = model.generate(**batch, max_new_tokens=8, do_sample=True, temperature=1.0, min_new_tokens=8)
    torch.manual_seed(3)
    b = model.generate(**batch, max_new_tokens=8, do_sample=True, temperature=1.0, min_new_tokens=8)
    assert torch.equal(a, b) and a.shape == (1, 8)
