"""Training with DeepSpeed: stages, checkpoints with exact resume, logs."""
