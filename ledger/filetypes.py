"""What a file's bytes say it is: an upload is checked against the type it was declared as,
and a stored file against the type it was stored as before it is served.

An attachment is served with a type, and a browser acts on that type: an SVG holding a
script, uploaded as ``image/png``, or an HTML page uploaded as ``text/plain``, must never be
served as what it claims (issue 21, item 11). Each type an upload may have
(``ledger.attachments.ALLOWED_TYPES``) is recognised here by its first bytes:

================  ==================================================================
type              the bytes
================  ==================================================================
image/png         start with the PNG signature ``89 50 4E 47 0D 0A 1A 0A`` (PNG §5.2)
image/jpeg        start with ``FF D8 FF``: the SOI marker and the next marker's start
                  (ITU-T T.81, B.1.1.2)
image/webp        start with ``RIFF``, a four-byte size, ``WEBP`` and the first chunk's
                  FourCC ``VP8␠``, ``VP8L`` or ``VP8X`` (RFC 9649 §2.5, §2.7)
application/pdf   start with ``%PDF-`` (ISO 32000-1 §7.5.2)
image/heic        an ISO base media file: a ``ftyp`` box first (bytes 4–8) whose major
(image/heif)      brand is an HEIF one, ``heic``, ``heix``, ``mif1``… (ISO/IEC 23008-12
                  §10); taken as an upload only, to be converted to JPEG or refused
                  (``ledger.images``), never stored as such
text/plain        are UTF-8 without a NUL, and do not start like markup: the first
                  character after any byte-order marks and white space is not ``<``
================  ==================================================================

A signature is not a proof that the rest of the file is well formed: a PNG signature before
garbage is a PNG that does not decode. That is harmless: a browser told ``image/png`` (with
``nosniff``) decodes the bytes as an image or not at all, never as a page or a script. The
text rule is what a browser would otherwise sniff as HTML or XML (WHATWG MIME Sniffing §7.1
skips leading white space, then looks for ``<``); we refuse more than it would sniff (any
``<`` first, and Unicode white space before it), since a plain-text reply or note has no
reason to start so. What a file holds beyond that (a PDF's scripts, a polyglot) is kept in
check by how attachments are served: as downloads, with a Content-Security-Policy that runs
nothing (``api/routes/attachments.py``, docs/SECURITY.md).
"""

from __future__ import annotations

import re

PNG, JPEG, WEBP, PDF, TEXT = (
    "image/png",
    "image/jpeg",
    "image/webp",
    "application/pdf",
    "text/plain",
)
HEIC, HEIF = "image/heic", "image/heif"
#: What a file that fails its check is served as: bytes, to be saved, never shown.
OPAQUE = "application/octet-stream"
#: The image types: a file verified as one of them may be shown in a browser (``inline``).
IMAGE_TYPES = frozenset({PNG, JPEG, WEBP})
#: The file name extension a download gets, by the type it is served as.
EXTENSIONS = {PNG: "png", JPEG: "jpg", WEBP: "webp", PDF: "pdf", TEXT: "txt", OPAQUE: "bin"}

_SIGNATURE_NAMES = {PNG: "PNG", JPEG: "JPEG", WEBP: "WebP", PDF: "PDF", HEIC: "HEIF", HEIF: "HEIF"}
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
_WEBP_CHUNKS = (b"VP8 ", b"VP8L", b"VP8X")
_MARKUP = re.compile(r"[\s\ufeff]*<")  # white space (Unicode's) and BOMs, then a tag


def signature_type(data: bytes) -> str | None:
    """The type whose signature ``data`` starts with (an image type or ``application/pdf``),
    or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] in _WEBP_CHUNKS:
        return WEBP
    if data.startswith(b"%PDF-"):
        return PDF
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return HEIC
    return None


def looks_like_markup(data: bytes) -> bool:
    """Whether ``data``, read as UTF-8, starts with ``<`` after byte-order marks and white
    space: what a browser could take for HTML, SVG or XML."""
    return _MARKUP.match(data[:1024].decode("utf-8", "replace")) is not None


def mismatch(declared: str, data: bytes) -> str | None:
    """Why ``data`` is not a file of the ``declared`` type (a media type without parameters,
    one of the table above), in words for the uploader; None when it is one."""
    if declared == TEXT:
        return _text_problem(data)
    expected = _SIGNATURE_NAMES.get(declared)
    if expected is None:
        return f"{declared} is not a type whose content can be checked"
    found = signature_type(data)
    if found == declared or (found == HEIC and declared == HEIF):
        return None
    if found is not None:
        what = f"it is {found}"
    elif looks_like_markup(data):
        what = "it starts like markup: HTML, SVG or XML"
    else:
        what = "its first bytes are of no type we take"
    return f"it does not start with the {expected} signature ({what})"


def _text_problem(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"it is not UTF-8 text (byte {exc.start} is not UTF-8)"
    if "\x00" in text:
        return "it holds a NUL byte, which text does not"
    if _MARKUP.match(text):
        return "it starts like markup (HTML, SVG or XML), which a browser could run"
    return None
