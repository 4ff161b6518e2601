"""Pure image functions: encoded bytes in, RGB arrays or JPEG bytes out; nothing here knows Beam.

The shard writer calls `process_image` once per file. Decoding (docs/decoding.md): the format is
sniffed from the bytes, never the name; anything that does not decode completely is `ImageRejected`
(``ImageFile.LOAD_TRUNCATED_IMAGES`` stays False); a header declaring more pixels than the limit is
refused before any pixel is allocated; animations give their first frame; EXIF orientation is
applied; every mode ends as RGB uint8 (16-bit samples / 257, transparency on white, CMYK/YCCK
through Pillow's Adobe handling). Resizing is the ImageNet recipe: shorter side to
`resize_shorter_side`, then a centred `center_crop` square (Krizhevsky et al. 2012; He et al. 2016);
only the crop box is resampled, by Pillow's antialiased resize or, for JPEG input with the bilinear
filter, by libjpeg-turbo's DCT scaling and one < 2x cv2.resize step. That path decodes RGB and grey
JPEGs with simplejpeg, strict (a libjpeg warning hands the file to Pillow, whose verdict counts):
both are libjpeg-turbo with the same settings, so both give the same verdicts and stored bytes;
`jpeg_header` reads their headers without Pillow, handing it what it cannot answer as Pillow would.
Statistics sum exactly the pixels handed to the encoder.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import re
import threading
import warnings
from typing import Callable, Optional, Tuple

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

import cv2
import pyarrow
import simplejpeg

from transforms.imaging.perceptual_hash import image_hashes

cv2.setNumThreads(1)  # One image per core: Beam workers provide the parallelism.

ImageFile.LOAD_TRUNCATED_IMAGES = False

# Pillow's own default limit (~89.5 megapixels, a 1024 MiB RGBA image); --max_image_pixels overrides
# it.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485
# The longer side is cropped to at most this multiple of the shorter side before resizing when the
# aspect ratio is kept (--center_crop 0): a 6000x40 strip resized to shorter side 256 would
# otherwise be 38400 pixels long.
MAX_ASPECT_RATIO = 8
# Formats we decode. Pillow identifies these from the bytes (magic numbers), not from file names.
DECODABLE_FORMATS = ('JPEG', 'PNG', 'GIF', 'WEBP', 'TIFF', 'BMP')  # JPEG covers MPO.
RESAMPLE_FILTERS = {
  'bilinear': Image.Resampling.BILINEAR,
  'bicubic': Image.Resampling.BICUBIC,
  'lanczos': Image.Resampling.LANCZOS,
}
_WHITE = (255, 255, 255)
_EXIF_ORIENTATION = 0x0112


class ImageRejected(ValueError):
  """The bytes are not an image this tool stores; `reason` says why in words a person understands."""

  def __init__(self, reason: str):
    super().__init__(reason)
    self.reason = reason


@dataclasses.dataclass(frozen=True)
class ImageSpec:
  """How every stored image is made.

  Attributes:
    resize_shorter_side: target length of the shorter side in pixels; 0 keeps the decoded size.
    center_crop: side of the centred square crop in pixels (after resizing); 0 keeps the aspect
    ratio.
    resize_longer_side: instead of the two above (which must then be 0), scale the longer side down
      to this many pixels, aspect ratio kept, no crop, never up (ffcv's `max_resolution`); 0 = off.
    upscale: False keeps an image smaller than the target at its size (the crop then takes the
      largest centred square that fits); True (the AlexNet recipe) blows it up to the target.
    jpeg_quality: libjpeg quality of the stored JPEG, 1-100 (TF's build_imagenet_data.py uses 100,
      most ImageNet pipelines 90-95).
    resample: 'bilinear' (default, antialiased), 'bicubic' or 'lanczos'.
    max_image_pixels: images whose header declares more pixels than this are rejected unread.
    fast: use the DCT-scaling + OpenCV path for JPEG input where it applies (see module docstring).
  """

  resize_shorter_side: int = 256
  center_crop: int = 256
  jpeg_quality: int = 90
  resample: str = 'bilinear'
  max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
  fast: bool = True
  resize_longer_side: int = 0
  upscale: bool = True

  def __post_init__(self):
    if min(self.resize_shorter_side, self.center_crop, self.resize_longer_side) < 0:
      raise ValueError(
        'resize_shorter_side, center_crop and resize_longer_side must be >= 0 (0 '
        'disables the step).'
      )
    if self.resize_longer_side and (self.resize_shorter_side or self.center_crop):
      raise ValueError(
        f'resize_longer_side ({self.resize_longer_side}) excludes resize_shorter_side and '
        'center_crop: the longer side is scaled and nothing is cropped. Drop one of them.'
      )
    if 0 < self.resize_shorter_side < self.center_crop:
      raise ValueError(
        f'center_crop ({self.center_crop}) is larger than resize_shorter_side '
        f'({self.resize_shorter_side}): the crop would not fit. Lower the crop or raise the side.'
      )
    if not 1 <= self.jpeg_quality <= 100:
      raise ValueError(f'jpeg_quality must be in 1..100, got {self.jpeg_quality}.')
    if self.resample not in RESAMPLE_FILTERS:
      raise ValueError(
        f'resample must be one of {sorted(RESAMPLE_FILTERS)}, got {self.resample!r}.'
      )
    if self.max_image_pixels <= 0:
      raise ValueError(f'max_image_pixels must be > 0, got {self.max_image_pixels}.')

  def keeps_geometry(self, width: int, height: int) -> bool:
    """True when an image of `width` x `height` needs neither resizing nor cropping: an upright RGB
    baseline JPEG then keeps its own bytes (no generation loss), as in pass-through mode."""
    return crop_box(width, height, self) == (
      (0.0, 0.0, float(width), float(height)),
      (width, height),
    )


@dataclasses.dataclass(frozen=True)
class ProcessedImage:
  """One stored image.

  Attributes:
    encoded: JPEG bytes as stored in ``image/encoded``.
    height, width: size of the stored image in pixels.
    channel_sums: per-channel (R, G, B) sums of the pixel values (0-255) handed to the JPEG encoder
      (the input's decoded pixels in pass-through); with `channel_squares` and height * width, the
      exact mean and std follow.
    channel_squares: per-channel (R, G, B) sums of the squared pixel values.
    source_format: the format sniffed from the input bytes ('JPEG', 'PNG', ...).
    passthrough: True when `encoded` is the input file's own bytes.
    orientation: the input's EXIF orientation (1-8) that was applied.
    crop: the region of the upright input that became the output, as normalised
      (left, top, right, bottom) in [0, 1]; used to move bounding boxes.
    phash: the perceptual hash (transforms/imaging/perceptual_hash.py) of the same pixels the
    channel sums
      are taken of, as the signed int64 stored in ``image/phash``.
    crop_phashes: the crop hashes of the same pixels (transforms/imaging/perceptual_hash.py
      `image_hashes`), signed int64s; kept in the shard's sidecar, not in the record.
  """

  encoded: bytes
  height: int
  width: int
  channel_sums: Tuple[int, int, int]
  channel_squares: Tuple[int, int, int]
  source_format: str
  passthrough: bool
  orientation: int = 1
  crop: Tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
  phash: int = 0
  crop_phashes: Tuple[int, ...] = ()


def open_image(data: bytes, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Image.Image:
  """Identifies `data` from its bytes and reads its header only (no pixel is decoded or allocated).

  Returns:
    A lazily-loaded PIL image whose `format` is one of DECODABLE_FORMATS.
  Raises:
    ImageRejected: empty, text/HTML, unknown format, or more than `max_image_pixels` pixels.
  """
  if not data:
    raise ImageRejected('empty file (0 bytes)')
  head = data[:64].lstrip().lower()
  if head.startswith((b'<!doctype', b'<html', b'<?xml', b'<head', b'<body', b'{', b'[')):
    raise ImageRejected('text (HTML/XML/JSON), not an image')
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', Image.DecompressionBombWarning)
      image = Image.open(io.BytesIO(data), formats=DECODABLE_FORMATS)
  except Image.DecompressionBombError as e:
    raise ImageRejected(f'decompression bomb refused from its header: {e}') from None
  except UnidentifiedImageError:
    raise ImageRejected('not a recognised image format') from None
  except Exception as e:  # Pillow raises many types for bad headers; all mean "not an image".
    if 'truncated' in str(e).lower():
      raise ImageRejected(f'truncated or corrupt image header ({describe_error(e)})') from None
    raise ImageRejected(f'not a recognised image ({describe_error(e)})') from None
  width, height = image.size
  if width * height > max_image_pixels:
    raise ImageRejected(
      f'decompression bomb refused from its header: {width}x{height} = {width * height} pixels '
      f'> --max_image_pixels {max_image_pixels}'
    )
  if width < 1 or height < 1:
    raise ImageRejected(f'image has no pixels ({width}x{height})')
  return image


def decode_rgb(data: bytes, spec: ImageSpec = ImageSpec()) -> Tuple[np.ndarray, Image.Image]:
  """Decodes `data` completely to an upright RGB array (the reference path, no DCT scaling).

  Returns:
    (uint8 [H, W, 3] RGB array, the opened PIL image with its header information).
  Raises:
    ImageRejected: see `open_image`, plus truncated or corrupt pixel data.
  """
  image = open_image(data, spec.max_image_pixels)
  rgb, _ = _to_upright_rgb(image, draft_size=None)
  return np.asarray(rgb), image


def process_image(data: bytes, spec: ImageSpec) -> ProcessedImage:
  """Turns one input file's bytes into the JPEG that is stored, following `spec`.

  RGB and greyscale JPEGs with the default bilinear filter are decoded by libjpeg-turbo through
  simplejpeg (strict: any libjpeg warning counts as a failure); every other input, and every JPEG
  that libjpeg warns about, goes through Pillow, which gives the verdict. Both decoders are
  libjpeg-turbo with the same settings (accurate integer IDCT, fancy upsampling, the same
  power-of-two DCT scale), so a file gives the same pixels and the same stored bytes on either path
  (tested on every sample photo and on fuzzed files).

  Args:
    data: the file's bytes (any format Pillow decodes from DECODABLE_FORMATS).
    spec: sizes, quality and filter.
  Returns:
    The stored JPEG, its size in pixels and the exact channel sums of its decoded pixels.
  Raises:
    ImageRejected: the file is not stored (reason in the exception).
  """
  header = jpeg_header(data, spec.max_image_pixels) if _libjpeg_path_applies(spec) else None
  if header is not None:
    processed = _process_with_libjpeg(data, header, spec)
    if processed is not None:
      return processed
  return _process_with_pillow(open_image(data, spec.max_image_pixels), data, spec)


def _libjpeg_path_applies(spec: ImageSpec) -> bool:
  return spec.fast and spec.resample == 'bilinear'


@dataclasses.dataclass(frozen=True)
class JpegHeader:
  """What the libjpeg path needs to know of a JPEG before decoding it (`jpeg_header`).

  Attributes:
    width, height: as stored, in pixels (before EXIF orientation).
    orientation: EXIF orientation 1-8 (1 when absent or invalid), as Pillow's getexif() reads it.
    baseline: sequential (not progressive) coding.
    colorspace: libjpeg's 'YCbCr' or 'Gray' (other colour spaces never get a header).
  """

  width: int
  height: int
  orientation: int
  baseline: bool
  colorspace: str


# SOFn markers: the frame header; 0xC2, 0xC6, 0xCA and 0xCE code progressively (as Pillow reads
# them).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PROGRESSIVE_SOF_MARKERS = frozenset((0xC2, 0xC6, 0xCA, 0xCE))
_EXIF_PREFIX = b'Exif\x00\x00'
_XMP_PREFIX = b'http://ns.adobe.com/xap/1.0/\x00'


def jpeg_header(
  data: bytes, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> Optional[JpegHeader]:
  """The header of a YCbCr or greyscale JPEG from libjpeg-turbo's header read (simplejpeg) and the
  markers before the first scan, without Pillow (whose open() and getexif() cost ~0.2-0.7 ms a
  file).

  EXIF orientation comes from the first APP1 Exif segment, read with Pillow's `Image.Exif`, as
  Pillow's own getexif() does. Returns None for anything this cannot answer exactly as Pillow would
  (not a JPEG, CMYK/YCCK/RGB-coded components, more pixels than `max_image_pixels`, an Exif segment
  Pillow's parser rejects, an XMP orientation Pillow would honour without an Exif one, a broken
  marker structure):
  the caller then asks Pillow, whose verdict counts.
  """
  try:
    height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
  except Exception:  # pylint: disable=broad-except  (not a JPEG libjpeg can read: Pillow decides)
    return None
  if colorspace not in ('YCbCr', 'Gray') or not 0 < width * height <= max_image_pixels:
    return None
  exif, xmp, sof, at = None, False, None, 2
  while True:  # Every marker segment before the first scan, as Pillow's JPEG plugin reads them.
    if at + 4 > len(data) or data[at] != 0xFF:
      return None
    marker = data[at + 1]
    if marker == 0xFF:  # Fill byte.
      at += 1
      continue
    if marker == 0xDA:  # Start of scan.
      break
    if marker == 0xD9:  # End of image before any scan.
      return None
    length = int.from_bytes(data[at + 2 : at + 4], 'big')
    segment = data[at + 4 : at + 2 + length]
    if marker == 0xE1 and segment.startswith(_EXIF_PREFIX):
      if exif is not None:
        return None  # Pillow joins several Exif segments into one: let it.
      exif = segment
    elif marker == 0xE1 and segment.startswith(_XMP_PREFIX):
      xmp = True
    elif marker in _SOF_MARKERS:
      sof = marker
    at += 2 + length
  orientation = None
  if exif is not None:
    try:
      parsed = Image.Exif()
      parsed.load(exif)
      orientation = parsed.get(_EXIF_ORIENTATION)
    except Exception:  # pylint: disable=broad-except
      return None
  if sof is None or (xmp and orientation is None):
    return None  # No frame header, or an XMP packet whose orientation Pillow would honour.
  orientation = orientation if orientation in range(1, 9) else 1
  return JpegHeader(width, height, orientation, sof not in _PROGRESSIVE_SOF_MARKERS, colorspace)


def _process_with_libjpeg(
  data: bytes, header: JpegHeader, spec: ImageSpec
) -> Optional[ProcessedImage]:
  """The fast path for a YCbCr or greyscale JPEG: simplejpeg's DCT-scaled decode (a full validating
  decode in pass-through mode), EXIF orientation as an array view, the < 2x step on the crop box,
  the encode. None when libjpeg warns or fails (corrupt or truncated data, or anything unusual): the
  Pillow path then decides, so verdicts stay Pillow's."""
  width, height, orientation = header.width, header.height, header.orientation
  scale = _dct_scale(width, height, spec)
  try:
    pixels = simplejpeg.decode_jpeg(
      data,
      colorspace='RGB',
      min_height=-(-height // scale),
      min_width=-(-width // scale),
      strict=True,
    )
  except Exception:  # pylint: disable=broad-except  (Pillow's verdict is the one that counts)
    return None
  if pixels.shape[:2] != (-(-height // scale), -(-width // scale)):
    return None  # Not the scale Pillow's draft() would pick: let Pillow decode.
  if (
    header.colorspace == 'YCbCr'
    and header.baseline
    and orientation == 1
    and spec.keeps_geometry(width, height)
  ):
    phash, crop_phashes = image_hashes(pixels)
    return ProcessedImage(
      data,
      height,
      width,
      *channel_sums(pixels),
      'JPEG',
      True,
      orientation,
      phash=phash,
      crop_phashes=crop_phashes,
    )
  pixels = upright_pixels(pixels, orientation)
  source_size = _upright_size((width, height), orientation)
  resized = _resize_and_crop_array(
    pixels, spec, lambda: Image.fromarray(np.ascontiguousarray(pixels), 'RGB'), source_size
  )
  return _stored(resized, source_size, spec, 'JPEG', orientation)


def _process_with_pillow(image: Image.Image, data: bytes, spec: ImageSpec) -> ProcessedImage:
  """Every input through Pillow (with draft() DCT scaling for JPEG on the fast bilinear path)."""
  source_format = image.format
  size = image.size  # Before draft(), which makes it the DCT-scaled size.
  # DCT scaling is what makes bilinear fast; bicubic and Lanczos are chosen for quality, so they
  # resample the full decode (Lanczos: 57 dB vs 43.5 dB with DCT scaling, benchmarks/RESULTS.md).
  # draft() is asked for size // scale, which makes it pick exactly `scale` (PIL's JpegImagePlugin).
  scale = _dct_scale(*size, spec) if source_format == 'JPEG' else 1
  draft_size = (max(1, size[0] // scale), max(1, size[1] // scale)) if scale > 1 else None
  rgb, orientation = _to_upright_rgb(image, draft_size=draft_size)
  if _is_upright_rgb_baseline_jpeg(image) and spec.keeps_geometry(*size):
    pixels = _rgbx_view(rgb)
    phash, crop_phashes = image_hashes(pixels)
    return ProcessedImage(
      data,
      rgb.height,
      rgb.width,
      *channel_sums(pixels),
      source_format,
      True,
      orientation,
      phash=phash,
      crop_phashes=crop_phashes,
    )
  source_size = _upright_size(size, orientation)
  resized = _resize_and_crop_array(_rgbx_view(rgb), spec, lambda: rgb, source_size)
  return _stored(resized, source_size, spec, source_format, orientation)


def _upright_size(size: Tuple[int, int], orientation: int) -> Tuple[int, int]:
  """(width, height) of an image stored as `size` once its EXIF `orientation` is applied."""
  return (size[1], size[0]) if orientation >= 5 else size


def _stored(
  resized: np.ndarray,
  source_size: Tuple[int, int],
  spec: ImageSpec,
  source_format: str,
  orientation: int,
) -> ProcessedImage:
  """Encodes the resized pixels and describes the stored JPEG; `source_size` is the upright input's
  (width, height) in pixels, before any DCT scaling."""
  encoded = _encode(resized, spec.jpeg_quality)
  sums, squares = channel_sums(resized)  # The pixels handed to the encoder (module docstring).
  width, height = source_size
  (left, top, right, bottom), _ = crop_box(width, height, spec)
  crop = (left / width, top / height, right / width, bottom / height)
  phash, crop_phashes = image_hashes(resized)
  return ProcessedImage(
    encoded,
    resized.shape[0],
    resized.shape[1],
    sums,
    squares,
    source_format,
    False,
    orientation,
    crop,
    phash,
    crop_phashes,
  )


def stored_pixel_sums(
  encoded: bytes,
) -> Tuple[np.ndarray, Tuple[int, int, int], Tuple[int, int, int]]:
  """Decodes a stored JPEG as readers do (libjpeg-turbo, accurate integer IDCT, fancy upsampling: the
  same pixels as Pillow, OpenCV and ``tf.io.decode_jpeg(dct_method='INTEGER_ACCURATE')``) and sums
  them.

  Returns:
    (uint8 [H, W, 3] RGB pixels, per-channel sums, per-channel sums of squares); see `channel_sums`.
  """
  pixels = decode_stored_jpeg(encoded)
  return (pixels, *channel_sums(pixels))


def decode_stored_jpeg(encoded: bytes) -> np.ndarray:
  """A stored record's `image/encoded` -> uint8 [H, W, 3] RGB, decoded as `stored_pixel_sums` decodes
  it (libjpeg-turbo through simplejpeg; the pixels the statistics were computed from).

  Raises:
    ValueError: the bytes are not a JPEG libjpeg-turbo can decode.
  """
  return simplejpeg.decode_jpeg(encoded, colorspace='RGB')


def channel_sums(pixels: np.ndarray) -> Tuple[Tuple[int, int, int], Tuple[int, int, int]]:
  """Exact per-channel sums of uint8 [H, W, C] pixels (C = 3 RGB or 4 RGBX; X is ignored).

  OpenCV's own integer-accumulating reductions of each channel plane: `cv2.norm` NORM_L1 and
  NORM_L2SQR add uint8 samples (and their squares) in int32 over blocks of at most 2**15 samples
  and the blocks in float64, exact while a total stays below 2**53 (255² x 8.9e7 pixels, the pixel
  limit, is 5.8e12). IPP is switched off for the call (per thread: `cv2.ipp`): its L2 norm rounds
  through a square root. Planes are split from a block of rows at a time into planes kept per
  thread (bounded memory at any image size); totals add up as Python integers.

  Returns:
    ((sum R, sum G, sum B), (sum R², sum G², sum B²)) as Python integers, in 0-255 units.
  """
  height, width, channels = pixels.shape
  rows = max(1, min(height, _PLANES_BLOCK_PIXELS // width))
  planes = getattr(_SCRATCH, 'planes', None)
  if planes is None or len(planes) != channels or planes[0].shape != (rows, width):
    # Whole arrays, not views of one buffer: cv2.split fills those ~3x faster.
    planes = _SCRATCH.planes = [np.empty((rows, width), np.uint8) for _ in range(channels)]
  sums, squares = [0, 0, 0], [0, 0, 0]
  use_ipp = cv2.ipp.useIPP()
  cv2.ipp.setUseIPP(False)
  try:
    for top in range(0, height, rows):
      block = pixels[top : top + rows]
      split = cv2.split(
        block, planes if block.shape[0] == rows else [plane[: block.shape[0]] for plane in planes]
      )
      for channel in range(3):
        sums[channel] += int(cv2.norm(split[channel], cv2.NORM_L1))
        squares[channel] += int(cv2.norm(split[channel], cv2.NORM_L2SQR))
  finally:
    cv2.ipp.setUseIPP(use_ipp)
  return tuple(sums), tuple(squares)


_PLANES_BLOCK_PIXELS = 1 << 16  # 256 KiB of uint8 planes at most (4 x 64 Ki), per thread
_SCRATCH = threading.local()


@functools.lru_cache(maxsize=4096)  # Pure; called up to 3 times an image, and sizes repeat.
def crop_box(
  width: int, height: int, spec: ImageSpec
) -> Tuple[Tuple[float, float, float, float], Tuple[int, int]]:
  """Geometry of resize-then-centre-crop, expressed on the source image.

  Args:
    width, height: source size in pixels.
  Returns:
    (box, size): `box` = (left, top, right, bottom) in source pixels (floats) of the region that
    becomes the output; `size` = (width, height) of the output in pixels.
  """
  box_w, box_h = float(width), float(height)
  if spec.resize_longer_side:  # Never up, never cropped (ffcv's max_resolution).
    scale = min(1.0, spec.resize_longer_side / max(width, height))
    return (0.0, 0.0, box_w, box_h), (max(1, round(width * scale)), max(1, round(height * scale)))
  if spec.center_crop == 0 and spec.resize_shorter_side:  # Aspect kept while resizing: cap strips.
    short = min(box_w, box_h)
    box_w, box_h = min(box_w, short * MAX_ASPECT_RATIO), min(box_h, short * MAX_ASPECT_RATIO)
  scale = spec.resize_shorter_side / min(width, height) if spec.resize_shorter_side else 1.0
  if not spec.upscale:
    scale = min(scale, 1.0)
  out_w, out_h = max(1, round(box_w * scale)), max(1, round(box_h * scale))
  if spec.center_crop:
    if spec.upscale:
      out_w, out_h = min(spec.center_crop, out_w), min(spec.center_crop, out_h)
    else:  # The largest centred square that fits (the target's own square for images big enough).
      out_w = out_h = min(spec.center_crop, out_w, out_h)
    box_w, box_h = out_w / scale, out_h / scale
  box_w, box_h = min(box_w, width), min(box_h, height)  # Rounding must not leave the image.
  left, top = (width - box_w) / 2, (height - box_h) / 2
  return (left, top, left + box_w, top + box_h), (out_w, out_h)


def resize_and_crop(image: Image.Image, spec: ImageSpec) -> np.ndarray:
  """Resizes the shorter side and centre-crops an RGB image, resampling only the crop box.

  Args:
    image: an RGB PIL image (already upright).
  Returns:
    uint8 [H, W, 3] RGB array of the size `crop_box` gives.
  """
  return _resize_and_crop_array(_rgbx_view(image), spec, lambda: image)[..., :3]


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
  """Encodes uint8 [H, W, 3] RGB as a baseline JPEG (4:2:0 chroma; libjpeg-turbo via simplejpeg)."""
  return _encode(rgb, quality)


def _encode(pixels: np.ndarray, quality: int) -> bytes:
  """Baseline 4:2:0 JPEG of uint8 [H, W, 3] RGB or [H, W, 4] RGBX pixels (X is padding)."""
  colorspace = 'RGBX' if pixels.shape[2] == 4 else 'RGB'
  return simplejpeg.encode_jpeg(
    np.ascontiguousarray(pixels), quality=quality, colorspace=colorspace, colorsubsampling='420'
  )


def _rgbx_view(image: Image.Image) -> np.ndarray:
  """uint8 [H, W, 4] view of an RGB PIL image's own memory (Pillow keeps RGB as RGBX), without a
  copy, through Pillow's Arrow export; a copy only when Pillow's memory is split into blocks."""
  try:
    buffer = pyarrow.array(image).buffers()[-1]
    return np.frombuffer(buffer, np.uint8).reshape(image.height, image.width, 4)
  except (ValueError, TypeError, AttributeError, pyarrow.ArrowException):
    return np.asarray(image.convert('RGBX'))


def _resize_and_crop_array(
  pixels: np.ndarray,
  spec: ImageSpec,
  as_image: Callable[[], Image.Image],
  source_size: Optional[Tuple[int, int]] = None,
) -> np.ndarray:
  """Resize-then-centre-crop of upright uint8 [H, W, C] pixels (C = 3 RGB or 4 RGBX).

  `source_size` is the upright input's (width, height) when `pixels` is a DCT-scaled decode of it:
  the output size and the crop box come from the input's own geometry (so every decode path stores
  the same size), and the box is then mapped onto `pixels`. The fast bilinear step (< 2x left) is
  `cv2.resize` of the crop box rounded to whole source pixels; any other case resamples `as_image()`
  (the same pixels as a PIL image) with Pillow's antialiased filter. Returns uint8 [h, w, C']
  (C' = C on the OpenCV step, 4 from Pillow).
  """
  height, width = pixels.shape[:2]
  source_width, source_height = source_size or (width, height)
  (left, top, right, bottom), size = crop_box(source_width, source_height, spec)
  sx, sy = width / source_width, height / source_height
  left, top, right, bottom = left * sx, top * sy, right * sx, bottom * sy
  box = (left, top, right, bottom)
  factor = max((right - left) / size[0], (bottom - top) / size[1])
  if size == (width, height) and factor == 1.0:
    return pixels
  if spec.fast and spec.resample == 'bilinear' and 1.0 <= factor < 2.0:
    # The crop box rounded to whole source pixels (< 0.5 px, so < 0.5 output px when downscaling),
    # then one bilinear step of < 2x. Upscaling takes Pillow's exact box instead: there half a
    # source pixel would be up to half the output (a 2x3 image blown up to 256x256).
    (x0, x1), (y0, y1) = _whole_pixels(left, right, width), _whole_pixels(top, bottom, height)
    return cv2.resize(_opencv_layout(pixels[y0:y1, x0:x1]), size, interpolation=cv2.INTER_LINEAR)
  return _rgbx_view(as_image().resize(size, RESAMPLE_FILTERS[spec.resample], box=box))


def _whole_pixels(low: float, high: float, limit: int) -> Tuple[int, int]:
  """[low, high) in source pixels rounded to whole pixels, never empty and inside [0, limit].

  Rounding each edge on its own can empty a box narrower than a pixel: the one-pixel box of a 1x320
  image's centre is [159.5, 160.5), and Python rounds both edges to 160. Such a box keeps the pixel
  its rounded start names (the one under its centre, or its lower neighbour at a tie).
  """
  start = min(int(round(low)), limit - 1)
  return start, max(start + 1, int(round(high)))


def _opencv_layout(pixels: np.ndarray) -> np.ndarray:
  """`pixels` itself when OpenCV can read it in place (rows may be strided, pixels and channels must be
  packed, as in a crop of a decoded image), else a contiguous copy (an EXIF-rotated view)."""
  channels = pixels.shape[2]
  if pixels.strides[2] == 1 and pixels.strides[1] == channels and pixels.strides[0] > 0:
    return pixels
  return np.ascontiguousarray(pixels)


def _dct_scale(width: int, height: int, spec: ImageSpec) -> int:
  """The power-of-two DCT scale (libjpeg-turbo's 1/s decode) for a `width` x `height` JPEG on the fast
  bilinear path: the largest s in (1, 2, 4, 8) that keeps the decode at or above the target on the
  side the policy fixes (min(width, height) // resize_shorter_side >= s, or max(width, height) //
  resize_longer_side >= s); 1 for every other filter and policy. The shorter side also keeps at
  least 8 pixels per scale step (min(width, height) // 8 >= s): libjpeg scales whole 8x8 blocks, so
  in a narrower image the edge padding of its one partial block would become part of the picture (a
  5 px wide strip at 1/4 came out 40% darker).
  """
  if not (spec.fast and spec.resample == 'bilinear'):
    return 1
  if spec.resize_longer_side:
    ratio = max(width, height) // spec.resize_longer_side
  elif spec.resize_shorter_side:
    ratio = min(width, height) // spec.resize_shorter_side
  else:
    return 1
  ratio = min(ratio, min(width, height) // 8)
  return next(s for s in (8, 4, 2, 1) if ratio >= s or s == 1)


# EXIF orientation -> Pillow's transpose that makes the image upright (ImageOps.exif_transpose's
# table; that function also rewrites the EXIF block, which fails on tags of a malformed type).
_UPRIGHT_TRANSPOSE = {
  2: Image.Transpose.FLIP_LEFT_RIGHT,
  3: Image.Transpose.ROTATE_180,
  4: Image.Transpose.FLIP_TOP_BOTTOM,
  5: Image.Transpose.TRANSPOSE,
  6: Image.Transpose.ROTATE_270,
  7: Image.Transpose.TRANSVERSE,
  8: Image.Transpose.ROTATE_90,
}
# EXIF orientation -> the view of the stored [H, W, C] array that is upright (as _UPRIGHT_TRANSPOSE).
_UPRIGHT_VIEW = {
  1: lambda a: a,
  2: lambda a: a[:, ::-1],
  3: lambda a: a[::-1, ::-1],
  4: lambda a: a[::-1],
  5: lambda a: a.transpose(1, 0, 2),
  6: lambda a: a.transpose(1, 0, 2)[:, ::-1],
  7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
  8: lambda a: a.transpose(1, 0, 2)[::-1],
}

# The same turns by OpenCV, which copies the decoded image in cache-sized blocks: numpy's copy of a
# turned view walks memory with a stride of a row, ~10x slower (1.2 ms against 0.12 ms for a 648 x
# 486 decode), which was the most of what an EXIF-rotated phone photo cost beyond an upright one.
_UPRIGHT_OPENCV = {
  2: lambda a: cv2.flip(a, 1),
  3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
  4: lambda a: cv2.flip(a, 0),
  5: cv2.transpose,
  6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
  7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
  8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def upright_pixels(pixels: np.ndarray, orientation: int) -> np.ndarray:
  """uint8 [H, W, C] pixels as stored -> the upright image for EXIF `orientation` 1-8 (a contiguous
  copy; `pixels` itself for 1): the same values as the view _UPRIGHT_VIEW gives (lossless turns)."""
  if orientation == 1:
    return pixels
  turned = _UPRIGHT_OPENCV[orientation](np.ascontiguousarray(pixels))
  return turned.reshape(turned.shape[:2] + pixels.shape[2:])  # OpenCV drops a last axis of 1.


def _to_upright_rgb(
  image: Image.Image, draft_size: Optional[Tuple[int, int]]
) -> Tuple[Image.Image, int]:
  """Decodes the first frame completely, applies EXIF orientation and converts to RGB uint8.

  Returns:
    (the upright RGB image, the EXIF orientation that was applied).
  """
  try:
    if draft_size is not None:
      image.draft('RGB', draft_size)  # DCT-domain power-of-two scaling; never below draft_size.
    image.seek(0)
    image.load()
    orientation = _orientation(image)  # After load: PNG may keep its eXIf chunk after the pixels.
    if orientation != 1:
      image = image.transpose(_UPRIGHT_TRANSPOSE[orientation])
    return _to_rgb(image), orientation
  except ImageRejected:
    raise
  except Exception as e:  # Truncated streams, bad CRCs, broken chunks: all mean "do not store".
    raise ImageRejected(f'truncated or corrupt {image.format} data ({describe_error(e)})') from None


def _to_rgb(image: Image.Image) -> Image.Image:
  """RGB uint8 from any Pillow mode: 16-bit and 32-bit integer samples scaled by 1/257, float
  samples clipped to 0-255, transparency composited on white."""
  mode = image.mode
  if mode == 'RGB':
    return image
  if mode.startswith('I') or mode == 'F':
    values = np.asarray(image).astype(np.float64)
    if mode != 'F':
      values = values / 257.0
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(gray[..., None], 3, axis=2), 'RGB')
  if mode == 'P' and 'transparency' in image.info or mode in ('PA', 'LA', 'La', 'RGBA', 'RGBa'):
    rgba = image.convert('RGBA')
    background = Image.new('RGBA', rgba.size, _WHITE + (255,))
    return Image.alpha_composite(background, rgba).convert('RGB')
  return image.convert('RGB')


def _is_upright_rgb_baseline_jpeg(image: Image.Image) -> bool:
  """True for a 3-component YCbCr/RGB, non-progressive JPEG without an EXIF rotation."""
  if image.format != 'JPEG' or image.mode != 'RGB' or image.info.get('progressive'):
    return False
  return _orientation(image) == 1


def _orientation(image: Image.Image) -> int:
  """EXIF orientation tag (1-8; 1 = upright, also when absent or invalid)."""
  value = image.getexif().get(_EXIF_ORIENTATION, 1)
  return value if value in range(1, 9) else 1


def describe_error(error: BaseException) -> str:
  """'Type: message' (message cut at 200 characters), without object addresses, so that reject
  reasons are the same on every run."""
  text = re.sub(r' (object )?at 0x[0-9a-fA-F]+', '', str(error)).strip() or 'no detail'
  return f'{type(error).__name__}: {text[:200]}'
