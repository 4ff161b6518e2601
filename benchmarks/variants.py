"""Variants of ``transforms.imaging.image.process_image`` for the levers of issue 11, built here, not
in the product.

A ``Variant`` names the levers it pulls; ``process_variant`` runs the product's own fast path for an
RGB/greyscale JPEG (``transforms.imaging.image`` functions: DCT scale, upright view,
resize-and-crop, encode) with those levers swapped in, and falls back to ``process_image`` itself
for every other input, so a variant's output is comparable with the product's image by image:

* ``probe``: how the header (size, colourspace, EXIF orientation) is read. ``'product'`` (the
  default) is ``transforms.imaging.image.jpeg_header`` (libjpeg's header, Exif segment read alone:
  lever 2, in the product since 33246bf); ``'pillow'`` is the probe before it, Pillow's
  ``Image.open`` + ``getexif()``; ``'simplejpeg'`` is this module's own version of lever 2, with
  EXIF orientation parsed only when an APP1 ``Exif`` segment exists, by
  ``Image.open(...).getexif()`` (``exif='open'``) or by ``Image.Exif().load`` of that segment alone
  (``exif='segment'``);
* ``sums='array'``: exact channel sums of the pre-encode pixels instead of decoding the stored JPEG;
* ``fastdct`` / ``fastupsample``: libjpeg-turbo's fast integer IDCT / plain chroma upsampling;
* ``scale='m8'``: the smallest of libjpeg-turbo's M/8 DCT scales that keeps the shorter side at or
  above the target, instead of the power-of-two scales only;
* ``rotate_late``: for an EXIF-rotated file, the (centred, hence symmetric) crop box resized in the
  file's own orientation and the small result turned upright, instead of copying the turned region
  of the decode (a strided copy) before resizing;
* ``reuse_buffer``: the decode written into one buffer per thread that grows as needed, instead of a
  new array (fresh pages from the kernel for every image above malloc's mmap threshold).

``BASELINE`` (no lever) re-implements the product's path and must give byte-identical records
(checked by ``benchmarks.levers`` and tests/test_benchmarks.py). These functions reach into
``transforms.imaging.image``'s private helpers on purpose (they measure what a change there would
give, against the commit being measured), so they follow those helpers: written against the product
at 257b2d1.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np
import simplejpeg
from PIL import Image

from transforms.imaging import image as image_lib

EXIF_HEADER = b'Exif\x00\x00'


@dataclass(frozen=True)
class Variant:
  """The levers pulled (see the module docstring); the defaults are the product's choices."""

  probe: str = 'product'  # 'product' | 'pillow' | 'simplejpeg'
  exif: str = 'open'  # with probe='simplejpeg': 'open' | 'segment'
  sums: str = 'stored'  # 'stored' | 'array'
  fastdct: bool = False
  fastupsample: bool = False
  scale: str = 'pow2'  # 'pow2' | 'm8'
  rotate_late: bool = False  # EXIF-rotated files: resize as stored, then turn the small result
  # decode into one reused buffer per thread (no fresh pages per image)
  reuse_buffer: bool = False


BASELINE = Variant()


def app1_exif(data: bytes) -> Optional[bytes]:
  """The payload of the first APP1 ``Exif`` segment before the image data (SOS), or None."""
  i, n = 2, len(data)
  while i + 4 <= n and data[i] == 0xFF:
    marker = data[i + 1]
    if marker == 0xFF:  # fill byte
      i += 1
      continue
    if marker in (0xDA, 0xD9):  # start of scan / end of image: no more headers
      return None
    length = int.from_bytes(data[i + 2 : i + 4], 'big')
    if marker == 0xE1 and data[i + 4 : i + 10] == EXIF_HEADER:
      return data[i + 4 : i + 2 + length]
    i += 2 + length
  return None


def _orientation_value(value) -> int:
  return value if value in range(1, 9) else 1


def exif_orientation(data: bytes, how: str) -> int:
  """EXIF orientation (1-8, 1 when absent or invalid), parsed only if an APP1 Exif segment exists."""
  segment = app1_exif(data)
  if segment is None:
    return 1
  if how == 'segment':
    exif = Image.Exif()
    exif.load(segment)
    return _orientation_value(exif.get(0x0112, 1))
  with Image.open(io.BytesIO(data)) as im:
    return _orientation_value(im.getexif().get(0x0112, 1))


def probe(data: bytes, spec, variant: Variant) -> Optional[tuple[int, int, int]]:
  """(width, height, orientation) of a JPEG the fast path takes, or None (the product decides)."""
  if not (spec.fast and spec.resample == 'bilinear' and spec.resize_shorter_side > 0):
    return None
  if variant.probe == 'product':
    header = image_lib.jpeg_header(data, spec.max_image_pixels)
    return None if header is None else (header.width, header.height, header.orientation)
  if variant.probe == 'pillow':
    image = image_lib.open_image(data, spec.max_image_pixels)
    if image.format != 'JPEG' or image.mode not in ('RGB', 'L'):
      return None
    return (*image.size, image_lib._orientation(image))
  try:
    height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
  except Exception:  # pylint: disable=broad-except  (not a JPEG libjpeg reads: Pillow's verdict)
    return None
  if colorspace not in ('YCbCr', 'Gray') or width * height > spec.max_image_pixels:
    return None
  return width, height, exif_orientation(data, variant.exif)


def decode(data: bytes, width: int, height: int, spec, variant: Variant) -> Optional[np.ndarray]:
  """The DCT-scaled RGB decode of the fast path; None where the product's Pillow path would decide."""
  target = spec.resize_shorter_side
  if variant.scale == 'pow2':
    scale = image_lib._dct_scale(width, height, spec)
    need = (-(-height // scale), -(-width // scale))
  else:
    # shorter side exactly the target, at the least
    factor = min(1.0, target / min(width, height))
    need = (math.ceil(height * factor - 1e-6), math.ceil(width * factor - 1e-6))
  options = {'fastdct': variant.fastdct, 'fastupsample': variant.fastupsample}
  try:
    if variant.reuse_buffer:
      out_h, out_w = simplejpeg.decode_jpeg_header(data, min_height=need[0], min_width=need[1])[:2]
      options['buffer'] = _buffer(out_h * out_w * 3)
    pixels = simplejpeg.decode_jpeg(
      data, colorspace='RGB', min_height=need[0], min_width=need[1], strict=True, **options
    )
  except Exception:  # pylint: disable=broad-except
    return None
  if variant.scale == 'pow2' and pixels.shape[:2] != need:
    return None
  return pixels


_THREAD = threading.local()


def _buffer(size: int) -> memoryview:
  """This thread's decode buffer, grown to at least ``size`` bytes; a view of exactly ``size``."""
  buf = getattr(_THREAD, 'buffer', None)
  if buf is None or len(buf) < size:
    buf = _THREAD.buffer = bytearray(size)
  return memoryview(buf)[:size]


def crop_variant(data: bytes, spec, variant: Variant):
  """(pre-JPEG pixels [h, w, C], upright source (width, height), orientation), or None (product path)."""
  head = probe(data, spec, variant)
  if head is None:
    return None
  width, height, orientation = head
  if spec.keeps_geometry(width, height):
    return None  # The product may keep the file's own bytes: its path decides.
  pixels = decode(data, width, height, spec, variant)
  if pixels is None:
    return None
  source_size = image_lib._upright_size((width, height), orientation)
  if variant.rotate_late and orientation != 1:
    stored = image_lib._resize_and_crop_array(
      pixels, spec, lambda: Image.fromarray(np.ascontiguousarray(pixels), 'RGB'), (width, height)
    )
    return (
      np.ascontiguousarray(image_lib._UPRIGHT_VIEW[orientation](stored)),
      source_size,
      orientation,
    )
  pixels = image_lib._UPRIGHT_VIEW[orientation](pixels)
  resized = image_lib._resize_and_crop_array(
    pixels, spec, lambda: Image.fromarray(np.ascontiguousarray(pixels), 'RGB'), source_size
  )
  return resized, source_size, orientation


def process_variant(data: bytes, spec, variant: Variant) -> image_lib.ProcessedImage:
  """``process_image`` with ``variant``'s levers on the fast path (the product's own everywhere else)."""
  crop = crop_variant(data, spec, variant)
  if crop is None:
    return image_lib.process_image(data, spec)
  resized, source_size, orientation = crop
  if variant.sums == 'stored':
    return image_lib._stored(resized, source_size, spec, 'JPEG', orientation)
  encoded = image_lib._encode(resized, spec.jpeg_quality)
  sums, squares = image_lib.channel_sums(resized)
  width, height = source_size
  (left, top, right, bottom), _ = image_lib.crop_box(width, height, spec)
  return image_lib.ProcessedImage(
    encoded,
    resized.shape[0],
    resized.shape[1],
    sums,
    squares,
    'JPEG',
    False,
    orientation,
    (left / width, top / height, right / width, bottom / height),
  )
