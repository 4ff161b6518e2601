"""transforms/imaging/image.py `channel_sums` equals numpy's exact integer sums (issue 28).

OpenCV's reductions add uint8 samples in int32 blocks and the blocks in float64; these tests hold
them to numpy's int64 sums on random sizes and contents (hypothesis), on all-255 images (the
largest block totals) up to the largest image the converter accepts, on RGBX and strided inputs,
and check that the thread's IPP setting is left as it was.
"""

import threading

import cv2
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from transforms.imaging.image import DEFAULT_MAX_IMAGE_PIXELS, channel_sums


def numpy_sums(pixels: np.ndarray):
  """The reference: per-channel sums and sums of squares in int64 (exact for these sizes)."""
  wide = pixels[..., :3].reshape(-1, 3).astype(np.int64)
  return tuple(int(v) for v in wide.sum(axis=0)), tuple(int(v) for v in (wide * wide).sum(axis=0))


@settings(max_examples=150, deadline=None)
@given(
  height=st.integers(1, 700),
  width=st.integers(1, 700),
  channels=st.sampled_from([3, 4]),
  seed=st.integers(0, 2**32 - 1),
  low=st.integers(0, 255),
)
def test_equals_numpy_on_random_sizes_and_contents(height, width, channels, seed, low):
  pixels = np.random.default_rng(seed).integers(low, 256, (height, width, channels), np.uint8)
  assert channel_sums(pixels) == numpy_sums(pixels)


@pytest.mark.parametrize(
  'shape',
  [(1, 1, 3), (256, 256, 3), (375, 500, 4), (1, 200_000, 3), (200_000, 1, 3), (4000, 3000, 3)],
)
def test_all_255_images_sum_exactly(shape):
  pixels = np.full(shape, 255, np.uint8)
  count = shape[0] * shape[1]
  assert channel_sums(pixels) == ((255 * count,) * 3, (255 * 255 * count,) * 3)


def test_the_largest_allowed_image_all_255_sums_exactly():
  height = 9000
  width = DEFAULT_MAX_IMAGE_PIXELS // height  # 9942: 89,478,000 pixels, within the limit
  pixels = np.full((height, width, 3), 255, np.uint8)
  pixels[-1, -1] = (254, 0, 1)  # one unit off the maximum: a float rounding would hide it
  count = height * width
  sums, squares = channel_sums(pixels)
  assert sums == (255 * count - 1, 255 * (count - 1), 255 * (count - 1) + 1)
  assert squares == (65025 * count - 65025 + 254**2, 65025 * (count - 1), 65025 * (count - 1) + 1)
  assert max(squares) > 2**42  # far beyond float32's and int32's exact range


def test_strided_views_and_channel_order():
  rng = np.random.default_rng(7)
  image = rng.integers(0, 256, (300, 400, 4), np.uint8)
  crop = image[17:290, 33:371, :3]  # a crop of a decoded image, as the resize step reads it
  assert channel_sums(crop) == numpy_sums(crop)
  assert channel_sums(image) == numpy_sums(image)  # RGBX: X ignored
  red = np.zeros((5, 7, 3), np.uint8)
  red[..., 0] = 3
  assert channel_sums(red) == ((105, 0, 0), (315, 0, 0))


def test_the_threads_ipp_setting_is_restored():
  pixels = np.full((64, 64, 3), 9, np.uint8)
  results = []

  def run(flag):
    cv2.ipp.setUseIPP(flag)
    channel_sums(pixels)
    results.append((flag, cv2.ipp.useIPP()))

  for flag in (True, False):
    thread = threading.Thread(target=run, args=(flag,))
    thread.start()
    thread.join()
  assert results == [(True, True), (False, False)]
