"""Hostile input: every class of dirty file docs/decoding.md lists, through both decode paths and
through a whole run on a dirty copy of the sample photos."""

import hashlib
import io
import json
import shutil
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import SAMPLE_DIR, convert
from transforms.imaging.image import ImageRejected, ImageSpec, process_image

SPECS = {'fast': ImageSpec(), 'reference': ImageSpec(fast=False)}
PHOTO = np.asarray(Image.open(SAMPLE_DIR / 'animal' / 'gc_cat.JPEG').convert('RGB'))


def _save(image: Image.Image, fmt: str, **kwargs) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, fmt, **kwargs)
  return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
  return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def png_16bit_rgb(array16: np.ndarray) -> bytes:
  """A 48-bit RGB PNG written by hand (Pillow cannot write one): IHDR bit depth 16, colour type 2."""
  h, w, _ = array16.shape
  rows = b''.join(b'\x00' + array16[y].astype('>u2').tobytes() for y in range(h))
  return (
    b'\x89PNG\r\n\x1a\n'
    + _png_chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, 2, 0, 0, 0))
    + _png_chunk(b'IDAT', zlib.compress(rows))
    + _png_chunk(b'IEND', b'')
  )


def _photo(size=(200, 150)) -> Image.Image:
  return Image.fromarray(PHOTO).resize(size)


def _animated(fmt: str) -> bytes:
  frames = [Image.new('RGB', (64, 48), c) for c in ((200, 30, 30), (30, 200, 30), (30, 30, 200))]
  return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=80, loop=0)


CASES = {
  # name: (bytes, expected mean RGB of the stored image or None to skip, reject reason or None)
  'progressive JPEG': (lambda: _save(_photo(), 'JPEG', quality=90, progressive=True), None, None),
  'JPEG with junk after EOI': (lambda: _save(_photo(), 'JPEG') + b'\x00garbage' * 100, None, None),
  'JPEG with only the EOI missing': (lambda: _save(_photo(), 'JPEG')[:-2], None, 'truncated'),
  'TIFF': (lambda: _save(Image.new('RGB', (64, 64), (10, 120, 240)), 'TIFF'), (10, 120, 240), None),
  'BMP': (lambda: _save(Image.new('RGB', (64, 64), (240, 120, 10)), 'BMP'), (240, 120, 10), None),
  'WebP': (
    lambda: _save(Image.new('RGB', (64, 64), (90, 200, 90)), 'WEBP', lossless=True),
    (90, 200, 90),
    None,
  ),
  'animated GIF': (lambda: _animated('GIF'), (200, 30, 30), None),
  'animated WebP': (lambda: _animated('WEBP'), (200, 30, 30), None),
  '16-bit RGB PNG': (
    lambda: png_16bit_rgb(np.full((32, 32, 3), (65535, 32896, 0), np.uint16)),
    (255, 128, 0),
    None,
  ),
  '16-bit grayscale PNG': (
    lambda: _save(Image.fromarray(np.full((32, 32), 25700, np.uint16), 'I;16'), 'PNG'),
    (100, 100, 100),
    None,
  ),
  'CMYK JPEG (Adobe, inverted)': (
    lambda: _save(Image.new('RGB', (64, 64), (250, 220, 20)).convert('CMYK'), 'JPEG', quality=95),
    (250, 220, 20),
    None,
  ),
  'YCCK JPEG (Adobe, transform 2)': (lambda: ycck_jpeg(), (250, 200, 30), None),
  'LA PNG': (lambda: _save(Image.new('LA', (32, 32), (0, 0)), 'PNG'), (255, 255, 255), None),
  '1x1 pixel': (lambda: _save(Image.new('RGB', (1, 1), (7, 77, 177)), 'PNG'), (7, 77, 177), None),
  'zero bytes': (lambda: b'', None, 'empty file'),
  'HTML error page': (lambda: b'<!DOCTYPE html>\n<html><title>404</title></html>', None, 'text'),
  'JSON': (lambda: b'{"error": "rate limited"}', None, 'text'),
  'random bytes': (
    lambda: bytes(np.random.default_rng(1).integers(0, 256, 10000, dtype=np.uint8)),
    None,
    'not a recognised image',
  ),
  'truncated JPEG': (lambda: _save(_photo(), 'JPEG')[:3000], None, 'truncated or corrupt'),
  'truncated PNG': (lambda: _save(_photo(), 'PNG')[:5000], None, 'truncated or corrupt'),
  'PNG with a bad IDAT CRC': (lambda: _corrupt_png_crc(_save(_photo(), 'PNG')), None, 'corrupt'),
  'JPEG header only': (lambda: _save(_photo(), 'JPEG')[:400], None, 'truncated or corrupt'),
}


def ycck_jpeg(rgb=(250, 200, 30), size=32) -> bytes:
  """A YCCK JPEG (Adobe APP14 transform 2), which Pillow cannot write: the YCbCr of `rgb` and K = 0
  written as the four components of a CMYK JPEG, then the Adobe transform byte switched from 0 to 2,
  so libjpeg converts YCC->RGB->inverted CMY on decode as it does for real YCCK files."""
  r, g, b = rgb
  components = (
    0.299 * r + 0.587 * g + 0.114 * b,
    -0.168736 * r - 0.331264 * g + 0.5 * b + 128,
    0.5 * r - 0.418688 * g - 0.081312 * b + 128,
    0,
  )
  pixels = np.tile(np.clip(np.rint(components), 0, 255).astype(np.uint8), (size, size, 1))
  data = bytearray(_save(Image.fromarray(pixels, 'CMYK'), 'JPEG', quality=95))
  transform = data.index(b'Adobe') + 11  # 'Adobe', version (2 bytes), flags0 (2), flags1 (2).
  assert data[transform] == 0
  data[transform] = 2
  return bytes(data)


def _corrupt_png_crc(data: bytes) -> bytes:
  at = data.index(b'IDAT') + 4 + 10
  return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@pytest.mark.parametrize('path', SPECS)
@pytest.mark.parametrize('case', CASES)
def test_hostile_case(case, path):
  make, colour, reason = CASES[case]
  data = make()
  if reason:
    with pytest.raises(ImageRejected, match=reason) as info:
      process_image(data, SPECS[path])
    assert len(info.value.reason) < 300
    return
  stored = process_image(data, SPECS[path])
  image = Image.open(io.BytesIO(stored.encoded))
  assert (image.format, image.mode, image.size) == ('JPEG', 'RGB', (256, 256))
  if colour:
    mean = np.asarray(image).reshape(-1, 3).mean(axis=0)
    assert np.abs(mean - colour).max() < 4, (case, mean)


def test_fast_and_reference_paths_agree_on_every_verdict():
  for case, (make, _, _) in CASES.items():
    data = make()
    verdicts = []
    for spec in SPECS.values():
      try:
        verdicts.append(('ok', process_image(data, spec).height))
      except ImageRejected as e:
        verdicts.append(('rejected', e.reason))
    assert verdicts[0] == verdicts[1], case


def tree_checksum(root) -> str:
  digest = hashlib.sha256()
  for path in sorted(p for p in root.rglob('*')):
    digest.update(str(path.relative_to(root)).encode())
    if path.is_file():
      digest.update(path.read_bytes())
  return digest.hexdigest()


@pytest.fixture()
def dirty_input(tmp_path):
  """The sample photos plus a dirty class: odd names, wrong extensions, hidden and broken files."""
  root = tmp_path / 'dirty input'
  shutil.copytree(SAMPLE_DIR, root)
  (root / 'ATTRIBUTION.md').unlink()
  odd = root / 'überclass ✓'
  odd.mkdir()
  cat = (SAMPLE_DIR / 'animal' / 'gc_cat.JPEG').read_bytes()
  files = {
    'photo with spaces.JPG': cat,
    'ñandú 鳥.jpeg': cat,
    'jpeg_named.png': cat,
    'png_named.JPEG': _save(_photo(), 'PNG'),
    'UPPER.PNG': _save(_photo(), 'PNG'),
    'progressive.jpg': CASES['progressive JPEG'][0](),
    'animated.gif': CASES['animated GIF'][0](),
    'scan.tiff': CASES['TIFF'][0](),
    'truncated.jpg': cat[:4000],
    'error.jpg': b'<html><body>403</body></html>',
    'empty.jpg': b'',
    '.DS_Store': b'\x00\x00\x00\x01Bud1',
    '._photo with spaces.JPG': b'\x00\x05\x16\x07AppleDouble',
  }
  for name, data in files.items():
    (odd / name).write_bytes(data)
  (root / '.hidden_class').mkdir()
  (root / '.hidden_class' / 'x.jpg').write_bytes(cat)
  return root


def test_dirty_folder_end_to_end(dirty_input, tmp_path):
  before = tree_checksum(dirty_input)
  output = tmp_path / 'out'
  assert convert(dirty_input, output, '--train_shards', '2') == 0
  assert tree_checksum(dirty_input) == before  # Inputs are never modified.
  rejects = {
    json.loads(line)['path'].rsplit('/', 1)[-1]: json.loads(line)['reason']
    for line in (output / 'rejects.jsonl').read_text(encoding='utf-8').splitlines()
  }
  assert set(rejects) == {'truncated.jpg', 'error.jpg', 'empty.jpg'}
  labels = (output / 'labels.txt').read_text(encoding='utf-8').splitlines()
  assert 'überclass ✓' in labels and '.hidden_class' not in labels
  names = set()
  for shard in sorted(output.glob('train-*')):
    for raw in tf.data.TFRecordDataset(str(shard)):
      example = tf.train.Example.FromString(raw.numpy())
      names.add(example.features.feature['image/filename'].bytes_list.value[0].decode('utf-8'))
  expected = {
    f'überclass ✓/{n}'
    for n in (
      'photo with spaces.JPG',
      'ñandú 鳥.jpeg',
      'jpeg_named.png',
      'png_named.JPEG',
      'UPPER.PNG',
      'progressive.jpg',
      'animated.gif',
      'scan.tiff',
    )
  }
  assert expected <= names
  assert len(names) == 54 + len(expected)
  # Every output file stays inside --output whatever the names.
  assert all(p.resolve().is_relative_to(output.resolve()) for p in output.rglob('*'))


def test_labels_file_cannot_reach_outside_the_input(tmp_path, capsys):
  labels = tmp_path / 'labels.txt'
  labels.write_text('animal\n../../etc\n')
  assert convert(SAMPLE_DIR, tmp_path / 'out', '--labels_file', labels) == 2
  assert 'not class folder names' in capsys.readouterr().err


THIN_POLICIES = {
  'default crop': ((), (256, 256)),
  'keep aspect': (('--center_crop', '0'), None),
  'bicubic': (('--resample', 'bicubic'), (256, 256)),
  'lanczos': (('--resample', 'lanczos'), (256, 256)),
  'pass-through': (('--resize_shorter_side', '0', '--center_crop', '0'), None),
  'crop only': (('--resize_shorter_side', '0', '--center_crop', '200'), None),
}


# One conversion per policy; tests/test_image_sizes.py checks thin images quickly.
@pytest.mark.slow
@pytest.mark.parametrize('policy', THIN_POLICIES)
def test_thin_images_convert_under_every_policy(policy, tmp_path):
  """A 1x320 PNG, a 320x1 JPEG and a 2x600 JPEG beside real photos once ended the whole run."""
  flags, square = THIN_POLICIES[policy]
  root = tmp_path / 'input'
  shutil.copytree(SAMPLE_DIR / 'landscape', root / 'strips')
  strips = {
    'strip_1x320.png': ((320, 1), 'PNG'),
    'strip_320x1.jpg': ((1, 320), 'JPEG'),
    'strip_2x600.jpg': ((600, 2), 'JPEG'),
  }
  for name, (shape, fmt) in strips.items():
    (root / 'strips' / name).write_bytes(
      _save(Image.fromarray(np.full(shape + (3,), 200, np.uint8)), fmt)
    )
  output = tmp_path / 'out'
  assert convert(root, output, '--train_shards', '1', *flags) == 0
  assert (output / 'rejects.jsonl').read_text() == ''
  sizes = {}
  for raw in tf.data.TFRecordDataset(str(output / 'train-00000-of-00001')):
    feature = tf.train.Example.FromString(raw.numpy()).features.feature
    name = feature['image/filename'].bytes_list.value[0].decode().split('/')[-1]
    image = tf.io.decode_jpeg(feature['image/encoded'].bytes_list.value[0]).numpy()
    sizes[name] = (image.shape[1], image.shape[0])
    assert sizes[name] == (
      feature['image/width'].int64_list.value[0],
      feature['image/height'].int64_list.value[0],
    )
  expected = {
    'pass-through': {
      'strip_1x320.png': (1, 320),
      'strip_320x1.jpg': (320, 1),
      'strip_2x600.jpg': (2, 600),
    },
    'crop only': {
      'strip_1x320.png': (1, 200),
      'strip_320x1.jpg': (200, 1),
      'strip_2x600.jpg': (2, 200),
    },
    'keep aspect': {
      'strip_1x320.png': (256, 2048),
      'strip_320x1.jpg': (2048, 256),
      'strip_2x600.jpg': (256, 2048),
    },
  }.get(policy)
  for name in strips:
    assert sizes[name] == (square or expected[name]), name
