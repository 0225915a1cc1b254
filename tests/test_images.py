"""One decoder for every image: orientation, bit depth, palettes, transparency, CMYK, GIF, WebP; limits
checked from the header; one path policy (symlinks resolved, regular files inside the root)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from mmoe.images import BACKGROUND, ImageError, ImageLimits, decode, decode_file, resolve_in_root, to_rgb


def _bytes(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied():
    """A 40x20 picture, red on its left half, stored with orientation 6 (rotate 90 degrees clockwise to view)."""
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    image = decode(_bytes(stored, "JPEG", exif=exif, quality=95))
    assert image.size == (20, 40)
    top, bottom = np.asarray(image)[5, 10], np.asarray(image)[35, 10]
    assert top[0] > 200 and top[2] < 60  # the stored left half (red) is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_16_bit_grey_png_is_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 64 * 8, dtype=np.uint16).reshape(8, 64)
    image = decode(_bytes(Image.fromarray(ramp), "PNG"))
    values = np.asarray(image)[..., 0].astype(int)
    expected = np.rint(ramp / 257.0).astype(int)
    assert np.abs(values - expected).max() <= 1
    assert (values == 255).mean() < 0.02  # .convert("RGB") clips: about 99.6 % white


def test_palette_with_transparency_is_composited_on_the_background():
    image = Image.new("P", (16, 16), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 8, 16))
    decoded = decode(_bytes(image, "PNG", transparency=0))
    pixels = np.asarray(decoded)
    assert tuple(pixels[4, 2]) == (255, 0, 0) and tuple(pixels[4, 12]) == BACKGROUND


def test_rgba_half_transparent_blends_with_white():
    image = Image.new("RGBA", (16, 16), (0, 0, 0, 128))
    assert abs(int(np.asarray(decode(_bytes(image, "PNG")))[0, 0, 0]) - 127) <= 1


def test_cmyk_gif_webp_decode_to_rgb():
    cmyk = decode(_bytes(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95))
    assert cmyk.mode == "RGB" and np.asarray(cmyk)[8, 8, 0] > 200 and np.asarray(cmyk)[8, 8, 1] < 60
    frames = [Image.new("RGB", (16, 16), (0, 200, 0)), Image.new("RGB", (16, 16), (200, 0, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    gif = np.asarray(decode(buf.getvalue()))
    assert gif[0, 0, 1] > 150 and gif[0, 0, 0] < 50  # the first frame
    webp = np.asarray(decode(_bytes(Image.new("RGBA", (16, 16), (0, 0, 255, 0)), "WEBP", lossless=True)))
    assert tuple(webp[0, 0]) == BACKGROUND


def test_preprocessing_of_an_in_memory_image_uses_the_same_conversion():
    grey16 = Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16))
    assert np.asarray(to_rgb(grey16))[0, 0, 0] == 128


def test_pixel_limit_is_checked_from_the_header(tmp_path):
    big = _bytes(Image.new("L", (4000, 4000)), "PNG")
    with pytest.raises(ImageError) as info:
        decode(big, ImageLimits(max_pixels=1_000_000), "big.png")
    assert info.value.reason == "image_too_large" and "4000x4000" in str(info.value)


def test_symlinks_leaving_the_root_are_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    Image.new("RGB", (16, 16)).save(outside / "secret.png")
    Image.new("RGB", (16, 16)).save(root / "sub" / "ok.png")
    os.symlink(outside / "secret.png", root / "file_link.png")
    os.symlink(outside, root / "dir_link")
    os.symlink(root / "sub" / "ok.png", root / "inner_link.png")
    for escaping in ("file_link.png", "dir_link/secret.png", "../outside/secret.png", str(outside / "secret.png")):
        with pytest.raises(ImageError) as info:
            resolve_in_root(root, escaping)
        assert info.value.reason == "image_outside_root"
    assert resolve_in_root(root, "inner_link.png") == (root / "sub" / "ok.png").resolve()
    with pytest.raises(ImageError, match="is a directory"):
        resolve_in_root(root, "sub")
    if os.path.exists("/dev/zero"):
        os.symlink("/dev/zero", root / "sub" / "zero.png")
        with pytest.raises(ImageError, match="outside the image root"):
            decode_file("sub/zero.png", root)
        with pytest.raises(ImageError, match="not a regular file"):
            decode_file("/dev/zero", None)
