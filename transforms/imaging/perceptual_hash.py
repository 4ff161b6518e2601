"""`image/phash` (the perceptual hash in every record), the crop hashes, and Hamming distance.

pHash as `imagehash.phash` computes it (hash_size 8, highfreq_factor 4;
https://github.com/JohannesBuchner/imagehash; Zauner, "Implementation and Benchmarking of Perceptual
Image Hash Functions", 2010): luma (ITU-R BT.601, Pillow's convert('L')) reduced to 32 x 32, its 2-D
DCT-II (scipy.fftpack.dct, unnormalised), the 8 x 8 lowest coefficients in row-major order, bit k =
coefficient k > their median. Only the reduction differs: area averages (OpenCV INTER_AREA after
exact 2x halvings) where imagehash uses Lanczos; the two agree within 2 bits
(tests/test_perceptual_hash.py). Hashed are the pixels handed to the JPEG encoder. Stored as one
int64 in two's complement, bit 0 the most significant (imagehash's hex string read as a number).
Crop hashes (`image_hashes`): the same hash of five 29 x 29 views (centre, four corners) of that 32
x 32 image, kept in the shard's sidecar for crop matches (transforms/duplicates/near.py). The
image/phash `image_hashes` returns is bit for bit `hash_of_reduced`'s; changing either changes every
stored hash.
"""

from __future__ import annotations

import struct
from typing import Tuple

import cv2
import numpy as np

HASH_SIDE = 8  # coefficients per side: 64 bits
REDUCED_SIDE = 32  # pixels per side of the grey image the DCT is taken of (imagehash: 8 x 4)
_REDUCED_SHAPE = (REDUCED_SIDE, REDUCED_SIDE)
_HALVE_WHILE_SIDE = 4 * REDUCED_SIDE  # area-halve in colour while both sides are at least 128 px
_BITS = 64
_UNSIGNED = (1 << _BITS) - 1

# Rows 0..7 of the unnormalised DCT-II matrix of length 32: coefficient k of x is sum_n x[n] cos(pi
# k (2n + 1) / 64) (scipy's type-2 DCT without its factor 2, which no bit depends on).
_DCT_ROWS = np.cos(
  np.pi
  * np.arange(HASH_SIDE)[:, None]
  * (2 * np.arange(REDUCED_SIDE)[None, :] + 1)
  / (2 * REDUCED_SIDE)
)
_GREY = {3: cv2.COLOR_RGB2GRAY, 4: cv2.COLOR_RGBA2GRAY}
CROP_VIEW_PIXELS = 29  # pixels of the REDUCED_SIDE a crop hash's view keeps, each side
CROP_VIEW = CROP_VIEW_PIXELS / REDUCED_SIDE  # fraction of each side a crop hash's view keeps
# (top, left) of each crop view as a fraction of the free margin: centre, then the four corners.
CROP_ORIGINS = ((0.5, 0.5), (0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))
NUM_CROP_HASHES = len(CROP_ORIGINS)
_VIEWS = 1 + NUM_CROP_HASHES  # the whole image, then the crop views
_MEDIAN = np.zeros((HASH_SIDE * HASH_SIDE, 1))
_MEDIAN[[31, 32]] = 0.5  # sorted coefficients -> their median
_HASHES = struct.Struct(f'>{_VIEWS}q')  # step 5's bits of each view, big-endian, as signed int64s


def _view_dct_rows(start: float) -> np.ndarray:
  """[8, REDUCED_SIDE]: the 8 lowest rows of the DCT-II matrix of length CROP_VIEW_PIXELS over the
  view that starts `start` pixels in (a view's coefficients without resampling it to 32 pixels);
  pixel n's weight is the fraction of [n, n + 1) inside the view, its phase that of its centre."""
  n = np.arange(REDUCED_SIDE)
  inside = np.clip(np.minimum(n + 1, start + CROP_VIEW_PIXELS) - np.maximum(n, start), 0, 1)
  return inside * np.cos(
    np.pi * np.arange(HASH_SIDE)[:, None] * (n + 0.5 - start) / CROP_VIEW_PIXELS
  )


_VIEW_ROWS = {f: _view_dct_rows((REDUCED_SIDE - CROP_VIEW_PIXELS) * f) for f in (0.0, 0.5, 1.0)}
# View v's coefficients: rows 8v..8v+7 of `_LEFT` @ reduced @ `_RIGHT_T`[v] (the whole image: v =
# 0).
_LEFT = np.concatenate([_DCT_ROWS] + [_VIEW_ROWS[top] for top, _ in CROP_ORIGINS])
_RIGHT_T = np.stack([_DCT_ROWS.T] + [_VIEW_ROWS[left].T for _, left in CROP_ORIGINS])


def perceptual_hash(pixels: np.ndarray) -> int:
  """pHash (module docstring) of uint8 [H, W, 3] RGB or [H, W, 4] RGBX pixels (X ignored).

  Returns:
    The 64 bits as a signed int64 (the value of `image/phash`).
  Raises:
    ValueError: not a uint8 [H, W, 3 or 4] array.
  """
  return hash_of_reduced(_reduce(_grey(pixels)))


def image_hashes(pixels: np.ndarray) -> Tuple[int, Tuple[int, ...]]:
  """pHash of the whole image and the crop hashes (module docstring) of the same pixels.

  Returns:
    (image/phash, (centre, top-left, top-right, bottom-left, bottom-right crop hash)), signed
    int64s; the first is `perceptual_hash(pixels)`.
  Raises:
    ValueError: not a uint8 [H, W, 3 or 4] array.
  """
  reduced = _reduce(_grey(pixels)).astype(np.float64)
  coefficients = (
    np.dot(_LEFT, reduced).reshape(_VIEWS, HASH_SIDE, REDUCED_SIDE) @ _RIGHT_T
  ).reshape(_VIEWS, -1)
  # Step 5 on each row: the median of 64 values is the mean of the 32nd and 33rd smallest, here a
  # product with `_MEDIAN` (0.5 a + 0.5 b plus exact zeros: one rounding, equal to (a + b) / 2 in
  # binary floating point, halving being exact).
  above = coefficients > np.dot(np.sort(coefficients, axis=1), _MEDIAN)
  hashes = _HASHES.unpack(np.packbits(above).tobytes())
  return hashes[0], hashes[1:]


def _grey(pixels: np.ndarray) -> np.ndarray:
  """Steps 1-2 up to the last area reduction: area-halved in colour while both sides are >= 128 px,
  then grey (uint8 [h, w])."""
  if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in _GREY:
    raise ValueError(f'expected uint8 [H, W, 3 or 4] pixels, got {pixels.dtype} {pixels.shape}')
  height, width, channels = pixels.shape
  while height >= _HALVE_WHILE_SIDE and width >= _HALVE_WHILE_SIDE:
    height, width = height // 2, width // 2
    # cv2's arguments by position: its binding parses keywords at ~1 us a call.
    pixels = cv2.resize(pixels, (width, height), None, 0, 0, cv2.INTER_AREA)
  return cv2.cvtColor(np.ascontiguousarray(pixels), _GREY[channels])


def _reduce(grey: np.ndarray) -> np.ndarray:
  """Step 2's last area reduction to 32 x 32 (a same-size INTER_AREA resize is a copy: skipped)."""
  if grey.shape == _REDUCED_SHAPE:
    return grey
  return cv2.resize(grey, (REDUCED_SIDE, REDUCED_SIDE), None, 0, 0, cv2.INTER_AREA)


def hash_of_reduced(grey: np.ndarray) -> int:
  """Steps 3-5 of the module docstring on a 32 x 32 grey image (any real dtype); signed int64."""
  coefficients = (_DCT_ROWS @ np.asarray(grey, np.float64) @ _DCT_ROWS.T).ravel()
  middle = np.partition(coefficients, (31, 32))
  median = (middle[31] + middle[32]) / 2  # np.median of 64 values, ~7x faster
  return to_signed(int(np.packbits(coefficients > median).view('>u8')[0]))


def to_signed(value: int) -> int:
  """A 64-bit hash (0 <= value < 2**64) as the signed int64 TFRecord stores."""
  return value - (1 << _BITS) if value >> (_BITS - 1) else value


def to_unsigned(value: int) -> int:
  """A stored (signed int64) hash as its 64 bits, 0 <= result < 2**64."""
  return value & _UNSIGNED


def to_hex(value: int) -> str:
  """16 hex digits of a hash, imagehash's `str(ImageHash)` form."""
  return f'{to_unsigned(value):016x}'


def hamming_distance(first: int, second: int) -> int:
  """Bits in which two hashes (signed or unsigned) differ, 0-64."""
  return (to_unsigned(first) ^ to_unsigned(second)).bit_count()


def as_uint64(values) -> np.ndarray:
  """Stored hashes (signed int64 values) as a numpy uint64 array of their bits."""
  return np.asarray(values, dtype=np.int64).view(np.uint64)
