"""The joint model and its parts."""

from mmoe.model.build import build_model
from mmoe.model.checkpoint import load_model, save_model
from mmoe.model.joint import MMoEModel
from mmoe.model.processor import MMoEProcessor

__all__ = ["MMoEModel", "MMoEProcessor", "build_model", "load_model", "save_model"]
