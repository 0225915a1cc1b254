"""Small reproducible studies of the MoE methods' claims (``experiments/``): each study trains its arms
per seed on synthetic data generated for it, scores them on held-out data and tabulates mean and spread."""

from mmoe.experiments.config import StudyConfig, load_study
from mmoe.experiments.runner import run_study

__all__ = ["StudyConfig", "load_study", "run_study"]
