"""mmoe: multilingual multimodal instruction tuning with mixture-of-experts joints."""

from mmoe.model import MMoEModel, MMoEProcessor, build_model, load_model, save_model

load = load_model
__version__ = "0.1.0"

__all__ = ["MMoEModel", "MMoEProcessor", "build_model", "load", "load_model", "save_model"]
