"""The codec builds that decide the stored bytes, and the check that every worker has the driver's.

Byte-identical shards on every machine need the same JPEG codecs everywhere: Pillow and the
libjpeg-turbo it bundles (decode of non-RGB JPEGs and every other format, encode), simplejpeg and
its own statically linked libjpeg-turbo (the strict RGB/greyscale decode and the encode), and OpenCV
(the resize; its libjpeg is unused but named by its build). A different build may round one DCT
coefficient differently, and every record after it then differs. setup.py's version ranges let a
worker resolve other versions than the driver, so constraints.txt pins the tested ones (scripts and
Dataflow workers install with it), and the shard writer refuses to write when its worker's versions
differ from the driver's: `check_codecs` in `WriteShardFn.setup()`.

zlib counts only for --compression gzip (Beam's gzip writer calls it; another zlib may compress the
same records to other bytes), array-record only for --file_format array_record (its writer lays out
the container). numpy and protobuf are recorded in provenance.json (`package_versions`) but not
checked: the bytes do not depend on them (exact integer sums, deterministic serialization).
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import re
import zlib
from typing import Dict, List, Mapping, Optional

from transforms.output.file_format import FileFormat

# The distributions constraints.txt pins for the workers (scripts/worker_requirements.py): the
# codecs and numpy, whose ABI their wheels are built against.
WORKER_PINNED_DISTRIBUTIONS = ('pillow', 'simplejpeg', 'opencv-python-headless', 'numpy')
_SIMPLEJPEG_TURBO = re.compile(rb'libjpeg-turbo version ([0-9][0-9.]*)')
_OPENCV_JPEG = re.compile(r'^\s*JPEG:\s*(.+?)\s*$', re.MULTILINE)


class CodecMismatch(RuntimeError):
  """A worker's codec builds differ from the driver's; the message names each difference."""


@functools.lru_cache(maxsize=None)
def _jpeg_codecs() -> Dict[str, str]:
  import cv2  # pylint: disable=import-outside-toplevel
  import PIL  # pylint: disable=import-outside-toplevel
  import simplejpeg  # pylint: disable=import-outside-toplevel
  from PIL import features  # pylint: disable=import-outside-toplevel

  opencv_jpeg = _OPENCV_JPEG.search(cv2.getBuildInformation())
  return {
    'pillow': PIL.__version__,
    'pillow libjpeg-turbo': (
      features.version('libjpeg_turbo') or f'none (libjpeg {features.version("jpg")})'
    ),
    'simplejpeg': simplejpeg.__version__,
    'simplejpeg libjpeg-turbo': _simplejpeg_turbo(simplejpeg) or 'unknown',
    'opencv': cv2.__version__,
    'opencv libjpeg': opencv_jpeg.group(1) if opencv_jpeg else 'unknown',
  }


def _simplejpeg_turbo(module) -> Optional[str]:
  """The libjpeg-turbo version simplejpeg links statically: simplejpeg has no API for it, but the
  library's version string is in its extension module (~1 MB, read once per process)."""
  try:
    with open(module._jpeg.__file__, 'rb') as f:  # pylint: disable=protected-access
      match = _SIMPLEJPEG_TURBO.search(f.read())
  except (AttributeError, OSError):
    return None
  return match.group(1).decode('ascii') if match else None


def codec_versions(
  compression: str = 'none', file_format: str = FileFormat.TFRECORD
) -> Dict[str, str]:
  """{codec: version} of the builds this process encodes and decodes with (the module docstring says
  which count); 'zlib' too for --compression gzip, 'array-record' for --file_format array_record."""
  versions = dict(_jpeg_codecs())
  if compression == 'gzip':
    versions['zlib'] = zlib.ZLIB_RUNTIME_VERSION
  if file_format == FileFormat.ARRAY_RECORD:
    versions['array-record'] = _distribution_version('array-record')
  return versions


def _distribution_version(name: str) -> str:
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return 'not installed'


def package_versions(
  compression: str = 'none', file_format: str = FileFormat.TFRECORD
) -> Dict[str, str]:
  """What provenance.json records: Python, Beam, numpy, protobuf, google-crc32c and the codecs."""
  import apache_beam  # pylint: disable=import-outside-toplevel
  import numpy  # pylint: disable=import-outside-toplevel

  versions = {
    'python': platform.python_version(),
    'apache-beam': apache_beam.__version__,
    'numpy': numpy.__version__,
  }
  for distribution in ('protobuf', 'google-crc32c'):
    versions[distribution] = _distribution_version(distribution)
  versions.update(codec_versions(compression, file_format))
  return dict(sorted(versions.items()))


def mismatches(expected: Mapping[str, str], actual: Mapping[str, str]) -> List[str]:
  """'pillow 12.1.1 here, 12.3.0 on the driver' for each codec whose versions differ."""
  return [
    f'{name} {actual.get(name, "missing")} here, {expected[name]} on the driver'
    for name in sorted(expected)
    if actual.get(name) != expected[name]
  ]


def check_codecs(expected: Mapping[str, str]) -> None:
  """Raises CodecMismatch unless this process has the codec versions `expected` (the driver's
  codec_versions(), whose keys say which codecs count).

  Raises:
    CodecMismatch: naming each codec whose version differs, and how to fix it.
  """
  different = mismatches(
    expected,
    codec_versions(
      'gzip' if 'zlib' in expected else 'none',
      FileFormat.ARRAY_RECORD if 'array-record' in expected else FileFormat.TFRECORD,
    ),
  )
  if different:
    raise CodecMismatch(
      "this worker's image codecs differ from the driver's, so its shards would not be "
      'byte-identical to a run elsewhere: ' + '; '.join(different) + '. Install the versions of '
      'constraints.txt on the workers (pip install -c constraints.txt ...; run_dataflow.sh passes '
      "them to Dataflow as --requirements_file), or run the driver with the workers' versions."
    )
