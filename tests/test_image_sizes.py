"""Every decodable image of any size is stored with the size its resize policy promises, centred.

A property test over image sizes (1..5000 on each side, the edges 1, 2, 3 and the odd/even
neighbours of each policy's target weighted up), modes (RGB, greyscale, RGBA) and formats (JPEG,
PNG), under every resize policy and filter. The expected size is computed here from the policy's own
definition, not by calling the product's geometry. Content: the input is black with a white block
(>= 60% of each side) at its exact centre; the stored image must be white at its centre and its
white region must be centred (within the few output pixels that rounding, JPEG and resampling blur).

CI runs SIZE_EXAMPLES (default 60) sizes, each under every policy; a longer run:
`SIZE_EXAMPLES=2000 ./run_tests.sh tests/test_image_sizes.py`.
"""

import io
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from PIL import Image

from transforms.imaging.image import ImageSpec, MAX_ASPECT_RATIO, process_image

EXAMPLES = int(os.environ.get('SIZE_EXAMPLES', '60'))
POLICIES = {
  'crop 256 (default, bilinear, fast path)': ImageSpec(),
  'crop 224 of 256': ImageSpec(256, 224),
  'keep aspect (--center_crop 0)': ImageSpec(center_crop=0),
  'bicubic': ImageSpec(resample='bicubic'),
  'lanczos': ImageSpec(resample='lanczos'),
  'reference path (fast=False)': ImageSpec(fast=False),
  'crop only (--resize_shorter_side 0)': ImageSpec(0, 200),
  'pass-through (0, 0)': ImageSpec(0, 0),
  'longer side 512 (--resize_longer_side)': ImageSpec(0, 0, resize_longer_side=512),
  'no upscale, crop 224 of 256 (--no_upscale)': ImageSpec(256, 224, upscale=False),
  'no upscale, keep aspect': ImageSpec(256, 0, upscale=False),
}
# Sides around which rounding and DCT scaling change behaviour: every target, its multiples by the
# DCT scales, and the aspect-ratio cap.
_TARGETS = sorted(
  {t * k for t in (200, 224, 256, 512) for k in (1, 2, 4, 8)} | {256 * MAX_ASPECT_RATIO}
)
SIDES = st.one_of(
  st.sampled_from([1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17]),
  st.sampled_from(_TARGETS).flatmap(lambda t: st.sampled_from([t - 1, t, t + 1])),
  st.integers(1, 5000),
)
MODES = st.sampled_from(
  [('RGB', 'JPEG'), ('L', 'JPEG'), ('RGB', 'PNG'), ('L', 'PNG'), ('RGBA', 'PNG')]
)


def expected_size(width: int, height: int, spec: ImageSpec) -> tuple:
  """The stored (width, height) by each policy's definition (docs/usage.md, docs/decoding.md)."""
  side, crop, longer = spec.resize_shorter_side, spec.center_crop, spec.resize_longer_side
  short = min(width, height)
  if longer:  # Scaled down (never up) until the longer side is `longer`; aspect kept, no crop.
    scale = min(1.0, longer / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))
  if side and not spec.upscale and short < side:  # Small images keep their size...
    if crop:
      return (min(crop, short),) * 2  # ...and give the largest centred square that fits.
    return tuple(min(v, short * MAX_ASPECT_RATIO) for v in (width, height))
  if side and crop:
    return crop, crop  # Shorter side to `side` >= crop, so both sides hold the square.
  if side:  # Aspect ratio kept; the longer side first capped at MAX_ASPECT_RATIO x the shorter.
    scale = side / short
    capped = [min(v, short * MAX_ASPECT_RATIO) for v in (width, height)]
    return tuple(side if v == short else max(1, round(v * scale)) for v in capped)
  if crop:
    return min(crop, width), min(crop, height)
  return width, height


def _block(length: int) -> tuple:
  """[start, stop) of a centred run of at least 60% of `length` with the parity of `length`, so that it
  sits exactly at the centre (never empty). 60%: each pixel of a side scaled down to one or two
  pixels (a 3x615 image's width under --resize_longer_side 512) is still mostly white."""
  size = math.ceil(length * 0.6)
  size += (length - size) % 2
  start = (length - size) // 2
  return start, start + size


def marked_image(width: int, height: int, mode: str, fmt: str) -> bytes:
  """Black image with an exactly centred white block, encoded as `fmt` in `mode`."""
  pixels = np.zeros((height, width, 4), np.uint8)
  pixels[..., 3] = 255
  (x0, x1), (y0, y1) = _block(width), _block(height)
  pixels[y0:y1, x0:x1, :3] = 255
  image = Image.fromarray(pixels, 'RGBA').convert(mode)
  buffer = io.BytesIO()
  image.save(buffer, fmt, **({'quality': 95} if fmt == 'JPEG' else {}))
  return buffer.getvalue()


def _white_extent(luma: np.ndarray, axis: int) -> tuple:
  """(first, last + 1) index along the stored image's x (axis 1) or y (axis 0) that is white."""
  white = np.flatnonzero((luma > 128).any(axis=1 - axis))
  return int(white[0]), int(white[-1]) + 1


def check_policy(data: bytes, width: int, height: int, spec: ImageSpec) -> None:
  stored = process_image(data, spec)
  want = expected_size(width, height, spec)
  assert (stored.width, stored.height) == want
  decoded = Image.open(io.BytesIO(stored.encoded))
  assert decoded.format == 'JPEG' and decoded.size == want
  luma = np.asarray(decoded.convert('L')).astype(np.int32)
  out_w, out_h = want
  # The central pixel(s): one where the size is odd, two where even. A whole-pixel crop at scale 1
  # (8 rows of 9) cannot be centred to the pixel, so one of two central pixels may be the border.
  centre = luma[(out_h - 1) // 2 : out_h // 2 + 1, (out_w - 1) // 2 : out_w // 2 + 1]
  assert centre.max() > 128, (
    f'the centre of the stored image is not the centre of the input: {centre}'
  )
  # The white block's margins are equal: the fast path's whole-pixel crop box may sit up to half a
  # source pixel off when downscaling (< 0.5 output px; it is never used to upscale), and JPEG and
  # resampling blur the block's edges by about a pixel.
  for axis, out_len in enumerate((out_h, out_w)):
    start, stop = _white_extent(luma, axis)
    assert abs(start - (out_len - stop)) <= 3, ('y', 'x')[
      axis
    ] + f': white {start}..{stop} of {out_len}'


@pytest.mark.slow  # ~30 s of generated sizes; the thin-image cases below stay in the quick check.
@settings(
  max_examples=EXAMPLES,
  deadline=None,
  derandomize=True,
  database=None,
  suppress_health_check=list(HealthCheck),
)
@given(width=SIDES, height=SIDES, mode=MODES)
@example(width=1, height=320, mode=('RGB', 'PNG'))
@example(width=320, height=1, mode=('RGB', 'JPEG'))
@example(width=2, height=3001, mode=('L', 'JPEG'))
@example(width=1, height=1, mode=('RGBA', 'PNG'))
@example(width=5000, height=5000, mode=('RGB', 'JPEG'))
def test_every_size_is_stored_with_the_promised_size_and_centre(width, height, mode):
  data = marked_image(width, height, *mode)
  for name, spec in POLICIES.items():
    try:
      check_policy(data, width, height, spec)
    except AssertionError as e:
      raise AssertionError(f'{width}x{height} {mode} under {name}: {e}') from None


@pytest.mark.parametrize('size', [(1, 320), (320, 1), (2, 320), (320, 2), (2, 5000), (3, 2)])
def test_thin_images_under_every_policy(size):
  """The sizes that once stopped a whole conversion (an empty crop box in OpenCV's resize)."""
  for fmt_mode in (('RGB', 'JPEG'), ('RGB', 'PNG')):
    data = marked_image(*size, *fmt_mode)
    for spec in POLICIES.values():
      check_policy(data, *size, spec)
