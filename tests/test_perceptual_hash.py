"""transforms/perceptual_hash.py against the imagehash library it follows, on the sample photos."""

import imagehash
import numpy as np
import pytest
from PIL import Image

from tests.conftest import sample_files
from transforms import image as image_lib
from transforms import perceptual_hash as ph


def _stored_pixels():
  for _, path in sample_files():
    try:
      yield path.name, image_lib.decode_stored_jpeg(
          image_lib.process_image(path.read_bytes(), image_lib.ImageSpec()).encoded)
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
    assert -2**63 <= signed < 2**63
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
