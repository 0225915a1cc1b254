"""Interop with other ecosystems' checkpoints."""
