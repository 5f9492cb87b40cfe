"""Regenerate the scene-text demo images in examples/images/ (for `vlcurate ocr`).

    python examples/make_images.py [--outdir examples/images]

Signs, a label and a photo-like notice: coloured backgrounds, gradients, seeded noise, a skew and
one picture upside down, so that the demo shows what scene-text OCR meets. Deterministic: fixed
seeds, Debian's Noto fonts, and images saved without metadata.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONTS = Path("/usr/share/fonts/truetype/noto")
SANS, SANS_BOLD, SERIF = FONTS / "NotoSans-Regular.ttf", FONTS / "NotoSans-Bold.ttf", FONTS / "NotoSerif-Regular.ttf"


def font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def gradient(size, top, bottom) -> Image.Image:
    width, height = size
    ramp = np.linspace(0, 1, height)[:, None, None]
    pixels = (1 - ramp) * np.array(top) + ramp * np.array(bottom)
    return Image.fromarray(np.repeat(pixels, width, axis=1).astype(np.uint8))


def noisy(image: Image.Image, seed: int, amount: float = 10) -> Image.Image:
    pixels = np.asarray(image).astype(np.float32)
    pixels += np.random.default_rng(seed).normal(0, amount, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def shop_sign() -> Image.Image:
    """A shop front sign: bold light letters on a dark red board with a border."""
    image = gradient((720, 300), (120, 20, 30), (70, 10, 20))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((12, 12, 708, 288), radius=18, outline=(230, 200, 120), width=6)
    draw.text((60, 60), "OPEN 7 DAYS", font=font(SANS_BOLD, 84), fill=(250, 240, 210))
    draw.text((64, 190), "Coffee · Bakery · Books", font=font(SANS, 40), fill=(230, 200, 120))
    return noisy(image, 1, 6)


def street_sign() -> Image.Image:
    """A green street sign on a sky background, turned 7 degrees."""
    sky = gradient((800, 420), (150, 190, 235), (215, 230, 245))
    board = Image.new("RGB", (560, 170), (20, 110, 60))
    draw = ImageDraw.Draw(board)
    draw.rectangle((6, 6, 553, 163), outline=(245, 245, 245), width=5)
    draw.text((36, 34), "Harbour Road", font=font(SANS_BOLD, 76), fill=(250, 250, 250))
    mask = Image.new("L", board.size, 255)
    board, mask = board.rotate(7, expand=True, resample=Image.BICUBIC), mask.rotate(7, expand=True)
    sky.paste(board, (110, 90), mask)
    return noisy(sky.filter(ImageFilter.GaussianBlur(0.8)), 2, 5)


def notice() -> Image.Image:
    """A printed notice photographed under uneven light: several lines, serif type."""
    image = gradient((760, 520), (236, 232, 220), (196, 190, 176))
    draw = ImageDraw.Draw(image)
    lines = ("NOTICE", "The reading room closes", "at 6 pm on Fridays.", "Please return books", "to the front desk.")
    for i, line in enumerate(lines):
        face = font(SANS_BOLD, 64) if i == 0 else font(SERIF, 44)
        draw.text((56, 40 + i * 92), line, font=face, fill=(35, 30, 28))
    return noisy(image.filter(ImageFilter.GaussianBlur(0.6)), 3, 7)


def upside_down_label() -> Image.Image:
    """A product label photographed upside down."""
    image = Image.new("RGB", (640, 240), (250, 214, 60))
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), "Keep away from heat", font=font(SANS_BOLD, 48), fill=(20, 20, 20))
    draw.text((40, 130), "Store below 25 C", font=font(SANS, 44), fill=(20, 20, 20))
    return image.rotate(180)


IMAGES = (
    ("shop-sign.jpg", shop_sign, "JPEG", {"quality": 88, "subsampling": 2}),
    ("street-sign.jpg", street_sign, "JPEG", {"quality": 88, "subsampling": 2}),
    ("notice.jpg", notice, "JPEG", {"quality": 88, "subsampling": 2}),
    ("label-upside-down.png", upside_down_label, "PNG", {"compress_level": 9}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=Path(__file__).resolve().parent / "images")
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, make, image_format, options in IMAGES:
        path = args.outdir / name
        make().save(path, format=image_format, **options)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        print(f"wrote {path} ({path.stat().st_size // 1024} KB, sha256 {digest})")


if __name__ == "__main__":
    main()
