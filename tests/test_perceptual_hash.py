"""transforms/imaging/perceptual_hash.py against the imagehash library it follows, on the sample photos."""

import imagehash
import numpy as np
import pytest
from PIL import Image

from tests.conftest import sample_files
from transforms.imaging import image as image_lib
from transforms.imaging import perceptual_hash as ph


def _stored_pixels():
  for _, path in sample_files():
    try:
      yield (
        path.name,
        image_lib.decode_stored_jpeg(
          image_lib.process_image(path.read_bytes(), image_lib.ImageSpec()).encoded
        ),
      )
    except image_lib.ImageRejected:
      continue


def test_phash_is_imagehash_phash_within_two_bits_on_the_sample_photos():
  distances = []
  for name, pixels in _stored_pixels():
    reference = int(str(imagehash.phash(Image.fromarray(pixels))), 16)
    distances.append(ph.hamming_distance(ph.perceptual_hash(pixels), reference))
    assert distances[-1] <= 2, name
  assert len(distances) >= 50
  assert np.mean(np.array(distances) == 0) > 0.7  # most photos: the very same hash


def test_hash_of_reduced_is_imagehash_on_a_32_pixel_grey_image():
  grey = np.random.default_rng(1).integers(0, 256, (32, 32)).astype(np.uint8)
  reference = int(str(imagehash.phash(Image.fromarray(grey, 'L'))), 16)
  assert ph.to_unsigned(ph.hash_of_reduced(grey)) == reference


def test_stored_value_is_a_signed_int64_whose_bits_are_the_hash():
  for value in (0, 1, 2**63 - 1, 2**63, 2**64 - 1):
    signed = ph.to_signed(value)
    assert -(2**63) <= signed < 2**63
    assert ph.to_unsigned(signed) == value
    assert ph.as_uint64([signed])[0] == value
  assert ph.to_hex(-1) == 'f' * 16
  assert ph.hamming_distance(-1, 0) == 64


def test_rgbx_and_rgb_give_the_same_hash_and_bad_arrays_raise():
  rgb = np.random.default_rng(2).integers(0, 256, (300, 200, 3)).astype(np.uint8)
  rgbx = np.concatenate([rgb, np.full((300, 200, 1), 7, np.uint8)], axis=2)
  assert ph.perceptual_hash(rgb) == ph.perceptual_hash(rgbx)
  with pytest.raises(ValueError, match='uint8'):
    ph.perceptual_hash(rgb.astype(np.float32))
  with pytest.raises(ValueError, match='uint8'):
    ph.perceptual_hash(rgb[:, :, 0])


def test_process_image_hashes_the_pixels_it_encodes():
  _, path = sample_files()[0]
  stored = image_lib.process_image(path.read_bytes(), image_lib.ImageSpec())
  decoded = image_lib.decode_stored_jpeg(stored.encoded)
  assert ph.hamming_distance(stored.phash, ph.perceptual_hash(decoded)) <= 4  # JPEG rounding only


def _random_images(seed: int, count: int):
  """uint8 RGB/RGBA images of random sizes (1 to 600 px a side, odd and even) and contents: noise,
  flat images (whose AC coefficients are rounding noise, where a change in summation order would
  show) and two-level images (coefficients that tie)."""
  rng = np.random.default_rng(seed)
  for i in range(count):
    height, width = (int(v) for v in rng.integers(1, 601, 2))
    if i % 4 == 0:
      height, width = (int(rng.choice([32, 64, 128, 224, 256, 341])) for _ in range(2))
    shape = (height, width, 4 if i % 5 == 0 else 3)
    kind = i % 3
    if kind == 0:
      yield rng.integers(0, 256, shape, dtype=np.uint8)
    elif kind == 1:
      yield np.full(shape, rng.integers(0, 256), np.uint8)
    else:
      yield (
        np.where(rng.random(shape[:2])[..., None] < 0.5, 0, 255)
        .astype(np.uint8)
        .repeat(shape[2], axis=2)
      )


def test_image_hashes_first_value_is_the_previous_release_phash_bit_for_bit():
  from benchmarks.duplicates import previous_release_phash  # pylint: disable=import-outside-toplevel

  images = list(_random_images(seed=25, count=400))
  images += [pixels for _, pixels in _stored_pixels()]
  for pixels in images:
    full, crops = ph.image_hashes(pixels)
    assert full == previous_release_phash(pixels) == ph.perceptual_hash(pixels), pixels.shape
    assert len(crops) == ph.NUM_CROP_HASHES and all(-(2**63) <= c < 2**63 for c in crops)


def test_crop_hashes_are_full_hashes_of_the_views():
  # A view of exactly CROP_VIEW_PIXELS of the 32 x 32 grey image, hashed as a whole image would be
  # (DCT of its own length): the corner view's crop hash equals the DCT hash taken of those pixels.
  grey = np.random.default_rng(3).integers(0, 256, (32, 32)).astype(np.uint8)
  # grey in, the same grey out (BT.601 weights sum to 1)
  pixels = np.repeat(grey[..., None], 3, axis=2)
  _, crops = ph.image_hashes(pixels)
  side = ph.CROP_VIEW_PIXELS
  dct = np.cos(np.pi * np.arange(8)[:, None] * (2 * np.arange(side)[None, :] + 1) / (2 * side))
  for (top, left), crop in zip(ph.CROP_ORIGINS, crops):
    if 0.5 in (top, left):
      continue  # the centre view starts half a pixel in
    y, x = round((32 - side) * top), round((32 - side) * left)
    coefficients = (dct @ grey[y : y + side, x : x + side].astype(np.float64) @ dct.T).ravel()
    median = np.median(coefficients)
    expected = ph.to_signed(int(np.packbits(coefficients > median).view('>u8')[0]))
    assert crop == expected
