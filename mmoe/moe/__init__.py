"""Expert layers: one composable MoE core (router x expert bank x dispatch, optionally in modality
groups), its injection into Hugging Face LLM MLP blocks, and the Parrot MoE projector.

Built from the recipe by ``mmoe.model.build_model`` (``model.moe`` for the LLM's MLP blocks,
``model.projector.moe`` for Parrot). Parameter names, for stages that freeze or train parts:

- routers: ``llm.model.layers.<i>.mlp.core[.groups.<text|image>].router[.main].gate.weight``
- MoMa aux routers: ``...router.aux_router.w{1,2}.weight`` (built frozen; see ``mmoe.moe.moma``)
- experts: ``...mlp.core[.groups.<g>].experts.*`` (LoRA: ``experts.deltas.<proj>.lora_{A,B}``;
  FFN: ``experts.{gate,up,down}_proj``); the adapted dense MLP stays at ``...mlp.base.*``
- attention LoRA: ``llm.model.layers.<i>.self_attn.<q|k|v|o>_proj.lora_{A,B}``
- Parrot: ``projector.router.gate.weight``, ``projector.experts.*`` (MLP projector: ``projector.layers.*``)
"""
