"""Vision towers from three backends behind one interface, each with its own image preprocessing."""

from mmoe.model.vision.base import VisionTower
from mmoe.model.vision.build import build_vision_tower

__all__ = ["VisionTower", "build_vision_tower"]
