"""Property-based fuzzing of the decode function with mutated real JPEG and PNG bytes.

Properties: for any bytes, `process_image` returns a stored JPEG or raises `ImageRejected`; nothing
else, within a bounded time and memory. For mutated JPEGs, the fast libjpeg (simplejpeg) decode
gives exactly the outcome of the Pillow path: the same verdict and reason, or the same stored bytes.

CI runs FUZZ_EXAMPLES (default 2000) examples per seed file. The default is measured, not guessed: a
JPEG whose header was mutated to 320x1 (an empty crop box that stopped whole conversions) is the
~620th example of the JPEG seed (611 examples passed, 625 found it), so 2000 leaves a margin; the
whole file takes ~2-3 minutes here. A longer run: `FUZZ_EXAMPLES=20000 ./run_tests.sh
tests/test_fuzz.py` (see docs/decoding.md).
"""

import os
import random
import time

import psutil
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import SAMPLE_DIR
from transforms.imaging import image as image_lib
from transforms.imaging.image import ImageRejected, ImageSpec, process_image

pytestmark = pytest.mark.slow  # FUZZ_EXAMPLES examples per seed file: ~1-2 minutes here.

SEEDS = {
  'jpeg': (SAMPLE_DIR / 'object' / 'gc_cup.JPEG').read_bytes(),
  'png': (SAMPLE_DIR / 'animal' / 'sk_chelsea.png').read_bytes(),
  'cmyk': (SAMPLE_DIR / 'flower' / 'mate_yellowflower_cmyk.JPEG').read_bytes(),
}
EXAMPLES = int(os.environ.get('FUZZ_EXAMPLES', '2000'))
# A fuzzed header can claim up to this many pixels; the limit is what bounds time and memory.
SPEC = ImageSpec(max_image_pixels=4_000_000)
SECONDS_PER_INPUT = 5.0
MAX_RSS_GROWTH = 100 << 20  # over the leak test's mutants (~50 KB an image would exceed it)
LEAK_EXAMPLES, LEAK_WARM_UP = 2000, 200


def mutate(seed: bytes, integer, choice, blob) -> bytes:
  """1-8 mutations of `seed`; `integer(a, b)`, `choice(options)` and `blob(n1, n2)` draw the random
  values (from hypothesis in the property tests, from a seeded `random.Random` in the leak test)."""
  data = bytearray(seed)
  for _ in range(integer(1, 8)):
    kind = choice(['flip', 'set', 'truncate', 'insert', 'delete', 'header'])
    at = integer(0, max(0, len(data) - 1))
    if kind == 'flip':
      data[at] ^= 1 << integer(0, 7)
    elif kind == 'set':
      data[at] = integer(0, 255)
    elif kind == 'truncate':
      del data[at:]
    elif kind == 'insert':
      data[at:at] = blob(1, 64)
    elif kind == 'delete':
      del data[at : at + integer(1, 64)]
    else:  # Headers hold the sizes, tables and markers: hit them more often.
      at = integer(0, min(len(data), 400))
      data[at : at + 1] = bytes([integer(0, 255)])
    if not data:
      break
  return bytes(data)


@st.composite
def mutated(draw, seed: bytes):
  return mutate(
    seed,
    lambda a, b: draw(st.integers(a, b)),
    lambda o: draw(st.sampled_from(o)),
    lambda n1, n2: draw(st.binary(min_size=n1, max_size=n2)),
  )


@pytest.mark.parametrize('seed', SEEDS)
def test_mutated_images_are_stored_or_rejected(seed):
  outcomes = {'stored': 0, 'rejected': 0}

  @settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
  )
  @given(mutated(SEEDS[seed]))
  def check(data):
    start = time.monotonic()
    try:
      stored = process_image(data, SPEC)
      assert stored.encoded[:2] == b'\xff\xd8' and stored.width == stored.height == 256
      outcomes['stored'] += 1
    except ImageRejected as e:
      assert e.reason
      outcomes['rejected'] += 1
    assert time.monotonic() - start < SECONDS_PER_INPUT

  check()
  assert outcomes['rejected'] > 0  # The mutations really produce bad files.
  print(f'{seed}: {outcomes}')


@pytest.mark.parametrize('seed', SEEDS)
def test_mutated_images_leak_no_memory(seed):
  """RSS stays flat over LEAK_EXAMPLES mutants after a warm-up. A plain seeded loop, not hypothesis:
  hypothesis keeps what it generated (~1.4 GB over 20,000 mutants of the PNG seed with an empty test
  body), which would hide or fake a leak of ours."""
  rng = random.Random(seed)
  process = psutil.Process()
  for i in range(LEAK_EXAMPLES):
    if i == LEAK_WARM_UP:
      rss_before = process.memory_info().rss
    try:
      mutant = mutate(
        SEEDS[seed], rng.randint, rng.choice, lambda a, b: rng.randbytes(rng.randint(a, b))
      )
      process_image(mutant, SPEC)
    except ImageRejected:
      pass
  growth = process.memory_info().rss - rss_before
  assert growth < MAX_RSS_GROWTH, f'{growth >> 20} MiB more after {LEAK_EXAMPLES} mutants'


def _outcome(data: bytes, through_pillow: bool):
  try:
    if through_pillow:
      return image_lib._process_with_pillow(
        image_lib.open_image(data, SPEC.max_image_pixels), data, SPEC
      )
    return process_image(data, SPEC)
  except ImageRejected as e:
    return 'rejected: ' + e.reason


def test_an_exif_tag_of_the_wrong_type_is_read_alike_on_both_paths():
  """The mutant the test below found in CI: byte 53 of an EXIF-rotated photo turns its Software tag
  (ASCII) into ImageWidth, which Pillow reads but cannot write back; rotating must not rewrite it."""
  data = bytearray((SAMPLE_DIR / 'animal' / 'gc_koala.JPEG').read_bytes())
  assert data[53:56] == b'\x31\x00\x02'  # tag 0x0131 (Software), type 2 (ASCII)
  data[53] = 0  # tag 0x0100 (ImageWidth) holding ASCII
  fast, pillow = _outcome(bytes(data), False), _outcome(bytes(data), True)
  assert not isinstance(pillow, str), pillow
  assert fast == pillow


@pytest.mark.parametrize('seed', ['jpeg', 'gray', 'rotated'])
def test_libjpeg_path_matches_the_pillow_path_on_mutated_jpegs(seed):
  data = {
    'jpeg': SEEDS['jpeg'],
    'gray': (SAMPLE_DIR / 'landscape' / 'kde_coldripple_gray.JPEG').read_bytes(),
    'rotated': (SAMPLE_DIR / 'animal' / 'gc_koala.JPEG').read_bytes(),
  }[seed]
  outcomes = {'same bytes': 0, 'same rejection': 0}

  @settings(
    max_examples=max(50, EXAMPLES // 2),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
  )
  @given(mutated(data))
  def check(mutant):
    fast, pillow = _outcome(mutant, False), _outcome(mutant, True)
    assert fast == pillow
    outcomes['same rejection' if isinstance(fast, str) else 'same bytes'] += 1

  check()
  assert outcomes['same bytes'] > 0 and outcomes['same rejection'] > 0, outcomes
  print(f'{seed}: {outcomes}')
