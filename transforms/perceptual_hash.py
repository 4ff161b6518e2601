"""The perceptual hash stored in every record (`image/phash`) and the Hamming distance between two.

Algorithm: pHash, the DCT hash of Zauner's "Implementation and Benchmarking of Perceptual Image Hash
Functions" (2010) as the `imagehash` library implements it (`imagehash.phash`, hash_size 8,
highfreq_factor 4; https://github.com/JohannesBuchner/imagehash):
  1. the image in grey: luma Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, Pillow's convert('L'));
  2. reduced to 32 x 32 pixels (whatever its aspect ratio);
  3. the 2-D DCT-II of those 32 x 32 values (scipy.fftpack.dct along axis 0, then axis 1, unnormalised);
  4. the 8 x 8 lowest-frequency coefficients, DC included, in row-major order;
  5. bit k = coefficient k > the median of the 64 coefficients.
The only difference from `imagehash.phash`: step 2 averages areas (OpenCV INTER_AREA, after exact
2x area halvings while both sides are >= 128 px, in colour, which is cheaper than converting every
pixel to grey first) where imagehash resamples with Pillow's Lanczos filter; on the 54 sample photos
as the converter stores them the two hashes are equal for most photos and at most 2 bits apart
(tests/test_perceptual_hash.py), and ours costs ~35-55 us a 256 x 256 image instead of ~550 us.

What is hashed: the pixels handed to the JPEG encoder (the resized, cropped image; the decoded input
for a stored-as-is JPEG), the same pixels the statistics sum, so hashing adds no decode. A reader that
decodes `image/encoded` and hashes it gets the same hash up to JPEG's rounding (a bit or two, rarely).

The stored value: the 64 bits as one int64, bit 0 of step 5 the most significant (imagehash's hex
string read as a number: `imagehash.hex_to_hash(f'{value & (2**64 - 1):016x}')` gives it back), in
two's complement (TFRecord's int64 feature is signed). Because the median splits 64 values, a hash
has 32 bits set (unless coefficients tie), and distances between hashes are even.

Crop hashes (`image_hashes`): one global DCT hash does not survive crops (cutting 5% from every side
flips ~12 of its bits), so five more hashes of the same kind are taken of sub-views of the same
reduced grey image: the centre and the four corners, each CROP_VIEW (90%) of both sides. A copy cut
5% a side is the centre view of its original, a copy cut ~8% from two adjacent sides nearly one of
its corners, so the copy's full-view hash is close to one of the original's crop hashes
(transforms/near_duplicates.py compares them). They share steps 1-2's downsample: the area halvings
in colour and the grey conversion are done once; the grey image is then area-reduced to 64 x 64
(CROP_GRID), and each view's 8 x 8 lowest DCT-II coefficients are taken over its 58 x 58 pixels
directly (a DCT of length 58 instead of resampling the view to 32: the same low frequencies), all five
in one matrix product; step 5 as for image/phash. They are not stored in records (`image/phash` is
unchanged) but in the shard's sidecar summary (transforms/summary.py).
"""

from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

HASH_SIDE = 8  # coefficients per side: 64 bits
REDUCED_SIDE = 32  # pixels per side of the grey image the DCT is taken of (imagehash: 8 x 4)
_HALVE_WHILE_SIDE = 4 * REDUCED_SIDE  # area-halve in colour while both sides are at least 128 px
_BITS = 64
_UNSIGNED = (1 << _BITS) - 1

# Rows 0..7 of the unnormalised DCT-II matrix of length 32: coefficient k of x is
# sum_n x[n] cos(pi k (2n + 1) / 64) (scipy's type-2 DCT without its factor 2, which no bit depends on).
_DCT_ROWS = np.cos(np.pi * np.arange(HASH_SIDE)[:, None] * (2 * np.arange(REDUCED_SIDE)[None, :] + 1)
                   / (2 * REDUCED_SIDE))
_GREY = {3: cv2.COLOR_RGB2GRAY, 4: cv2.COLOR_RGBA2GRAY}
CROP_VIEW = 0.9  # fraction of each side a crop hash's view keeps
# (top, left) of each crop view as a fraction of the free margin: centre, then the four corners.
CROP_ORIGINS = ((0.5, 0.5), (0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))
NUM_CROP_HASHES = len(CROP_ORIGINS)
CROP_GRID = 64  # pixels per side of the grey image the crop views are cut from
_CROP_SIDE = round(CROP_GRID * CROP_VIEW)  # 58 pixels
_CROP_OFFSETS = sorted({round((CROP_GRID - _CROP_SIDE) * f) for origin in CROP_ORIGINS for f in origin})
_CROP_BLOCKS = tuple((_CROP_OFFSETS.index(round((CROP_GRID - _CROP_SIDE) * top)),
                      _CROP_OFFSETS.index(round((CROP_GRID - _CROP_SIDE) * left)))
                     for top, left in CROP_ORIGINS)


def _view_dct_rows(offset: int) -> np.ndarray:
  """[8, CROP_GRID]: the 8 lowest rows of the DCT-II matrix of length _CROP_SIDE, placed at `offset`
  (a view's coefficients without resampling it to 32 pixels)."""
  rows = np.zeros((HASH_SIDE, CROP_GRID))
  rows[:, offset:offset + _CROP_SIDE] = np.cos(
      np.pi * np.arange(HASH_SIDE)[:, None] * (2 * np.arange(_CROP_SIDE)[None, :] + 1) / (2 * _CROP_SIDE))
  return rows


_CROP_DCT = np.concatenate([_view_dct_rows(offset) for offset in _CROP_OFFSETS])
# Index arrays that pick the five views' 8 x 8 blocks out of the product (`image_hashes`).
_CROP_ROWS = np.array([[[8 * y + k] for k in range(HASH_SIDE)] for y, _ in _CROP_BLOCKS])
_CROP_COLUMNS = np.array([[[8 * x + k for k in range(HASH_SIDE)]] for _, x in _CROP_BLOCKS])


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
    (image/phash, (centre, top-left, top-right, bottom-left, bottom-right crop hash)), signed int64s;
    the first is `perceptual_hash(pixels)`.
  Raises:
    ValueError: not a uint8 [H, W, 3 or 4] array.
  """
  grey = _grey(pixels)
  full = _DCT_ROWS @ _reduce(grey).astype(np.float64) @ _DCT_ROWS.T
  grid = cv2.resize(grey, (CROP_GRID, CROP_GRID), interpolation=cv2.INTER_AREA).astype(np.float64)
  # Rows 8i..8i+7 of `_CROP_DCT` take the DCT of the view starting at offset i; one product gives
  # every (row offset, column offset) combination, the five views are blocks of it.
  coefficients = np.empty((1 + NUM_CROP_HASHES, HASH_SIDE * HASH_SIDE))
  coefficients[0] = full.ravel()
  coefficients[1:] = (_CROP_DCT @ grid @ _CROP_DCT.T)[_CROP_ROWS, _CROP_COLUMNS].reshape(
      NUM_CROP_HASHES, -1)
  hashes = _bits_of(coefficients).tolist()
  return hashes[0], tuple(hashes[1:])


def _bits_of(coefficients: np.ndarray) -> np.ndarray:
  """Step 5 on each row of [k, 64] coefficients: k signed int64 hashes."""
  middle = np.sort(coefficients, axis=1)
  median = (middle[:, 31] + middle[:, 32]) / 2
  return np.packbits(coefficients > median[:, None], axis=1).view('>u8')[:, 0].astype(np.int64)


def _grey(pixels: np.ndarray) -> np.ndarray:
  """Steps 1-2 up to the last area reduction: area-halved in colour while both sides are >= 128 px,
  then grey (uint8 [h, w])."""
  if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in _GREY:
    raise ValueError(f'expected uint8 [H, W, 3 or 4] pixels, got {pixels.dtype} {pixels.shape}')
  while min(pixels.shape[:2]) >= _HALVE_WHILE_SIDE:
    pixels = cv2.resize(pixels, (pixels.shape[1] // 2, pixels.shape[0] // 2),
                        interpolation=cv2.INTER_AREA)
  return cv2.cvtColor(np.ascontiguousarray(pixels), _GREY[pixels.shape[2]])


def _reduce(grey: np.ndarray) -> np.ndarray:
  return cv2.resize(grey, (REDUCED_SIDE, REDUCED_SIDE), interpolation=cv2.INTER_AREA)


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

