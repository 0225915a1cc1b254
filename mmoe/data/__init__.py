"""Data: source readers, validation, language ID, prepared datasets (``mmoe prep``), training-time batches."""

# The root config schema embeds ``DataConfig``; loading ``mmoe.config`` first keeps that import cycle
# well ordered whichever module a program imports first.
import mmoe.config  # noqa: F401
