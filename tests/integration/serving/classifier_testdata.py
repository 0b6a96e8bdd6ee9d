"""Test data of the classifier-service tests: images with distinct hashes, a fake API key."""

from __future__ import annotations

import io
import random

from PIL import Image

API_KEY = "sk-test-0123456789abcdef-never-log-me"


def make_image(seed: int, size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> bytes:
    """A distinct, valid image per seed (random pixels, so each has its own SHA-256)."""
    rnd = random.Random(seed)
    img = Image.new("RGB", size)
    img.putdata(
        [(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(size[0] * size[1])]
    )
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()
