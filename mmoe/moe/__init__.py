"""Expert layers: one composable MoE core (router x expert bank x dispatch, optionally in modality
groups), its injection into Hugging Face LLM MLP blocks, and the Parrot MoE projector."""
