"""Image helpers shared by every backend."""

from __future__ import annotations

from PIL import Image


def expand_to_square(image: Image.Image, fill: tuple[int, ...]) -> Image.Image:
    """Pad an image to a square canvas, centred, with ``fill`` (LLaVA's ``pad`` aspect-ratio mode)."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas
