"""Candidate per-image decode → shorter side → center crop paths, and the quality reference.

Every path maps JPEG bytes to the same thing: an RGB uint8 array of the center crop after the
shorter side is scaled to ``shorter_side`` (shape (crop, crop, 3)). The crop box is computed once,
in source pixels, as the exact centered box (fractional when the margins are odd), so all paths are
compared against one geometry. ``reference_crop`` is the float64 Lanczos-3 (antialiased) resample of
that box from the fully decoded image: the yardstick for PSNR.

DCT-domain scaling rule (``dct_scale``): the largest power of two s in {1, 2, 4, 8} with
``min(w, h) / s >= shorter_side``; after it only a < 2x linear step remains, done on the crop box.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import cv2
import numpy as np
import simplejpeg
from PIL import Image, ImageOps

EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Geometry:
  """Source size (w, h) in stored pixels, the centered crop box in source pixels, output size."""

  width: int
  height: int
  box: tuple[float, float, float, float]  # left, top, right, bottom (source pixels, fractional)
  out: int  # output crop side in pixels


def geometry(width: int, height: int, shorter_side: int, crop: int) -> Geometry:
  """Box of the ``crop`` x ``crop`` center crop after scaling the shorter side to ``shorter_side``."""
  side = crop * min(width, height) / shorter_side
  left, top = (width - side) / 2, (height - side) / 2
  return Geometry(width, height, (left, top, left + side, top + side), crop)


def dct_scale(width: int, height: int, shorter_side: int) -> int:
  """Largest s in (1, 2, 4, 8) with min(width, height) / s >= shorter_side (1 if none)."""
  s = 1
  while s < 8 and min(width, height) / (2 * s) >= shorter_side:
    s *= 2
  return s


def header(data: bytes) -> tuple[str, str, int, int, int]:
  """Pillow header probe: (format, mode, width, height, EXIF orientation; 1 if absent)."""
  with Image.open(io.BytesIO(data)) as im:
    return im.format, im.mode, im.width, im.height, im.getexif().get(EXIF_ORIENTATION_TAG, 1)


def _scaled_box(g: Geometry, width: int, height: int) -> tuple[float, float, float, float]:
  """The crop box in the coordinates of a (width, height) decode of the source (DCT-scaled sizes
  are ceil(w / s), so the factor is per axis), clamped to the decoded image."""
  sx, sy = g.width / width, g.height / height
  left, top, right, bottom = g.box
  return max(left / sx, 0.0), max(top / sy, 0.0), min(right / sx, width), min(bottom / sy, height)


def _linear_on_box(arr: np.ndarray, g: Geometry, interpolation=cv2.INTER_LINEAR) -> np.ndarray:
  """cv2.resize of the crop box rounded to whole pixels (offset error <= 0.5 px)."""
  left, top, right, bottom = (round(v) for v in _scaled_box(g, arr.shape[1], arr.shape[0]))
  return cv2.resize(arr[top:bottom, left:right], (g.out, g.out), interpolation=interpolation)


def _warp_on_box(arr: np.ndarray, g: Geometry) -> np.ndarray:
  """INTER_LINEAR resample of the exact fractional box (no rounding of the crop offset)."""
  left, top, right, bottom = _scaled_box(g, arr.shape[1], arr.shape[0])
  sx, sy = (right - left) / g.out, (bottom - top) / g.out
  m = np.array([[sx, 0, left + 0.5 * sx - 0.5], [0, sy, top + 0.5 * sy - 0.5]])
  return cv2.warpAffine(
    arr,
    m,
    (g.out, g.out),
    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
    borderMode=cv2.BORDER_REPLICATE,
  )


def pil_plain_bilinear(data: bytes, g: Geometry) -> np.ndarray:
  """Stock Pillow: full decode, resize the whole image (BILINEAR, antialiased), then crop."""
  im = Image.open(io.BytesIO(data)).convert('RGB')
  scale = (g.box[2] - g.box[0]) / g.out
  rw, rh = round(g.width / scale), round(g.height / scale)
  im = im.resize((rw, rh), Image.Resampling.BILINEAR)
  left, top = (rw - g.out) // 2, (rh - g.out) // 2
  return np.asarray(im.crop((left, top, left + g.out, top + g.out)))


def _pil_draft(data: bytes, g: Geometry, shorter_side: int) -> Image.Image:
  im = Image.open(io.BytesIO(data))
  s = dct_scale(g.width, g.height, shorter_side)
  im.draft('RGB', (math.ceil(g.width / s), math.ceil(g.height / s)))
  return im.convert('RGB')


def pil_draft_box(data: bytes, g: Geometry, shorter_side: int, resample) -> np.ndarray:
  """Pillow ``draft()`` (power-of-two DCT scaling) + ``resize(box=...)`` of the crop box only."""
  im = _pil_draft(data, g, shorter_side)
  return np.asarray(im.resize((g.out, g.out), resample, box=_scaled_box(g, im.width, im.height)))


def pil_draft_cv2_linear(data: bytes, g: Geometry, shorter_side: int) -> np.ndarray:
  """Pillow ``draft()`` decode, then cv2.resize INTER_LINEAR on the (rounded) crop box."""
  return _linear_on_box(np.asarray(_pil_draft(data, g, shorter_side)), g)


_REDUCED = {
  1: cv2.IMREAD_COLOR,
  2: cv2.IMREAD_REDUCED_COLOR_2,
  4: cv2.IMREAD_REDUCED_COLOR_4,
  8: cv2.IMREAD_REDUCED_COLOR_8,
}


def cv2_reduced(
  data: bytes, g: Geometry, shorter_side: int, interpolation=cv2.INTER_LINEAR, warp: bool = False
) -> np.ndarray:
  """cv2.imdecode IMREAD_REDUCED_COLOR_s (EXIF ignored: orientation comes from Pillow's header)."""
  s = dct_scale(g.width, g.height, shorter_side)
  arr = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED[s] | cv2.IMREAD_IGNORE_ORIENTATION)
  out = _warp_on_box(arr, g) if warp else _linear_on_box(arr, g, interpolation)
  return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def cv2_full_linear(data: bytes, g: Geometry, shorter_side: int) -> np.ndarray:
  """The AlexNet article: full decode, resize whole image INTER_LINEAR (no antialias), crop."""
  arr = cv2.imdecode(
    np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
  )
  scale = (g.box[2] - g.box[0]) / g.out
  rw, rh = round(g.width / scale), round(g.height / scale)
  arr = cv2.resize(arr, (rw, rh), interpolation=cv2.INTER_LINEAR)
  left, top = (rw - g.out) // 2, (rh - g.out) // 2
  return cv2.cvtColor(arr[top : top + g.out, left : left + g.out], cv2.COLOR_BGR2RGB)


def simplejpeg_linear(
  data: bytes, g: Geometry, shorter_side: int, power_of_two: bool = True, warp: bool = False
) -> np.ndarray:
  """simplejpeg decode with min_height/min_width (power-of-two, or libjpeg-turbo's M/8), cv2 linear."""
  if power_of_two:
    s = dct_scale(g.width, g.height, shorter_side)
    arr = simplejpeg.decode_jpeg(
      data, 'RGB', min_height=math.ceil(g.height / s), min_width=math.ceil(g.width / s)
    )
  else:
    need = shorter_side / min(g.width, g.height)
    arr = simplejpeg.decode_jpeg(
      data, 'RGB', min_height=math.ceil(g.height * need), min_width=math.ceil(g.width * need)
    )
  return _warp_on_box(arr, g) if warp else _linear_on_box(arr, g)


def _lanczos_matrix(
  in_size: int, start: float, length: float, out_size: int, a: int = 3
) -> np.ndarray:
  """(out_size, in_size) float64 weights: antialiased Lanczos-a over [start, start + length)."""
  scale = length / out_size
  support = a * max(scale, 1.0)
  weights = np.zeros((out_size, in_size))
  for i in range(out_size):
    center = start + (i + 0.5) * scale
    taps = np.arange(math.floor(center - support), math.ceil(center + support) + 1)
    x = (taps + 0.5 - center) / max(scale, 1.0)
    w = np.where(np.abs(x) < a, np.sinc(x) * np.sinc(x / a), 0.0)
    np.add.at(weights[i], np.clip(taps, 0, in_size - 1), w)
    weights[i] /= weights[i].sum()
  return weights


def reference_crop(data: bytes, g: Geometry) -> np.ndarray:
  """float64 (out, out, 3) Lanczos-3 resample of the exact crop box from the full Pillow decode,
  upright (EXIF orientation applied: ``g`` is in upright pixels)."""
  img = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert('RGB'), np.float64)
  left, top, right, bottom = g.box
  wy = _lanczos_matrix(g.height, top, bottom - top, g.out)
  wx = _lanczos_matrix(g.width, left, right - left, g.out)
  return np.clip(np.einsum('ih,hwc,jw->ijc', wy, img, wx, optimize=True), 0, 255)


def psnr(mse: float) -> float:
  """Peak signal-to-noise ratio in dB for 8-bit samples, from a mean squared error."""
  return float('inf') if mse == 0 else 10 * math.log10(255.0**2 / mse)
