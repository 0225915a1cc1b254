"""The bench's clocks and the routing-methods case's routing figures (timings are never asserted)."""

from __future__ import annotations

import time

import pytest
import torch

from mmoe.bench.settings import BenchSettings
from mmoe.bench.timing import interleaved


def _settings(clock: str, device: str = "cpu", repeats: int = 2) -> BenchSettings:
    return BenchSettings(device=torch.device(device), dtype=torch.float32, size="tiny", warmup=0, repeats=repeats, clock=clock)


def test_cpu_clock_leaves_out_time_the_process_does_not_run():
    sleep = {"sleep": lambda: time.sleep(0.1)}
    wall = interleaved(sleep, _settings("wall"))["sleep"]
    cpu = interleaved(sleep, _settings("cpu"))["sleep"]
    assert min(wall) >= 0.1
    assert max(cpu) < 0.02


def test_clock_is_checked():
    with pytest.raises(ValueError, match="clock must be"):
        _settings("gpu")
    with pytest.raises(ValueError, match="device cpu"):
        _settings("cpu", "cuda")


@pytest.mark.slow
def test_routing_methods_route_as_their_definitions_say():
    from mmoe.bench.routing_methods import run

    routing = run(_settings("cpu", repeats=1))["routing"]
    for bank in ("lora", "ffn"):
        for name in ("top2", "mor_top2", "gw_top2_eval"):
            assert routing[f"{bank}/{name}"] == {"experts_per_token": 2.0, "all_experts_share": 0.0}, (bank, name)
        for name in ("gw_top2", "gw_top2_confident"):
            # a broadcast token reaches all 8 experts, every other one its top 2
            r = routing[f"{bank}/{name}"]
            assert r["experts_per_token"] == pytest.approx(2 + 6 * r["all_experts_share"], abs=1e-6)
        assert 0 <= routing[f"{bank}/gw_top2_confident"]["all_experts_share"] < routing[f"{bank}/gw_top2"]["all_experts_share"]
        for name in ("dynmole", "dynmole_confident"):
            assert 2.0 <= routing[f"{bank}/{name}"]["experts_per_token"] <= 8.0  # keep_top_k=2 .. every expert
        assert routing[f"{bank}/adamoe_top2"]["experts_per_token"] < 2.0  # some picks are null experts
    assert routing["ffn/factorllm_top2"]["experts_per_token"] == 2.0
