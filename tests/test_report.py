"""pipeline.report: the PNG/HTML report, checked against the shards it claims to show."""

from __future__ import annotations

import base64
import gzip
import io
import json
import pathlib
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from conftest import SAMPLE_DIR
from pipeline import report
from transforms.records import Reject

MAGENTA = (255, 0, 255)


def _png(path: pathlib.Path) -> np.ndarray:
  return np.asarray(Image.open(path).convert('RGB'))


def _record(output: pathlib.Path, shard: str, index: int, compression: str = '') -> dict:
  """Record `index` of a shard, read with TensorFlow's own TFRecord reader (not the report's)."""
  serialized = next(
    iter(tf.data.TFRecordDataset(str(output / shard), compression).skip(index).take(1))
  )
  return tf.io.parse_single_example(
    serialized,
    {
      'image/encoded': tf.io.FixedLenFeature([], tf.string),
      'image/filename': tf.io.FixedLenFeature([], tf.string),
      'image/class/label': tf.io.FixedLenFeature([], tf.int64),
    },
  )


def _tile_in_png(png: np.ndarray, tile: report.Tile) -> np.ndarray:
  size = report.TILE_PIXELS
  return png[tile.png_y : tile.png_y + size, tile.png_x : tile.png_x + size]


def _expected_tiles(output: pathlib.Path, per_class: int) -> int:
  stats = json.loads((output / 'stats.json').read_text())
  manifest = json.loads((output / 'manifest.json').read_text())
  totals = {}
  for split in manifest['splits']:
    for name, n in stats[split]['class_counts'].items():
      totals[name] = totals.get(name, 0) + n
  return sum(min(per_class, n) for n in totals.values())


@pytest.fixture(scope='module')
def rendered(readers_offset1_output, tmp_path_factory):
  """The CLI run once on the offset-1 output (with two rejects): (output dir, png path)."""
  png = tmp_path_factory.mktemp('report') / 'report.png'
  assert report.main([str(readers_offset1_output), '--output', str(png)]) == 0
  return readers_offset1_output, png


def test_png_size_and_html_page(rendered):
  output, png = rendered
  image = Image.open(png)
  assert image.format == 'PNG'
  data = report.read_report_data(str(output))
  sheet_rows = len(data.samples)
  assert image.size == (
    report.MIN_WIDTH,
    report.HEADER_HEIGHT
    + sheet_rows * (report.TILE_PIXELS + report.TILE_GAP)
    + report.TILE_GAP
    + 30
    + 2 * report.CHART_HEIGHT,
  )
  page = png.with_suffix('.html').read_text()
  embedded = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
  assert base64.b64decode(embedded) == png.read_bytes()
  for split, entry in json.loads((output / 'manifest.json').read_text())['splits'].items():
    assert f'{split}: {entry["num_examples"]} examples in {entry["num_shards"]} shard(s)' in page


@pytest.mark.slow
def test_every_tile_is_its_shard_record_downscaled(rendered):
  output, png_path = rendered
  png = _png(png_path)
  result = report.render(report.read_report_data(str(output)), str(png_path.parent / 'again.png'))
  assert len(result.tiles) == _expected_tiles(output, report.PER_CLASS) == 5 * report.PER_CLASS
  assert np.array_equal(_png(png_path.parent / 'again.png'), png)  # rendering is deterministic
  offset = json.loads((output / 'manifest.json').read_text())['label_offset']
  for tile in result.tiles:
    record = _record(output, tile.sample.shard, tile.sample.index)
    assert record['image/filename'].numpy().decode() == tile.sample.filename
    assert int(record['image/class/label']) == tile.sample.label == tile.row + offset
    decoded = tf.io.decode_jpeg(record['image/encoded'], channels=3).numpy()
    assert np.array_equal(_tile_in_png(png, tile), report.tile_image(decoded)), tile.sample.filename


@pytest.mark.slow
def test_tiles_show_the_stored_pixels_not_the_input_files(rendered):
  """The input photos (upright, full size, uncropped) make different tiles than the records do."""
  output, png_path = rendered
  png = _png(png_path)
  tiles = report.render(report.read_report_data(str(output)), str(png_path.parent / 'x.png')).tiles
  differing = 0
  for tile in tiles:
    with Image.open(SAMPLE_DIR / tile.sample.filename) as original:
      source = np.asarray(ImageOps.exif_transpose(original).convert('RGB'))
    differing += not np.array_equal(_tile_in_png(png, tile), report.tile_image(source))
  assert differing == len(tiles)


def _rewrite_first_record(shard: pathlib.Path, jpeg: bytes) -> None:
  """Replaces image/encoded of the shard's first record (TensorFlow's writer: valid framing)."""
  records = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(shard))]
  records[0].features.feature['image/encoded'].bytes_list.value[0] = jpeg
  with tf.io.TFRecordWriter(str(shard)) as writer:
    for example in records:
      writer.write(example.SerializeToString(deterministic=True))


@pytest.mark.slow
def test_an_altered_shard_shows_up_in_the_contact_sheet(sample_output, tmp_path):
  output = tmp_path / 'output'
  shutil.copytree(sample_output, output)
  first_shard = json.loads((output / 'manifest.json').read_text())['splits']['train']['shards'][0]
  buffer = io.BytesIO()
  Image.new('RGB', (256, 256), MAGENTA).save(buffer, 'JPEG', quality=95)
  _rewrite_first_record(output / first_shard['file'], buffer.getvalue())

  result = report.report(str(output), str(tmp_path / 'report.png'))
  altered = [
    t for t in result.tiles if t.sample.shard == first_shard['file'] and t.sample.index == 0
  ]
  assert len(altered) == 1
  pixels = _tile_in_png(_png(tmp_path / 'report.png'), altered[0]).reshape(-1, 3).astype(int)
  assert np.abs(pixels - MAGENTA).max() <= 2  # the whole tile is the magenta square
  others = [t for t in result.tiles if t is not altered[0]]
  png = _png(tmp_path / 'report.png')
  assert all(np.abs(_tile_in_png(png, t).astype(int) - MAGENTA).max() > 2 for t in others)


def test_reject_reasons_are_counted(rendered):
  output, png = rendered
  rejects = [json.loads(line) for line in (output / 'rejects.jsonl').read_text().splitlines()]
  assert len(rejects) == 2  # the fixture's truncated JPEG and text file
  counts = report.reject_counts([Reject.from_json(r) for r in rejects])
  assert sum(n for _, n in counts) == 2
  assert all(not re.search(r'\d|Error', reason) for reason, _ in counts)  # per-file details dropped
  page = png.with_suffix('.html').read_text()
  for reason, n in counts:
    assert f'<tr><td>{reason}</td><td>{n}</td></tr>' in page


def test_histograms_sample_evenly_from_every_shard(sample_output):
  manifest = json.loads((sample_output / 'manifest.json').read_text())
  full = report.read_report_data(str(sample_output), max_records=0)
  part = report.read_report_data(str(sample_output), max_records=4)
  for split, entry in manifest['splits'].items():
    assert len(full.num_bytes[split]) == entry['num_examples']
    quota = -(-4 // entry['num_shards'])
    assert len(part.num_bytes[split]) == sum(min(quota, s['num_examples']) for s in entry['shards'])
    assert all(n > 1000 for n in full.num_bytes[split])  # JPEG bytes, not lengths of something else
    options = manifest['options']
    assert set(full.sizes[split]) == {(options['center_crop'], options['center_crop'])}


def test_gzip_shards_are_read(sample_output, tmp_path):
  """The report reads whole-file gzip shards (as --compression gzip writes them) like plain ones."""
  output = tmp_path / 'output'
  shutil.copytree(sample_output, output)
  manifest = json.loads((output / 'manifest.json').read_text())
  for entry in manifest['splits'].values():
    for shard in entry['shards']:
      path = output / shard['file']
      path.write_bytes(gzip.compress(path.read_bytes()))
  manifest['compression'] = 'gzip'
  (output / 'manifest.json').write_text(json.dumps(manifest))
  plain = report.read_report_data(str(sample_output), per_class=2)
  zipped = report.read_report_data(str(output), per_class=2)
  assert zipped.num_bytes == plain.num_bytes
  assert [s.filename for v in zipped.samples.values() for s in v] == [
    s.filename for v in plain.samples.values() for s in v
  ]


@pytest.mark.parametrize('counts, per_class', [([3, 0, 1], 2), ([1], 4), ([5, 5], 5)])
def test_contact_sheet_layout(counts, per_class):
  rng = np.random.default_rng(0)
  rows = [
    [
      report.Sample(r, f'{r}/{i}', 's', i, rng.integers(0, 256, (30 + i, 50, 3), np.uint8))
      for i in range(n)
    ]
    for r, n in enumerate(counts)
  ]
  sheet, tiles = report.contact_sheet(rows, per_class, tile=16, gap=2)
  assert sheet.shape == (len(counts) * 18 + 2, per_class * 18 + 2, 3)
  assert len(tiles) == sum(min(n, per_class) for n in counts)
  for t in tiles:
    assert np.array_equal(
      sheet[t.y : t.y + 16, t.x : t.x + 16], report.tile_image(t.sample.image, 16)
    )
  used = np.zeros(sheet.shape[:2], bool)
  for t in tiles:
    used[t.y : t.y + 16, t.x : t.x + 16] = True
  assert (sheet[~used] == report.TILE_BACKGROUND).all()  # empty cells and gaps stay white


def test_tile_image_keeps_aspect_on_white():
  image = np.zeros((50, 100, 3), np.uint8)
  tile = report.tile_image(image, 20)
  assert tile.shape == (20, 20, 3)
  assert (tile[5:15] == 0).all() and (tile[:5] == 255).all() and (tile[15:] == 255).all()


@pytest.mark.parametrize(
  'sizes, bars',
  [
    ({'train': [(256, 256)] * 3, 'validation': [(256, 256)]}, 2),  # one size: one bar per split
    ({'train': [(200 + i, 300 - i) for i in range(40)], 'validation': []}, None),  # histograms
  ],
)
def test_size_chart_bars_or_histograms(sizes, bars):
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  data = report.ReportData({}, {}, [], [], {}, sizes, {})
  ax = Figure().add_subplot()
  report._draw_sizes(ax, data, sorted(sizes))  # pylint: disable=protected-access
  labels = [t.get_text() for t in ax.get_xticklabels()]
  if bars:
    assert len(ax.patches) == bars and labels == ['256x256']
  else:
    assert ax.get_xlabel() == 'pixels' and len(ax.patches) >= 2 * 30


def test_not_an_output_directory_is_a_clear_error(tmp_path, capsys):
  assert report.main([str(tmp_path), '--output', str(tmp_path / 'r.png')]) == 2
  assert 'manifest.json not found' in capsys.readouterr().err
  assert not (tmp_path / 'r.png').exists()


# ---------------------------------------------------------------------------------------------
# What the reader sees: names in any script, legends, an empty rejects chart, a quiet terminal.

SCRIPT_NAMES = ('猫', 'ねこ', 'кошка', '🐱cat', '\U0001f9a9')  # Chinese, Japanese, Cyrillic, emoji


@pytest.fixture(scope='module')
def script_names_output(tmp_path_factory):
  """Five classes named in several scripts, one or two photos each, no reject."""
  from conftest import convert  # pylint: disable=import-outside-toplevel

  work = tmp_path_factory.mktemp('script_names')
  photos = sorted(SAMPLE_DIR.glob('*/*.JPEG'))
  for i, name in enumerate(SCRIPT_NAMES):
    (work / 'photos' / name).mkdir(parents=True)
    for photo in photos[2 * i : 2 * i + 1 + (i == 0)]:
      shutil.copy(photo, work / 'photos' / name / photo.name)
  assert convert(work / 'photos', work / 'out') == 0
  return work / 'out'


def _glyph_messages(caplog, caught) -> list:
  return [str(w.message) for w in caught if 'missing from' in str(w.message)] + [
    r.getMessage() for r in caplog.records if 'missing from' in r.getMessage()
  ]


def test_class_names_in_any_script_are_drawn_or_escaped_never_boxes(
  script_names_output, tmp_path, caplog
):
  import warnings  # pylint: disable=import-outside-toplevel
  from pipeline.reporting.fonts import Glyphs, _charmap  # pylint: disable=import-outside-toplevel
  from matplotlib import font_manager  # pylint: disable=import-outside-toplevel

  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    result = report.report(str(script_names_output), str(tmp_path / 'report.png'))
  assert not _glyph_messages(caplog, caught)
  glyphs = Glyphs(SCRIPT_NAMES)
  paths = [
    font_manager.findfont(font_manager.FontProperties(family=f), fallback_to_default=False)
    for f in glyphs.families
  ]
  for char in ''.join(SCRIPT_NAMES):
    drawn = any(ord(char) in _charmap(path) for path in paths)
    assert drawn != (char in glyphs.missing), char  # each character drawn by a font, or escaped
  cuneiform = Glyphs(['x\U00012000'])  # no font here has it
  assert cuneiform.missing == {'\U00012000'} and cuneiform('x\U00012000') == 'x\\U00012000'
  assert Image.open(result.png).size == (result.width, result.height)


def test_without_rejects_the_chart_says_so(script_names_output):
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use('Agg')
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  data = report.read_report_data(str(script_names_output), per_class=1, max_records=4)
  assert data.stats['num_rejected'] == 0
  fig = Figure(figsize=(14, 8))
  report._draw_charts(fig, data, top=1.0, bottom=0.0)  # pylint: disable=protected-access
  rejects_axes = fig.axes[3]
  assert [t.get_text() for t in rejects_axes.texts] == [report.NO_REJECTS]
  assert not rejects_axes.patches and not rejects_axes.axison
  assert f'<p>{report.NO_REJECTS}</p>' in report.build_html(data, b'')


def test_legends_never_cover_a_bar(readers_offset1_output):
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use('Agg')
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  data = report.read_report_data(str(readers_offset1_output), per_class=1)
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=import-outside-toplevel,line-too-long

  fig = Figure(figsize=(14, 8.4))
  canvas = FigureCanvasAgg(fig)
  report._draw_charts(fig, data, top=1.0, bottom=0.0)  # pylint: disable=protected-access
  canvas.draw()
  renderer = canvas.get_renderer()
  legends = 0
  for ax in fig.axes:
    legend = ax.get_legend()
    if legend is None:
      continue
    legends += 1
    box = legend.get_window_extent(renderer)
    bars = [p.get_window_extent(renderer) for p in ax.patches if p.get_height() > 0]
    assert bars and not any(box.overlaps(bar) for bar in bars), ax.get_title()
  assert legends == 3


@pytest.mark.slow
def test_report_prints_one_line_on_a_terminal(readers_offset1_output, tmp_path):
  """Under a pseudo-terminal (script(1)), TensorFlow's C++ start-up lines must not show."""
  import os  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel

  if not shutil.which('script'):
    pytest.skip('script(1) from util-linux is not installed')
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  command = (
    f'{sys.executable} -W default -m pipeline.report {readers_offset1_output} '
    f'--output {tmp_path / "report.png"}'
  )
  done = subprocess.run(
    ['script', '-qec', command, '/dev/null'],
    capture_output=True,
    text=True,
    env=env,
    timeout=300,
    check=False,
  )
  lines = [line for line in done.stdout.replace('\r', '').splitlines() if line.strip()]
  assert done.returncode == 0, lines
  assert len(lines) == 1 and lines[0].startswith('wrote '), lines
