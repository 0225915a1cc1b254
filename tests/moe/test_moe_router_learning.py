"""Routers that learn: top-1 weights the chosen expert by its gate probability (Switch), so the LM
loss reaches the router; a router separates two token domains whose helpful experts differ."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmoe.config.errors import ConfigError
from mmoe.model.parts import parameter_groups
from mmoe.moe.core.context import RoutingContext, RoutingRecords
from mmoe.moe.core.dispatch import GroupedDispatch
from mmoe.moe.core.experts import FFNExperts
from mmoe.moe.core.layer import MoEBlock, MoELayer
from mmoe.moe.core.losses import BalanceLoss
from mmoe.moe.core.routers import TopKRouter
from tests.moe.helpers import make_batch, recipe, tiny_model


def router_lm_gradient(*overrides: str) -> float:
    """|dLM/dW_router|_1 summed over the shipped MoLE recipe's routers, LoRA B away from zero
    (as after the first steps: at B = 0 no expert changes the output yet)."""
    torch.manual_seed(0)
    model = tiny_model("mole", *overrides).train()
    groups = parameter_groups(model)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if groups[name] == "experts":
                param.normal_(std=0.02)
    out = model(**make_batch(model))
    out.lm_loss.backward()
    return sum(float(p.grad.abs().sum()) for n, p in model.named_parameters() if groups[n] == "routers")


def test_top1_router_gets_an_lm_gradient_of_the_same_order_as_top2():
    top1 = router_lm_gradient()
    top2 = router_lm_gradient("model.moe.router.top_k=2", "model.moe.router.renormalize=true")
    assert top2 > 0
    assert 0.1 < top1 / top2 < 10, (top1, top2)


def test_renormalising_top1_is_a_config_error_with_the_reason():
    with pytest.raises(ConfigError, match="no gradient"):
        recipe("mole", "model.moe.router.renormalize=true")
    with pytest.raises(ValueError, match="no gradient"):
        TopKRouter(8, 4, top_k=1, renormalize=True)


def test_top1_weight_is_the_gate_probability():
    router = TopKRouter(8, 4, top_k=1, init_std=0.5)
    x = torch.randn(10, 8)
    out = router(x)
    probs = out.logits.softmax(-1)
    assert torch.allclose(out.plan.top_weight.squeeze(1), probs.max(-1).values)
    assert float(out.plan.top_weight.max()) < 1.0


DIM, TOKENS = 16, 256


def two_domains(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens from two domains (means +-2 along a fixed direction) and their domain labels."""
    domain = torch.arange(TOKENS) % 2
    direction = torch.ones(DIM) / DIM**0.5
    x = torch.randn(TOKENS, DIM, generator=generator) + torch.where(domain[:, None] == 0, 2.0, -2.0) * direction
    return x, domain


@pytest.mark.parametrize("helpful", [(0, 1), (1, 0)])
def test_router_learns_to_send_each_domain_to_its_helpful_expert(helpful):
    """Two frozen experts; the target of domain d is what expert ``helpful[d]`` computes. Only the
    router trains, with the balance loss on: after a few hundred steps each domain's tokens go to
    its own expert. Both assignments start from the same router, so a router moved by the balance
    loss alone (renormalised top-1: no LM gradient) cannot pass both."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    experts = FFNExperts(num_experts=2, hidden=DIM, intermediate=32, kind="mlp", init_std=0.3).requires_grad_(False)
    router = TopKRouter(DIM, 2, top_k=1)
    block = MoEBlock(core=MoELayer(router=router, experts=experts, dispatch=GroupedDispatch()), losses=[BalanceLoss(0.01)])
    optimizer = torch.optim.Adam(router.parameters(), lr=0.05)

    def teacher(x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.where(domain[:, None] == 0, experts.expert(helpful[0], x), experts.expert(helpful[1], x))

    for _ in range(300):
        x, domain = two_domains(generator)
        records = RoutingRecords()
        block.routing_context = RoutingContext(
            torch.ones(1, TOKENS, dtype=torch.bool), torch.zeros(1, TOKENS, dtype=torch.long), None, "forward", records
        )
        y = block(x[None])[0]
        loss = nn.functional.mse_loss(y, teacher(x, domain)) + sum(records.aux_losses().values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x, domain = two_domains(generator)
    chosen = router(x).plan.top_idx.squeeze(1)
    for d in (0, 1):
        share = float((chosen[domain == d] == helpful[d]).float().mean())
        assert share >= 0.9, (d, share)
