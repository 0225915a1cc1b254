"""Scenes of coloured shapes and their rendering with Pillow."""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from mmoe.data.synthetic.lexicon import COLOURS, COUNTS, POSITIONS, SHAPES

SIZE = 64
RGB = {
    "red": (220, 30, 30),
    "green": (30, 160, 40),
    "blue": (30, 60, 225),
    "yellow": (240, 200, 0),
    "black": (10, 10, 10),
    "purple": (140, 40, 180),
}
_CELLS = ((16, 16), (48, 16), (16, 48), (48, 48))
_PLACES = {"left": (16, 32), "right": (48, 32), "top": (32, 16), "bottom": (32, 48)}


@dataclass(frozen=True)
class Scene:
    """One image: ``count`` copies of a shape in one colour; ``position`` is set for a lone placed shape."""

    shape: str
    colour: str
    count: int
    position: str | None
    centres: tuple[tuple[int, int], ...]
    radius: int
    background: tuple[int, int, int]
    angle: float


def _background(rng: random.Random) -> tuple[int, int, int]:
    return tuple(rng.randint(232, 255) for _ in range(3))  # type: ignore[return-value]


def sample_scene(kind: str, rng: random.Random) -> Scene:
    """A scene that answers a ``kind`` question: one big shape (colour, shape), several (count), or one placed (position)."""
    shape, colour = rng.choice(SHAPES), rng.choice(COLOURS)
    angle = rng.uniform(-12, 12)
    if kind == "count":
        count = rng.choice(COUNTS)
        cells = rng.sample(_CELLS, count)
        centres = tuple((x + rng.randint(-2, 2), y + rng.randint(-2, 2)) for x, y in cells)
        return Scene(shape, colour, count, None, centres, rng.randint(9, 11), _background(rng), angle)
    if kind == "position":
        position = rng.choice(POSITIONS)
        x, y = _PLACES[position]
        centre = ((x + rng.randint(-3, 3), y + rng.randint(-3, 3)),)
        return Scene(shape, colour, 1, position, centre, rng.randint(11, 13), _background(rng), angle)
    centre = ((32 + rng.randint(-4, 4), 32 + rng.randint(-4, 4)),)
    return Scene(shape, colour, 1, None, centre, rng.randint(18, 22), _background(rng), angle)


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        points = [(r, r), (-r, r), (-r, -r), (r, -r)]
        scale = 0.85
    elif shape == "triangle":
        points = [(r * math.cos(a), r * math.sin(a)) for a in (math.radians(-90 + 120 * k) for k in range(3))]
        scale = 1.1
    else:  # star
        points = [
            ((r if k % 2 == 0 else 0.42 * r) * math.cos(math.radians(-90 + 36 * k)),
             (r if k % 2 == 0 else 0.42 * r) * math.sin(math.radians(-90 + 36 * k)))
            for k in range(10)
        ]
        scale = 1.15
    t = math.radians(angle)
    cos, sin = math.cos(t), math.sin(t)
    return [(cx + scale * (x * cos - y * sin), cy + scale * (x * sin + y * cos)) for x, y in points]


def render(scene: Scene) -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), scene.background)
    draw = ImageDraw.Draw(image)
    fill = RGB[scene.colour]
    for cx, cy in scene.centres:
        r = scene.radius
        if scene.shape == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        else:
            draw.polygon(_polygon(scene.shape, cx, cy, r, scene.angle), fill=fill)
    return image


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
