"""QR codes of GS1 Digital Link URIs: standalone SVG, PNG, and symbols for inline SVG on label
sheets. Pure functions of the text to encode; the routes live in ``labels``."""

from __future__ import annotations

import io
from dataclasses import dataclass

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.pil import PilImage
from qrcode.image.svg import SvgPathFillImage, SvgPathImage

__all__ = ["QUIET_ZONE", "QrSymbol", "png", "svg_document", "symbol"]

QUIET_ZONE = 4
"""Light modules around the code: ISO/IEC 18004 asks for four."""

# Level M (15% of codewords recoverable) keeps a Digital Link of a serialised unit at
# version 4-5 (33-37 modules): large modules on a small label, and a scuffed box still scans.
_ERROR_CORRECTION = ERROR_CORRECT_M

# qrcode's SVG factories draw one box of `box_size` pixels as box_size / 10 mm; at 10 the path
# coordinates are in modules, which is what an SVG symbol scaled by CSS wants.
_SVG_BOX = 10


@dataclass(frozen=True)
class QrSymbol:
    """A QR code as SVG path data, one unit per module, quiet zone included."""

    data: str
    modules: int
    """Side of the symbol in modules, quiet zone included (the SVG viewBox)."""
    path: str
    """SVG path data of the dark modules."""


def _code(data: str, box_size: int) -> qrcode.QRCode:  # type: ignore[type-arg]
    if not isinstance(data, str) or not data:
        raise ValueError("a QR code needs some text to encode")
    code = qrcode.QRCode(error_correction=_ERROR_CORRECTION, border=QUIET_ZONE,
                         box_size=box_size)
    code.add_data(data)
    code.make(fit=True)
    return code


def symbol(data: str) -> QrSymbol:
    """The QR code of ``data`` as path data for an inline ``<svg viewBox="0 0 n n">``."""
    code = _code(data, _SVG_BOX)
    image = code.make_image(image_factory=SvgPathImage)
    assert image.path is not None  # set when the factory processes the modules
    return QrSymbol(data, code.modules_count + 2 * QUIET_ZONE, str(image.path.get("d")))


def svg_document(data: str) -> bytes:
    """A standalone SVG document (UTF-8, white background), one module per millimetre."""
    image = _code(data, _SVG_BOX).make_image(image_factory=SvgPathFillImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def png(data: str, box_size: int = 10) -> bytes:
    """A PNG image with ``box_size`` pixels per module (black on white, 1 bit per pixel)."""
    image = _code(data, box_size).make_image(image_factory=PilImage)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
