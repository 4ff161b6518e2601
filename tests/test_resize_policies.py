"""The resize policies on real photos, end to end: --resize_longer_side, --no_upscale, and JPEGs that
need no resizing keeping their own bytes; images smaller than the target included."""

import io
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import SAMPLE_DIR, convert
from transforms.imaging.image import ImageSpec, process_image

PHOTO = SAMPLE_DIR / 'animal' / 'gc_cat.JPEG'


def _jpeg(image: Image.Image, **save) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, 'JPEG', quality=90, **save)
  return buffer.getvalue()


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
  """Two classes of real photos plus small ones: a 200x150 and a 256x256 baseline JPEG, a 256x256
  progressive one, and a 120x90 PNG."""
  root = tmp_path_factory.mktemp('policies') / 'input'
  shutil.copytree(SAMPLE_DIR / 'animal', root / 'animal')
  shutil.copytree(SAMPLE_DIR / 'landscape', root / 'landscape')
  photo = Image.open(PHOTO).convert('RGB')
  (root / 'animal' / 'small_200x150.jpg').write_bytes(_jpeg(photo.resize((200, 150))))
  (root / 'animal' / 'square_256.jpg').write_bytes(_jpeg(photo.resize((256, 256))))
  (root / 'animal' / 'square_256_progressive.jpg').write_bytes(
    _jpeg(photo.resize((256, 256)), progressive=True)
  )
  buffer = io.BytesIO()
  photo.resize((120, 90)).save(buffer, 'PNG')
  (root / 'landscape' / 'tiny_120x90.png').write_bytes(buffer.getvalue())
  return root


def _records(output):
  """{file name: (width, height, image/encoded)} of every record of every shard."""
  records = {}
  for shard in sorted(output.glob('train-*')):
    for raw in tf.data.TFRecordDataset(str(shard)):
      feature = tf.train.Example.FromString(raw.numpy()).features.feature
      name = feature['image/filename'].bytes_list.value[0].decode().split('/')[-1]
      encoded = feature['image/encoded'].bytes_list.value[0]
      decoded = tf.io.decode_jpeg(encoded).numpy()
      assert (decoded.shape[1], decoded.shape[0]) == (
        feature['image/width'].int64_list.value[0],
        feature['image/height'].int64_list.value[0],
      )
      records[name] = (decoded.shape[1], decoded.shape[0], encoded)
  return records


def _upright_rgb_baseline_jpeg(path) -> bool:
  image = Image.open(path)
  return (
    image.format == 'JPEG'
    and image.mode == 'RGB'
    and not image.info.get('progressive')
    and image.getexif().get(0x0112, 1) == 1
  )


def _sizes_on_disk(root):
  return {p.name: Image.open(p).size for p in root.glob('*/*')}


def test_longer_side_scales_down_keeps_small_images_and_their_bytes(photos, tmp_path):
  output = tmp_path / 'out'
  assert convert(photos, output, '--resize_longer_side', '512', '--train_shards', '2') == 0
  records = _records(output)
  on_disk = _sizes_on_disk(photos)
  assert set(records) == set(on_disk)
  for name, (width, height, _) in records.items():
    w, h = on_disk[name]
    upright = (h, w) if name in ('gc_koala.JPEG', 'lomiri_friends.JPEG') else (w, h)  # EXIF 8, 6
    scale = min(1.0, 512 / max(w, h))
    assert (width, height) == (
      max(1, round(upright[0] * scale)),
      max(1, round(upright[1] * scale)),
    ), name
  # What fits already keeps its own bytes when it is an upright RGB baseline JPEG (Pillow says
  # which).
  kept = {
    p.name
    for p in photos.glob('*/*')
    if _upright_rgb_baseline_jpeg(p) and max(on_disk[p.name]) <= 512
  }
  assert {'small_200x150.jpg', 'square_256.jpg'} <= kept
  assert kept == {
    name
    for name in records
    if records[name][2] == (photos.glob(f'*/{name}').__next__()).read_bytes()
  }
  assert 'square_256_progressive.jpg' not in kept and 'tiny_120x90.png' not in kept
  assert records['tiny_120x90.png'][:2] == (120, 90)  # PNG: re-encoded, never blown up.
  stats = json.loads((output / 'stats.json').read_text())
  assert stats['train']['num_passthrough'] == len(kept)
  manifest = json.loads((output / 'manifest.json').read_text())
  assert manifest['options']['resize_longer_side'] == 512
  assert (manifest['options']['resize_shorter_side'], manifest['options']['center_crop']) == (0, 0)


def test_no_upscale_keeps_small_images_and_crops_their_largest_square(photos, tmp_path):
  output = tmp_path / 'out'
  assert convert(photos, output, '--no_upscale', '--center_crop', '224', '--train_shards', '2') == 0
  records = _records(output)
  assert records['small_200x150.jpg'][:2] == (150, 150)
  assert records['tiny_120x90.png'][:2] == (90, 90)
  assert records['square_256.jpg'][:2] == (224, 224)
  assert records['gc_cat.JPEG'][:2] == (224, 224)
  small = np.asarray(
    Image.open(io.BytesIO(records['small_200x150.jpg'][2])).convert('L'), np.float64
  )
  source = np.asarray(Image.open(photos / 'animal' / 'small_200x150.jpg').convert('L'), np.float64)
  assert np.abs(small - source[:, 25:175]).mean() < 3  # The centred square, unscaled.


def test_default_policy_blows_small_images_up_and_keeps_a_256_square_jpeg(photos, tmp_path):
  output = tmp_path / 'out'
  assert convert(photos, output, '--train_shards', '2') == 0
  records = _records(output)
  assert {size[:2] for size in records.values()} == {(256, 256)}
  assert records['square_256.jpg'][2] == (photos / 'animal' / 'square_256.jpg').read_bytes()
  assert records['small_200x150.jpg'][2] != (photos / 'animal' / 'small_200x150.jpg').read_bytes()


@pytest.mark.parametrize(
  'flags,error',
  [
    (('--resize_longer_side', '512', '--center_crop', '224'), 'excludes --center_crop 224'),
    (
      ('--resize_longer_side', '512', '--resize_shorter_side', '256'),
      'excludes --resize_shorter_side',
    ),
    (('--resize_longer_side', '-1'), '>= 0'),
  ],
)
def test_policy_flags_are_checked_before_any_work(flags, error, tmp_path, capsys):
  assert convert(SAMPLE_DIR, tmp_path / 'out', *flags) == 2
  assert error in capsys.readouterr().err
  assert not (tmp_path / 'out').exists()


def test_longer_side_uses_dct_scaling_and_matches_the_reference_geometry():
  """The fast path decodes a large JPEG at a power-of-two scale for the longer-side policy too, and
  stores the same size as the reference path (which decodes everything)."""
  data = PHOTO.read_bytes()
  fast = process_image(data, ImageSpec(0, 0, resize_longer_side=256))
  reference = process_image(data, ImageSpec(0, 0, resize_longer_side=256, fast=False))
  assert (fast.width, fast.height) == (reference.width, reference.height)
  a = np.asarray(Image.open(io.BytesIO(fast.encoded)), np.float64)
  b = np.asarray(Image.open(io.BytesIO(reference.encoded)), np.float64)
  assert 10 * np.log10(255**2 / np.mean((a - b) ** 2)) > 30
