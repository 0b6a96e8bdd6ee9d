"""Upload checks and image preparation: type by content, size and pixel limits, downscaling.

The type is decided by the bytes (magic numbers, then Pillow), never by the file name or the
Content-Type a client sends. The pixel count is read from the header before anything is decoded,
so a small file that would expand to gigabytes (a decompression bomb) is refused cheaply.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from .errors import ImageRejected

__all__ = ["CheckedImage", "check_image", "decode_rgb", "downscale_jpeg", "open_rgb", "sniff_format"]

# (prefix, offset, Pillow format). WEBP is RIFF....WEBP, so it is checked at offset 8.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WEBP"),
    (b"BM", 0, "BMP"),
)
ALLOWED_FORMATS = frozenset(fmt for _, _, fmt in _MAGIC)


@dataclass(frozen=True)
class CheckedImage:
    """An upload that passed every check: its bytes, the format found in them, and its size."""

    data: bytes
    format: str
    width: int
    height: int


def sniff_format(data: bytes) -> str | None:
    """The image format named by the leading bytes, or None."""
    for magic, offset, fmt in _MAGIC:
        if data[offset : offset + len(magic)] == magic and (fmt != "WEBP" or data[:4] == b"RIFF"):
            return fmt
    return None


def check_image(data: bytes, *, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Accept ``data`` as an image or raise ImageRejected (413 size, 415 type)."""
    if len(data) > max_bytes:
        raise ImageRejected(
            f"upload is {len(data)} bytes, the limit is {max_bytes}: compress or downscale the image first",
            status=413,
            code="upload_too_large",
            size=len(data),
            limit=max_bytes,
        )
    if not data:
        raise ImageRejected("the upload is empty: send the image bytes", status=422, code="empty_upload")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected(
            f"not a supported image: send one of {sorted(ALLOWED_FORMATS)}",
            status=415,
            code="unsupported_media_type",
        )
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if img.format != fmt:
                raise ImageRejected(
                    f"the bytes start like {fmt} but decode as {img.format}",
                    status=415,
                    code="unsupported_media_type",
                )
            if width * height > max_pixels:
                raise ImageRejected(
                    f"image is {width}x{height} = {width * height} pixels, the limit is "
                    f"{max_pixels}: downscale it",
                    status=413,
                    code="too_many_pixels",
                    width=width,
                    height=height,
                    limit=max_pixels,
                )
            img.verify()
    except Image.DecompressionBombError as exc:
        raise ImageRejected(
            f"image refused as a decompression bomb: {exc}", status=413, code="too_many_pixels"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow raises a zoo of types for truncated or corrupt files; all mean "not a valid image".
        raise ImageRejected(
            f"the {fmt} image is corrupt or truncated: {exc}", status=415, code="unsupported_media_type"
        ) from exc
    return CheckedImage(data=data, format=fmt, width=width, height=height)


def decode_rgb(image: CheckedImage, *, draft: tuple[int, int] | None = None) -> Image.Image:
    """Decode a checked image to RGB (the first frame of an animation); ``draft`` lets libjpeg decode
    a JPEG at 1/2, 1/4 or 1/8 scale when the result will be that small anyway.

    :func:`check_image` reads headers (and PNG checksums) but not every format's pixel data, so a
    truncated or corrupt file can pass it and fail here: that is the client's image, not the
    backend, and is refused as 415 like any other corrupt upload.
    """
    try:
        img = Image.open(io.BytesIO(image.data))
        if draft is not None and img.format == "JPEG":
            img.draft("RGB", draft)
        img.seek(0)
        rgb = img.convert("RGB")
        rgb.load()
        return rgb
    except Image.DecompressionBombError as exc:
        raise ImageRejected(
            f"image refused as a decompression bomb: {exc}", status=413, code="too_many_pixels"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise ImageRejected(
            f"the {image.format} image is corrupt or truncated ({exc}): send the complete file",
            status=415,
            code="unsupported_media_type",
        ) from exc


def open_rgb(image: CheckedImage) -> Image.Image:
    """Decode a checked image to RGB (the first frame of an animation); ImageRejected if corrupt."""
    return decode_rgb(image)


def downscale_jpeg(image: CheckedImage, *, max_side: int, quality: int = 85) -> bytes:
    """JPEG bytes of the image with its long side at most ``max_side`` pixels (never upscaled);
    ImageRejected when the image turns out corrupt or truncated while decoding."""
    rgb = decode_rgb(image, draft=(max_side, max_side))
    rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=quality)
    return out.getvalue()
