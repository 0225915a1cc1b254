"""Expert layers: one composable MoE core, the paper methods built on it, and its integration.

Reading order:

- ``core/``: ``routers`` (which experts, with what weight: a ``RouterOutput`` with a
  ``RoutingPlan``), ``experts`` (what an expert is: LoRA deltas or FFNs), ``dispatch`` (how tokens
  reach experts: a per-expert loop reference and grouped/wide fast paths), ``layer`` (``MoELayer`` =
  router x experts x dispatch; ``MoEBlock``, which replaces an LLM MLP), ``losses``, ``stats``,
  ``context`` (the per-call routing contract), ``lora_linear`` (dense LoRA with ``merge()``).
- ``methods/``: ``parrot`` (the prompt-conditioned MoE projector and its prompt context), ``moma``
  (modality groups and the aux routers that make expert choice causal).
- ``integration/``: ``build`` (an ``MoEBlock`` from ``model.moe``) and ``inject`` (into the MLP
  blocks of a Hugging Face causal LM, without touching its classes).
- ``cost``: parameters and FLOPs per token, asked of routers and expert banks.
- ``config``: the ``model.moe`` and ``model.projector.moe`` recipe sections.

Which training group a parameter belongs to is declared by its module (``declared_groups()``),
never read from its name: see ``mmoe.model.parts``.
"""
