"""The pure image functions on the real sample photos and on pathological files made here."""

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE_DIR, sample_files
from transforms.imaging import image as image_lib
from transforms.imaging.image import (
  ImageRejected,
  ImageSpec,
  crop_box,
  decode_rgb,
  encode_jpeg,
  process_image,
)

SPEC = ImageSpec()
REFERENCE = ImageSpec(fast=False)


def _decode(encoded: bytes) -> np.ndarray:
  return np.asarray(Image.open(io.BytesIO(encoded)).convert('RGB')).astype(np.float64)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
  mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
  return float('inf') if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _png(array: np.ndarray, mode=None, **save_args) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array, mode).save(buffer, 'PNG', **save_args)
  return buffer.getvalue()


def _jpeg_with_orientation(array: np.ndarray, orientation: int) -> bytes:
  image = Image.fromarray(array)
  exif = Image.Exif()
  exif[0x0112] = orientation
  buffer = io.BytesIO()
  image.save(buffer, 'JPEG', quality=95, exif=exif.tobytes())
  return buffer.getvalue()


def _asymmetric(h=60, w=90) -> np.ndarray:
  """A test card whose every flip/rotation differs: red left half, blue bottom-right quadrant."""
  array = np.full((h, w, 3), 255, np.uint8)
  array[:, : w // 2] = (255, 0, 0)
  array[h // 2 :, w * 3 // 4 :] = (0, 0, 255)
  return array


@pytest.mark.parametrize('synset,path', sample_files(), ids=lambda v: getattr(v, 'name', v))
def test_every_sample_photo_is_stored_as_256_square_jpeg(synset, path, monkeypatch):
  """Statistics are exact sums of the pixels handed to the JPEG encoder (docs/output.md: what
  stats.json is computed over), and within a fraction of a grey level of the stored JPEG's
  pixels."""
  if path.suffix == '.md':
    pytest.skip('attribution file')
  encoded_from = []
  real_encode = image_lib._encode
  monkeypatch.setattr(
    image_lib,
    '_encode',
    lambda pixels, q: encoded_from.append(pixels.copy()) or real_encode(pixels, q),
  )
  stored = process_image(path.read_bytes(), SPEC)
  assert stored.encoded[:2] == b'\xff\xd8'
  image = Image.open(io.BytesIO(stored.encoded))
  assert (image.format, image.mode, image.size) == ('JPEG', 'RGB', (256, 256))
  assert (stored.width, stored.height) == (256, 256)
  (handed,) = encoded_from
  handed = handed[..., :3].reshape(-1, 3).astype(np.int64)
  assert stored.channel_sums == tuple(handed.sum(axis=0).tolist())
  assert stored.channel_squares == tuple((handed**2).sum(axis=0).tolist())
  # One image's channel mean moves by up to ~1.3 levels through JPEG where a channel sits near 0 or
  # 255 (ringing past the range is clipped: kde_onestandsout's blue); a split's by <= 0.25
  # (test_pipeline).
  decoded = np.asarray(image.convert('RGB')).reshape(-1, 3).astype(np.float64)
  np.testing.assert_allclose(
    np.array(stored.channel_sums) / len(handed), decoded.mean(axis=0), atol=2.0
  )


def test_png_named_jpeg_is_sniffed_from_bytes_and_stored_as_jpeg():
  data = (SAMPLE_DIR / 'animal' / 'scipy_raccoon.JPEG').read_bytes()
  assert data[:8] == b'\x89PNG\r\n\x1a\n'
  stored = process_image(data, SPEC)
  assert stored.source_format == 'PNG'
  assert Image.open(io.BytesIO(stored.encoded)).format == 'JPEG'


@pytest.mark.parametrize(
  'name,orientation,displayed',
  [
    ('animal/gc_koala.JPEG', 8, (600, 800)),
    ('animal/lomiri_friends.JPEG', 6, (799, 1200)),
    ('landscape/lomiri_sunset.JPEG', 3, (1200, 800)),
  ],
)
def test_exif_rotated_sample_photos_come_out_upright(name, orientation, displayed):
  data = (SAMPLE_DIR / name).read_bytes()
  raw = Image.open(io.BytesIO(data))
  assert raw.getexif()[0x0112] == orientation
  rgb, _ = decode_rgb(data)
  assert (rgb.shape[1], rgb.shape[0]) == displayed
  transpose = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_270,
    8: Image.Transpose.ROTATE_90,
  }[orientation]
  expected = np.asarray(raw.convert('RGB').transpose(transpose))
  np.testing.assert_array_equal(rgb, expected)
  # Both paths store the upright picture: compare with the upright reference crop.
  for spec in (SPEC, REFERENCE):
    stored = _decode(process_image(data, spec).encoded)
    upright = _decode(process_image(_reencode(expected), REFERENCE).encoded)
    assert _psnr(stored, upright) > 25


def _reencode(rgb: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(rgb).save(buffer, 'PNG')
  return buffer.getvalue()


@pytest.mark.parametrize('orientation', range(1, 9))
def test_every_exif_orientation_is_applied(orientation):
  card = _asymmetric()
  # The file stores pixels that a viewer applying `orientation` shows as `card`.
  data = _jpeg_with_orientation(_stored_for(card, orientation), orientation)
  rgb, _ = decode_rgb(data)
  assert rgb.shape == card.shape
  assert np.abs(rgb.astype(int) - card.astype(int)).mean() < 6, orientation


def _stored_for(card: np.ndarray, orientation: int) -> np.ndarray:
  """The stored pixels that a viewer applying EXIF `orientation` displays as `card` (the inverse of
  each orientation's transform, EXIF 2.32 section 4.6.4)."""
  inverse = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
  }[orientation]
  image = Image.fromarray(card)
  return np.asarray(image.transpose(inverse) if inverse is not None else image)


def test_cmyk_jpeg_has_the_right_colours():
  data = (SAMPLE_DIR / 'flower' / 'mate_yellowflower_cmyk.JPEG').read_bytes()
  assert Image.open(io.BytesIO(data)).mode == 'CMYK'
  rgb, _ = decode_rgb(data)
  h, w, _ = rgb.shape
  centre = rgb[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].reshape(-1, 3).astype(float)
  r, g, b = centre.mean(axis=0)
  # A yellow flower: red and green high, blue low. An uninverted Adobe CMYK file would come out
  # blue.
  assert r > 150 and g > 120 and b < 90, (r, g, b)
  fast, ref = (_decode(process_image(data, s).encoded) for s in (SPEC, REFERENCE))
  assert np.abs(fast.mean(axis=(0, 1)) - ref.mean(axis=(0, 1))).max() < 3
  assert _psnr(fast, ref) > 25


def test_grayscale_jpeg_becomes_three_equal_channels():
  data = (SAMPLE_DIR / 'landscape' / 'kde_coldripple_gray.JPEG').read_bytes()
  assert Image.open(io.BytesIO(data)).mode == 'L'
  rgb, _ = decode_rgb(data)
  assert rgb.shape[2] == 3
  np.testing.assert_array_equal(rgb[..., 0], rgb[..., 1])
  np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])


@pytest.mark.parametrize('synset,path', sample_files(), ids=lambda v: getattr(v, 'name', v))
def test_fast_path_matches_the_pillow_reference(synset, path):
  if path.suffix == '.md':
    pytest.skip('attribution file')
  data = path.read_bytes()
  fast, ref = process_image(data, SPEC), process_image(data, REFERENCE)
  assert (fast.width, fast.height) == (ref.width, ref.height)
  a, b = _decode(fast.encoded), _decode(ref.encoded)
  assert _psnr(a, b) > 25
  assert np.abs(a.mean(axis=(0, 1)) - b.mean(axis=(0, 1))).max() < 3


def _outcome(data: bytes, through_pillow: bool = False, spec: ImageSpec = SPEC):
  """What becomes of `data`: the stored result (every field), or the rejection reason."""
  try:
    if through_pillow:  # The Pillow path (draft() + OpenCV step) that decides every other input.
      return image_lib._process_with_pillow(image_lib.open_image(data), data, spec)
    return process_image(data, spec)
  except ImageRejected as e:
    return 'rejected: ' + e.reason


def _jpeg_variants():
  """JPEG flavours the libjpeg (simplejpeg) path takes: every sample JPEG, plus made ones."""
  variants = [
    (path.name, path.read_bytes())
    for _, path in sample_files()
    if path.read_bytes()[:2] == b'\xff\xd8'
  ]
  card = np.asarray(Image.open(SAMPLE_DIR / 'object' / 'gc_cup.JPEG').convert('RGB'))
  for orientation in range(1, 9):
    variants.append((f'exif-{orientation}', _jpeg_with_orientation(card, orientation)))
  for name, size in (
    ('large-4x', (2200, 1700)),
    ('huge-16x', (4200, 4500)),
    ('odd', (517, 263)),
    ('tiny', (7, 5)),
  ):
    buffer = io.BytesIO()
    Image.fromarray(card).resize(size).save(buffer, 'JPEG', quality=92)
    variants.append((name, buffer.getvalue()))
  buffer = io.BytesIO()
  Image.fromarray(card).save(buffer, 'JPEG', quality=90, progressive=True, subsampling=0)
  variants.append(('progressive-444', buffer.getvalue()))
  data = variants[0][1]
  variants += [
    ('junk-after-eoi', data + b'\x00junk' * 10),
    ('no-eoi', data[:-2]),
    ('truncated', data[: len(data) // 2]),
    ('flipped-bit', data[:3000] + bytes([data[3000] ^ 4]) + data[3001:]),
  ]
  return variants


@pytest.mark.parametrize(
  'name,data', _jpeg_variants(), ids=lambda v: v if isinstance(v, str) else ''
)
@pytest.mark.parametrize(
  'spec',
  [SPEC, ImageSpec(center_crop=0), ImageSpec(160, 128, 95), ImageSpec(0, 0), ImageSpec(0, 200)],
  ids=['256-crop', 'no-crop', '160-crop-128', 'pass-through', 'crop-only'],
)
def test_libjpeg_path_gives_the_pillow_path_verdict_and_bytes(name, data, spec):
  """The simplejpeg decode is an optimisation only: same verdict, same stored bytes, same sums,
  orientation and crop as Pillow's decode (both are libjpeg-turbo, accurate IDCT, same DCT scale)."""
  got, want = _outcome(data, spec=spec), _outcome(data, through_pillow=True, spec=spec)
  assert got == want, name


def _jpeg_with_segments(array: np.ndarray, *segments: bytes) -> bytes:
  """A baseline JPEG of `array` with extra APP1 segments (each b'Exif\\0\\0...' or an XMP packet)
  inserted after SOI."""
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, 'JPEG', quality=95)
  data = buffer.getvalue()
  app1 = b''.join(b'\xff\xe1' + struct.pack('>H', len(s) + 2) + s for s in segments)
  return data[:2] + app1 + data[2:]


def _exif_segment(orientation: int) -> bytes:
  exif = Image.Exif()
  exif[0x0112] = orientation
  return b'Exif\x00\x00' + exif.tobytes()


@pytest.mark.parametrize(
  'name,segments,orientation',
  [
    (
      'xmp orientation only',
      [
        b'http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'<rdf:RDF><rdf:Description tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
      ],
      6,
    ),
    ('two exif segments', [_exif_segment(3), _exif_segment(6)], 3),
    ('exif without orientation', [b'Exif\x00\x00' + Image.Exif().tobytes()], 1),
    (
      'exif orientation 8 and xmp 6',
      [
        _exif_segment(8),
        b'http://ns.adobe.com/xap/1.0/\x00<rdf:Description tiff:Orientation="6"/>',
      ],
      8,
    ),
  ],
)
def test_header_probe_reads_orientation_as_pillow_does(name, segments, orientation):
  """The libjpeg path reads the header without Pillow; where Pillow would read the orientation from
  somewhere the probe does not (XMP, joined Exif segments), Pillow's path decides: same result."""
  data = _jpeg_with_segments(_asymmetric(60, 90), *segments)
  assert Image.open(io.BytesIO(data)).getexif().get(0x0112, 1) == orientation, name
  got, want = _outcome(data), _outcome(data, through_pillow=True)
  assert got == want and got.orientation == orientation, name


def test_libjpeg_path_is_taken_for_rgb_and_grayscale_jpeg_only(monkeypatch):
  calls = []
  real = image_lib._process_with_libjpeg
  monkeypatch.setattr(image_lib, '_process_with_libjpeg', lambda *a: calls.append(1) or real(*a))
  for synset, name in (('object', 'gc_cup.JPEG'), ('landscape', 'kde_coldripple_gray.JPEG')):
    process_image((SAMPLE_DIR / synset / name).read_bytes(), SPEC)
  assert len(calls) == 2
  for synset, name, spec in (
    ('flower', 'mate_yellowflower_cmyk.JPEG', SPEC),
    ('animal', 'sk_chelsea.png', SPEC),
    ('object', 'gc_cup.JPEG', ImageSpec(resample='lanczos')),
    ('object', 'gc_cup.JPEG', REFERENCE),
  ):
    process_image((SAMPLE_DIR / synset / name).read_bytes(), spec)
  assert len(calls) == 2


@pytest.mark.parametrize(
  'data,reason',
  [
    (b'', 'empty file'),
    (b'<!DOCTYPE html><html><body>404 Not Found</body></html>', 'text'),
    (b'  <html><head></head></html>', 'text'),
    (
      bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
      'not a recognised image',
    ),
  ],
)
def test_non_images_are_rejected_with_a_reason(data, reason):
  for spec in (SPEC, REFERENCE):
    with pytest.raises(ImageRejected, match=reason):
      process_image(data, spec)


@pytest.mark.parametrize('name', ['animal/gc_cat.JPEG', 'animal/sk_chelsea.png'])
def test_truncated_files_are_rejected_not_patched(name):
  data = (SAMPLE_DIR / name).read_bytes()
  for cut in (len(data) // 2, len(data) - 200):
    for spec in (SPEC, REFERENCE):
      with pytest.raises(ImageRejected, match='truncated or corrupt'):
        process_image(data[:cut], spec)


def test_decompression_bomb_is_refused_from_its_header_without_allocating():
  small = _png(np.zeros((8, 8), np.uint8))
  # Rewrite the IHDR chunk to claim 30000 x 30000 pixels (900 megapixels), with a valid CRC.
  ihdr = bytearray(small[8 : 8 + 25])
  ihdr[8:16] = struct.pack('>II', 30000, 30000)
  ihdr[21:25] = struct.pack('>I', zlib.crc32(bytes(ihdr[4:21])))
  bomb = small[:8] + bytes(ihdr) + small[33:]
  start = time.perf_counter()
  with pytest.raises(ImageRejected, match='decompression bomb'):
    process_image(bomb, SPEC)
  assert time.perf_counter() - start < 0.5  # Refused from the header: no 2.7 GB decode.
  with pytest.raises(ImageRejected, match='--max_image_pixels 1000'):
    process_image(_png(np.zeros((40, 40), np.uint8)), ImageSpec(max_image_pixels=1000))


def test_16_bit_grayscale_is_scaled_not_clipped():
  values = np.array([[0, 257, 32896], [65535, 1000, 50000]], np.uint16)
  rgb, _ = decode_rgb(_png(values, 'I;16'))
  np.testing.assert_array_equal(rgb[..., 0], np.rint(values / 257.0).astype(np.uint8))
  np.testing.assert_array_equal(rgb[..., 1], rgb[..., 0])


def test_palette_transparency_and_alpha_are_composited_on_white():
  palette = Image.new('P', (4, 4), 0)
  palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
  palette.putpixel((0, 0), 1)
  buffer = io.BytesIO()
  palette.save(buffer, 'PNG', transparency=0)
  rgb, _ = decode_rgb(buffer.getvalue())
  assert tuple(rgb[1, 1]) == (255, 255, 255)  # Transparent red -> white.
  assert tuple(rgb[0, 0]) == (0, 0, 255)  # Opaque blue stays blue.

  rgba = np.zeros((2, 2, 4), np.uint8)
  rgba[0, 0] = (255, 0, 0, 255)
  rgba[0, 1] = (0, 0, 0, 128)
  rgb, _ = decode_rgb(_png(rgba, 'RGBA'))
  assert tuple(rgb[0, 0]) == (255, 0, 0)
  assert tuple(rgb[1, 1]) == (255, 255, 255)
  assert all(abs(int(v) - 127) <= 1 for v in rgb[0, 1])  # Half-transparent black on white: grey.

  la = np.zeros((2, 2, 2), np.uint8)
  la[..., 0], la[..., 1] = 0, 0
  rgb, _ = decode_rgb(_png(la, 'LA'))
  assert tuple(rgb[0, 0]) == (255, 255, 255)


def test_animated_gif_gives_its_first_frame():
  frames = [Image.new('RGB', (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0))]
  buffer = io.BytesIO()
  frames[0].save(buffer, 'GIF', save_all=True, append_images=frames[1:], duration=100, loop=0)
  assert Image.open(io.BytesIO(buffer.getvalue())).n_frames == 2
  rgb, _ = decode_rgb(buffer.getvalue())
  assert tuple(rgb[8, 8]) == (255, 0, 0)


@pytest.mark.parametrize('size', [(6000, 40), (40, 6000), (1, 1), (3, 2)])
def test_extreme_sizes_keep_bounded_output(size):
  data = _png(np.full((size[1], size[0], 3), 90, np.uint8))
  stored = process_image(data, SPEC)
  assert (stored.width, stored.height) == (256, 256)
  keep_aspect = process_image(data, ImageSpec(center_crop=0))
  assert max(keep_aspect.width, keep_aspect.height) <= 256 * 8
  assert min(keep_aspect.width, keep_aspect.height) == 256


def test_crop_box_geometry():
  box, size = crop_box(500, 375, ImageSpec(resize_shorter_side=256, center_crop=224))
  assert size == (224, 224)
  scale = 256 / 375
  assert box[2] - box[0] == pytest.approx(224 / scale)
  assert (box[0] + box[2]) / 2 == pytest.approx(250)
  assert (box[1] + box[3]) / 2 == pytest.approx(187.5)
  assert crop_box(500, 375, ImageSpec(resize_shorter_side=0, center_crop=0)) == (
    (0.0, 0.0, 500.0, 375.0),
    (500, 375),
  )


def test_passthrough_keeps_upright_baseline_jpeg_bytes_and_reencodes_the_rest():
  spec = ImageSpec(resize_shorter_side=0, center_crop=0)
  baseline = (SAMPLE_DIR / 'animal' / 'gc_cat.JPEG').read_bytes()
  stored = process_image(baseline, spec)
  assert stored.passthrough and stored.encoded == baseline
  for name in (
    'animal/gc_koala.JPEG',
    'flower/mate_yellowflower_cmyk.JPEG',
    'landscape/kde_coldripple_gray.JPEG',
    'animal/scipy_raccoon.JPEG',
  ):
    other = process_image((SAMPLE_DIR / name).read_bytes(), spec)
    assert not other.passthrough, name
    assert Image.open(io.BytesIO(other.encoded)).mode == 'RGB'


def test_spec_validation_messages():
  with pytest.raises(ValueError, match='would not fit'):
    ImageSpec(resize_shorter_side=200, center_crop=224)
  with pytest.raises(ValueError, match='jpeg_quality'):
    ImageSpec(jpeg_quality=0)
  with pytest.raises(ValueError, match='resample'):
    ImageSpec(resample='nearest')


@pytest.mark.slow  # The 9000x10000 case allocates ~1 GB and takes ~20 s.
@pytest.mark.parametrize('shape', [(1, 1, 3), (256, 256, 3), (301, 517, 4), (9000, 10000, 3)])
def test_channel_sums_are_exact_integers(shape):
  rng = np.random.default_rng(sum(shape))
  pixels = rng.integers(0, 256, shape, dtype=np.uint8)
  # 90 Mpixel of 255: the largest sums an image under the pixel limit can have.
  if shape[0] == 9000:
    pixels[:] = 255
  flat = pixels[..., :3].reshape(-1, 3).astype(np.int64)
  sums, squares = image_lib.channel_sums(pixels)
  assert sums == tuple(flat.sum(axis=0).tolist())
  assert squares == tuple((flat**2).sum(axis=0).tolist())


def test_encode_jpeg_round_trip():
  card = _asymmetric(64, 64)
  decoded = _decode(encode_jpeg(card, 95))
  assert _psnr(decoded, card) > 30


@pytest.mark.parametrize('orientation', range(1, 9))
@pytest.mark.parametrize(
  'shape', [(1, 1, 3), (1, 7, 3), (7, 1, 3), (5, 9, 3), (486, 648, 3), (33, 17, 4), (2, 3, 1)]
)
def test_upright_pixels_turn_as_the_exif_views(orientation, shape):
  """OpenCV's turns (the fast path's) give the values of the numpy views of each EXIF orientation,
  and the shape, also for a single row, column or channel."""
  pixels = np.random.default_rng(orientation).integers(0, 256, shape, dtype=np.uint8)
  turned = image_lib.upright_pixels(pixels, orientation)
  expected = image_lib._UPRIGHT_VIEW[orientation](pixels)  # pylint: disable=protected-access
  assert turned.shape == expected.shape
  np.testing.assert_array_equal(turned, expected)
  assert turned.flags.c_contiguous
