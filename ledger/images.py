"""Photos as we store them: decoded, turned upright, stripped of what they say about the
person who took them, and encoded again (issue 19, item 5; docs/SECURITY.md, "Attachments").

A phone's photo carries more than its pixels: EXIF (the camera, its serial number, the time
and, very often, the GPS position where it was taken), XMP, IPTC, comments, thumbnails of
the uncropped picture, and ICC profiles that can name a device or a person. A citizen who
photographs a broken street light from their window should not publish where they live.
So an uploaded image is decoded with Pillow and only its pixels are kept:

* the EXIF orientation is applied first (``ImageOps.exif_transpose``), so the photo stays
  upright once the tag that said how to turn it is gone;
* a colour profile is applied (converted to sRGB with ``ImageCms``) and dropped;
* the image is encoded again from the pixels alone, with nothing of ``Image.info`` but a
  palette's transparency: JPEG (quality 85) for JPEG and HEIC, PNG for PNG, WebP (quality
  85, or lossless for a lossless source) for WebP; only the first frame of an animation or
  of a multi-picture JPEG.

The stored file is the stripped one, so its SHA-256, the attachment's identity, is the hash
of what is stored and served (the uploader gets it back from the upload, and records cite
it), never of the original, which we never keep.

An image is refused before it is decoded when its header declares more than ``MAX_PIXELS``
pixels (413 ``ImageTooLarge``: a few kilobytes of PNG can declare gigabytes of pixels), and
when Pillow cannot read it (415 ``UnreadableImage``: a truncated or corrupt file, or HEIC,
which this Pillow cannot decode).

Each stored image also gets a thumbnail (``thumbnail``: JPEG, at most ``THUMBNAIL_SIZE``
pixels a side), derived data kept beside the file and never part of any record.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from ledger.errors import CivicError

JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"
HEIC_TYPES = frozenset({"image/heic", "image/heif"})
#: The most pixels an uploaded image may have (width × height): a 50-megapixel phone photo
#: (8160 × 6120) passes; decoding it takes about 150 MB. Pillow's own default
#: (``Image.MAX_IMAGE_PIXELS``, about 89 million) is what it warns at; we refuse earlier.
MAX_PIXELS = 50_000_000
JPEG_QUALITY = 85
THUMBNAIL_SIZE = 320
THUMBNAIL_QUALITY = 80

# A truncated image is an error, never silently padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageTooLarge(CivicError):
    """An image whose declared dimensions are over ``MAX_PIXELS`` (a decompression bomb)."""

    status_code = 413


class UnreadableImage(CivicError):
    """An image Pillow cannot decode (corrupt, truncated, or a format it does not read)."""

    status_code = 415


@dataclass(frozen=True)
class Stripped:
    data: bytes
    media_type: str
    thumbnail: bytes


def _open(data: bytes, declared: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(
            f"the image has too many pixels to decode ({exc}); "
            f"an image may have at most {MAX_PIXELS} pixels"
        ) from None
    except UnidentifiedImageError:
        if declared in HEIC_TYPES:
            raise UnreadableImage(
                f"{declared} photos cannot be read here; send the photo as JPEG "
                "(on an iPhone: Settings › Camera › Formats › Most Compatible)"
            ) from None
        raise UnreadableImage(f"the file is not an image that can be read as {declared}") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(
            f"the image is {width} × {height} pixels ({width * height} pixels); "
            f"an image may have at most {MAX_PIXELS} pixels"
        )
    return image


def _decode(data: bytes, declared: str) -> Image.Image:
    """The first frame's pixels, upright, in sRGB, with no metadata left in ``info``."""
    image = _open(data, declared)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.seek(0)
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(
            f"the image has too many pixels to decode ({exc}); "
            f"an image may have at most {MAX_PIXELS} pixels"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnreadableImage(f"the image cannot be decoded: {exc}") from None
    if upright is None:  # only None with in_place=True; for the type checker
        upright = image
    icc = image.info.get("icc_profile")
    if icc and upright.mode in ("RGB", "RGBA", "L", "CMYK"):
        upright = _to_srgb(upright, icc)
    transparency = upright.info.get("transparency") if upright.mode in ("P", "L", "RGB") else None
    upright.info = {} if transparency is None else {"transparency": transparency}
    return upright


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    """The pixels converted from the embedded profile to sRGB; unchanged when the profile does
    not open (it is dropped either way)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, source, target, outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image
    return converted if converted is not None else image


def _encode(image: Image.Image, media_type: str, *, lossless: bool = False) -> bytes:
    out = io.BytesIO()
    if media_type == PNG:
        if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        image.save(out, "PNG")
    elif media_type == WEBP:
        if image.mode not in ("RGB", "RGBA"):
            has_alpha = "A" in image.getbands() or "transparency" in image.info
            image = image.convert("RGBA" if has_alpha else "RGB")
        image.info = {}
        if lossless:
            image.save(out, "WEBP", lossless=True)
        else:
            image.save(out, "WEBP", quality=JPEG_QUALITY)
    else:
        image = _flatten(image)
        image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """RGB or L for JPEG: transparency laid on white."""
    if image.mode in ("RGB", "L"):
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if "A" in image.getbands():
        rgba = image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    converted = image.convert("RGB")
    converted.info = {}
    return converted


def _thumbnail(image: Image.Image) -> bytes:
    small = _flatten(image.copy())
    small.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
    small.info = {}
    out = io.BytesIO()
    small.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()


def strip(data: bytes, declared: str) -> Stripped:
    """``data``, an image of the ``declared`` type (its signature already checked), decoded,
    turned upright and encoded again without any metadata, with its thumbnail.
    ImageTooLarge (413) or UnreadableImage (415) otherwise."""
    try:
        return _strip(data, declared)
    except CivicError:
        raise
    except Exception as exc:  # any failure on untrusted bytes is a refusal
        raise UnreadableImage(f"the image cannot be decoded: {exc}") from None


def _strip(data: bytes, declared: str) -> Stripped:
    image = _decode(data, declared)
    lossless = False
    if declared == WEBP:
        media_type = WEBP
        lossless = data[12:16] == b"VP8L"
    elif declared == PNG:
        media_type = PNG
    else:
        media_type = JPEG
    return Stripped(_encode(image, media_type, lossless=lossless), media_type, _thumbnail(image))


def thumbnail_of(data: bytes, media_type: str) -> bytes:
    """The thumbnail of a stored image (one stored before images were stripped included:
    only its pixels are read)."""
    try:
        return _thumbnail(_decode(data, media_type))
    except CivicError:
        raise
    except Exception as exc:  # a stored file that no longer decodes
        raise UnreadableImage(f"the image cannot be decoded: {exc}") from None
