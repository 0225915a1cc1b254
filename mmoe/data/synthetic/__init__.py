"""A synthetic multilingual image-question task (coloured shapes) for the embedded default and tests."""

from mmoe.data.synthetic.generate import generate_benchmarks, generate_training_set

__all__ = ["generate_benchmarks", "generate_training_set"]
