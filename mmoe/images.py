"""Every image mmoe reads goes through here: one path policy and one decoder, used by data preparation,
training, evaluation, ``mmoe generate`` and the vision towers' preprocessing.

Path policy: a record's path is joined to its image root, symlinks are resolved, and the real path must
lie inside the real root and be a regular file. Limits (bytes from ``stat``, pixels from the header) are
checked before any pixel is decoded, so a decompression bomb or a device file costs a few bytes.

Decoding: EXIF orientation is applied; 16-bit and 32-bit grey is scaled (not clipped) to 8 bits; palette,
CMYK, YCbCr and the like are converted; transparency (alpha channels, palette or colour-key transparency)
is composited on ``BACKGROUND`` (white, as Hugging Face image processors do). Animated images use their
first frame. ``conversions`` names what decoding changes in an image (``mmoe prep`` counts these).
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from mmoe.errors import MMoEError

BACKGROUND = (255, 255, 255)

# ImageError.reason values; they equal the data-prep report's reason codes (mmoe.data.reasons.Reason).
MISSING, OUTSIDE_ROOT, UNDECODABLE, TRUNCATED, TOO_SMALL, TOO_LARGE = (
    "missing_image", "image_outside_root", "undecodable_image", "truncated_image", "image_too_small", "image_too_large",
)

# What decoding changes beyond a plain mode conversion (``conversions``); prep reports count them.
EXIF_ROTATED, HIGH_BIT_DEPTH_SCALED, ALPHA_COMPOSITED = "exif_rotated", "high_bit_depth_scaled", "alpha_composited"


@dataclass(frozen=True)
class ImageInfo:
    """What ``verify`` found: the stored size (before any EXIF rotation) and the ``conversions``."""

    size: tuple[int, int]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageLimits:
    min_side: int = 8
    max_pixels: int = 89_478_485  # Pillow's own decompression-bomb threshold
    max_bytes: int = 64 << 20
    decode: bool = True  # decode the pixels too when checking (catches truncated files)


EVAL_LIMITS = ImageLimits(min_side=1)  # benchmark images are used as they are, however small


class ImageError(MMoEError):
    """An image that cannot be used; ``reason`` is one of the codes above; the message is the image's name
    followed by ``detail``, a phrase such as "cannot be decoded (...)"."""

    def __init__(self, reason: str, name: str, detail: str) -> None:
        super().__init__(f"{name} {detail}")
        self.reason, self.name, self.detail = reason, name, detail


def resolve_in_root(root: str | Path, relative: str | Path) -> Path:
    """The real path of ``root/relative`` (symlinks resolved); it must be a regular file inside the real root."""
    base = Path(os.path.realpath(root))
    full = Path(os.path.realpath(base / relative))
    if full != base and base not in full.parents:
        raise ImageError(OUTSIDE_ROOT, str(relative), f"resolves to {full}, outside the image root {base}")
    return _regular(full, str(relative))


def regular_file(path: str | Path) -> Path:
    """A path given directly by the user (``mmoe generate --image``): it must be a regular file."""
    return _regular(Path(os.path.realpath(path)), str(path))


def _regular(path: Path, name: str) -> Path:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ImageError(MISSING, name, "is not there (file not found)") from None
    except OSError as exc:
        raise ImageError(MISSING, name, f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ImageError(MISSING, name, f"is {kind} ({path})")
    return path


def read_file(path: Path, limits: ImageLimits, name: str) -> bytes:
    """The bytes of an already resolved file, refused before reading when larger than ``limits.max_bytes``."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise ImageError(TOO_LARGE, name, f"has {size} bytes (limit {limits.max_bytes})")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(MISSING, name, f"cannot be read ({exc.strerror or exc})") from None


def open_checked(data: bytes, limits: ImageLimits, name: str) -> Image.Image:
    """Parse the header of ``data`` and check byte size, pixel count and shortest side; no pixel is decoded."""
    if len(data) > limits.max_bytes:
        raise ImageError(TOO_LARGE, name, f"has {len(data)} bytes (limit {limits.max_bytes})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ImageError(TOO_LARGE, name, f"is a decompression bomb ({exc})") from None
        except UnidentifiedImageError:
            raise ImageError(UNDECODABLE, name, "is not a readable image (no known image format)") from None
        except Exception as exc:  # Pillow raises many types for data that is not an image
            raise ImageError(UNDECODABLE, name, f"is not a readable image ({type(exc).__name__}: {exc})") from None
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ImageError(TOO_LARGE, name, f"has {width}x{height} pixels (limit {limits.max_pixels})")
    if min(width, height) < limits.min_side:
        raise ImageError(TOO_SMALL, name, f"is {width}x{height} (minimum side {limits.min_side})")
    return image


def _load(image: Image.Image, name: str) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image.load()
        except Exception as exc:
            reason = TRUNCATED if "truncated" in str(exc).lower() or isinstance(exc, EOFError) else UNDECODABLE
            raise ImageError(reason, name, f"cannot be decoded ({type(exc).__name__}: {exc})") from None
    return image


def decode(data: bytes, limits: ImageLimits = ImageLimits(), name: str = "image") -> Image.Image:
    """Checked, decoded and normalised (``to_rgb``) image from encoded bytes."""
    image = _load(open_checked(data, limits, name), name)
    try:
        return to_rgb(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(UNDECODABLE, name, f"cannot be converted ({type(exc).__name__}: {exc})") from None


def decode_file(path: str | Path, root: str | Path | None, limits: ImageLimits = ImageLimits()) -> Image.Image:
    """``decode`` of a file: inside ``root`` by the path policy, or (``root=None``) a path the user gave."""
    resolved = regular_file(path) if root is None else resolve_in_root(root, path)
    return decode(read_file(resolved, limits, str(path)), limits, str(path))


def verify(data: bytes, limits: ImageLimits, name: str) -> ImageInfo:
    """Check ``data`` as ``decode`` would (fully decoded when ``limits.decode``); return its size and
    ``conversions``. JPEGs decode at 1/8 scale, which still reads every coefficient, so truncation is
    found cheaply."""
    image = open_checked(data, limits, name)
    size = image.size
    if limits.decode:
        if image.format == "JPEG":
            image.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
        _load(image, name)
    return ImageInfo(size, conversions(image))


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except (OSError, ValueError, TypeError, SyntaxError):
        return 1  # unreadable EXIF: decode reports it, if it matters


def _high_bit_depth(image: Image.Image) -> bool:
    return image.mode.startswith("I")


def conversions(image: Image.Image) -> tuple[str, ...]:
    """What ``to_rgb`` changes in ``image``: ``exif_rotated`` (an EXIF orientation other than upright),
    ``high_bit_depth_scaled`` (16/32-bit grey scaled to 8 bits), ``alpha_composited`` (transparency
    composited on ``BACKGROUND``)."""
    checks = ((EXIF_ROTATED, 2 <= _orientation(image) <= 8), (HIGH_BIT_DEPTH_SCALED, _high_bit_depth(image)),
              (ALPHA_COMPOSITED, _has_transparency(image)))
    return tuple(note for note, applies in checks if applies)


def _grey_to_8bit(image: Image.Image) -> Image.Image:
    """16-bit grey (``I;16*``, and ``I`` as 16-bit PNG/TIFF decode to) scaled by 255/65535; float grey
    (``F``) is taken as 0-255 and clipped."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode != "F":
        values = values * (255.0 / 65535.0)
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def _has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def to_rgb(image: Image.Image) -> Image.Image:
    """An upright 8-bit RGB image: EXIF orientation applied, high bit depths scaled, transparency
    composited on ``BACKGROUND``."""
    image = ImageOps.exif_transpose(image)
    if _high_bit_depth(image) or image.mode == "F":
        image = _grey_to_8bit(image)
    if _has_transparency(image):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, BACKGROUND + (255,)), rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")
