"""A one-page picture of an output directory: what training will see, and what was left out.

    python -m pipeline.report OUTPUT --output report.png   # or: folder2tfrecord report OUTPUT ...

writes report.png and report.html (the same picture plus the numbers as tables): a contact sheet of
the first `--per_class` examples of each class, decoded from the shards' own JPEG bytes (exactly the
pixels training reads); examples per class per split; histograms of stored width, height and JPEG
size from up to `--max_records` records per split taken evenly from every shard; mean/std per
channel and the reject reasons as stats.json counts them; the closest duplicates across splits side
by side (pipeline/reporting/duplicates.py). Shards are read through Beam's FileSystems with their
format's reader (transforms/output/file_format.py); images are decoded with `tf.io.decode_jpeg` as
in training, and drawn unscaled (`Figure.figimage`), so each tile's pixels are exactly
`tile_image()` of a record.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import dataclasses
import functools
import html
import io
import itertools
import math
import os
import sys
import tempfile
import textwrap
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from pipeline import extras
from pipeline.runtime import logs

with logs.held_import_logs():  # Beam may log a harmless warning while it is imported (see logs.py).
  from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from PIL import Image

from pipeline.command_line import parse_command_line
from pipeline.reporting.duplicates import DuplicatePair, pairs_sheet, read_duplicate_pairs
from pipeline.reporting.fonts import Glyphs
from transforms.output import file_format as file_formats
from transforms.output import layout
from transforms.imaging.example import parse_example
from transforms.records import Reject
from transforms.metadata.reject_reasons import count_reasons
from transforms.split.sharding import ordered_splits
from transforms.metadata.tfds_metadata import tfds_label_names

TILE_PIXELS = 112  # side of one contact-sheet tile
TILE_GAP = 4  # pixels between tiles
TILE_BACKGROUND = 255  # white around tiles and around images that are not square
LABEL_WIDTH = 170  # pixels left of the sheet for the class names
HEADER_HEIGHT = 110  # pixels above the sheet: title and two splits' mean/std lines
SUMMARY_LINE_HEIGHT = 20  # pixels per further split's line
CHART_HEIGHT = 420  # pixels per row of charts
MIN_WIDTH = 1400  # pixels
DPI = 100
PER_CLASS = 8
MAX_CLASSES = 16
MAX_RECORDS = 20000  # per split, for the histograms; 0 = every record
PAIRS_TITLE_HEIGHT = 24  # pixels above the duplicates section's tiles
# Axes fraction a legend takes per entry and for its frame (8-point lines, charts ~285 pixels high).
LEGEND_ENTRY_FRACTION = 0.07
LEGEND_MARGIN_FRACTION = 0.06
NAME_CHARS = 22  # characters a line of a class name left of the contact sheet (11 points)
TICK_LABEL_CHARS = 24  # characters of a class name under the examples-per-class chart
REASON_LABEL_CHARS = 26  # characters a line of a reject reason left of its bar (3 lines at most)
NO_REJECTS = 'no file was rejected'


@dataclasses.dataclass
class Sample:
  """One record's decoded image, for the contact sheet."""

  label: int
  filename: str
  shard: str
  index: int  # record index in the shard
  image: np.ndarray  # uint8 [H, W, 3], as decoded from image/encoded


@dataclasses.dataclass
class Tile:
  """Where a sample landed: row/col in the sheet and its top-left pixel in the sheet and in the PNG."""

  row: int
  col: int
  y: int
  x: int
  sample: Sample
  png_y: int = 0
  png_x: int = 0


@dataclasses.dataclass
class ReportData:
  """What the report shows, read from an output directory."""

  manifest: Dict
  stats: Dict
  label_names: List[str]  # label i -> name ("background" first with label_offset 1)
  rejects: List[Reject]
  samples: Dict[int, List[Sample]]  # label -> first samples in shard order
  sizes: Dict[str, List[Tuple[int, int]]]  # split -> (height, width) of the records read
  num_bytes: Dict[str, List[int]]  # split -> len(image/encoded) of the records read
  # the closest pairs across splits of duplicates.jsonl, with their images
  # (pipeline/reporting/duplicates.py)
  duplicate_pairs: List[DuplicatePair] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ReportResult:
  png: str
  html: str
  width: int
  height: int
  tiles: List[Tile]


@contextlib.contextmanager
def _native_stderr_held():
  """Descriptor 2 goes to a temporary file inside the block; what was written there is shown on the
  terminal only when the block raises.

  TensorFlow's C++ start-up lines (oneDNN, CUDA drivers: absl logs written before
  absl::InitializeLog) go straight to descriptor 2 and ignore TF_CPP_MIN_LOG_LEVEL.
  """
  sys.stderr.flush()
  terminal = os.dup(2)
  try:
    with tempfile.TemporaryFile() as held:
      os.dup2(held.fileno(), 2)
      try:
        yield
      except BaseException:
        os.dup2(terminal, 2)
        held.seek(0)
        sys.stderr.write(held.read().decode('utf-8', 'replace'))
        raise
  finally:
    os.dup2(terminal, 2)
    os.close(terminal)


@functools.lru_cache(maxsize=None)
def _tensorflow():
  """TensorFlow, imported and its JPEG kernel run once with descriptor 2 held (_native_stderr_held).

  Nothing else in this module imports TensorFlow: TF_CPP_MIN_LOG_LEVEL is set before it is, so its
  later C++ INFO and WARNING lines stay off the terminal too.
  """
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  with _native_stderr_held():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    tiny = io.BytesIO()
    Image.new('RGB', (8, 8)).save(tiny, format='JPEG')
    tf.io.decode_jpeg(tiny.getvalue(), channels=3)  # Loads the kernels and probes for devices.
  return tf


def decode_image(jpeg: bytes) -> np.ndarray:
  """JPEG bytes -> uint8 [H, W, 3] RGB with `tf.io.decode_jpeg`, the decoder tf.data and Model Garden
  train with (Pillow's newer libjpeg-turbo differs from it by a few levels in chroma upsampling)."""
  return _tensorflow().io.decode_jpeg(jpeg, channels=3).numpy()


def tile_image(image: np.ndarray, size: int = TILE_PIXELS) -> np.ndarray:
  """uint8 [H, W, 3] -> uint8 [size, size, 3]: fitted inside the square (bilinear, aspect kept),
  centred on white."""
  height, width = image.shape[:2]
  scale = size / max(height, width)
  new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
  resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))
  tile = np.full((size, size, 3), TILE_BACKGROUND, np.uint8)
  top, left = (size - new_h) // 2, (size - new_w) // 2
  tile[top : top + new_h, left : left + new_w] = resized
  return tile


def _shard_quota(max_records: int, num_shards: int) -> Optional[int]:
  return None if max_records <= 0 else max(1, math.ceil(max_records / max(1, num_shards)))


def read_report_data(
  output_dir: str,
  per_class: int = PER_CLASS,
  max_classes: int = MAX_CLASSES,
  max_records: int = MAX_RECORDS,
) -> ReportData:
  """Reads manifest, stats, labels, rejects and (a bounded number of) records of every split.

  Samples for the contact sheet are the first `per_class` records of each of the first `max_classes`
  labels, in split order (train, validation, test) then shard and record order.

  Raises:
    FileNotFoundError (via Beam): no manifest.json, i.e. not a finished output directory.
  """
  output, manifest = layout.read_output(output_dir)
  stats = layout.read_json(output.path(layout.STATS_FILE))
  # label i -> name; tolerates a labels.txt with or without the "background" line of label_offset 1
  label_names = tfds_label_names(
    manifest, layout.read_text(output.path(layout.LABELS_FILE)).splitlines()
  )
  rejects_path = output.path(layout.REJECTS_FILE)
  rejects = (
    [Reject.from_json(r) for r in layout.read_jsonl(rejects_path)]
    if FileSystems.exists(rejects_path)
    else []
  )
  offset = int(manifest['label_offset'])
  wanted = set(range(offset, offset + min(max_classes, int(manifest['num_classes']))))
  samples: Dict[int, List[Sample]] = collections.defaultdict(list)
  sizes: Dict[str, List[Tuple[int, int]]] = {}
  num_bytes: Dict[str, List[int]] = {}
  shard_format = file_formats.of_manifest(manifest)
  splits = ordered_splits(manifest['splits'])
  for split in splits:
    shards = manifest['splits'][split]['shards']
    quota = _shard_quota(max_records, len(shards))
    sizes[split], num_bytes[split] = [], []
    for shard in shards:
      with contextlib.closing(
        shard_format.read(output.path(shard['file']), manifest.get('compression', 'none'))
      ) as records:
        for index, data in enumerate(itertools.islice(records, quota)):
          example = parse_example(data).require('encoded', 'height', 'width', 'labels')
          sizes[split].append((example.height, example.width))
          num_bytes[split].append(len(example.encoded))
          # A multi-label record (transforms/inputs/manifest.py) is a sample of each of its labels.
          for label in example.labels:
            if label in wanted and len(samples[label]) < per_class:
              samples[label].append(
                Sample(
                  label, example.filename or '', shard['file'], index, decode_image(example.encoded)
                )
              )
  pairs = read_duplicate_pairs(output, manifest, decode_image)
  return ReportData(manifest, stats, label_names, rejects, dict(samples), sizes, num_bytes, pairs)


def contact_sheet(
  rows: Sequence[Sequence[Sample]],
  per_class: int = PER_CLASS,
  tile: int = TILE_PIXELS,
  gap: int = TILE_GAP,
) -> Tuple[np.ndarray, List[Tile]]:
  """Samples in rows (one row per class) -> (uint8 [H, W, 3] sheet, the tiles placed).

  The sheet is (len(rows) x per_class) cells of `tile` pixels with `gap` pixels around each;
  a class with fewer samples leaves its remaining cells white.
  """
  height = len(rows) * (tile + gap) + gap
  width = per_class * (tile + gap) + gap
  sheet = np.full((height, width, 3), TILE_BACKGROUND, np.uint8)
  tiles = []
  for r, row in enumerate(rows):
    for c, sample in enumerate(row[:per_class]):
      y, x = gap + r * (tile + gap), gap + c * (tile + gap)
      sheet[y : y + tile, x : x + tile] = tile_image(sample.image, tile)
      tiles.append(Tile(r, c, y, x, sample))
  return sheet, tiles


def reject_counts(rejects: Sequence[Reject]) -> List[Tuple[str, int]]:
  """(reason category, count), most frequent first (transforms/metadata/reject_reasons.py)."""
  return list(count_reasons(r.reason for r in rejects).items())


def data_reasons(data: ReportData) -> List[Tuple[str, int]]:
  """(reason category, count) as stats.json counts them (`reject_reasons`), the run summary's
  numbers; counted from rejects.jsonl for an output written before stats.json had them."""
  if 'reject_reasons' in data.stats:
    return list(data.stats['reject_reasons'].items())
  return reject_counts(data.rejects)


def _fmt(values) -> str:
  return '(' + ', '.join(f'{v:.1f}' for v in values) + ')'


def summary_lines(data: ReportData) -> List[str]:
  """One line per split: examples, shards, rejects, mean/std RGB in 0-255 units; a split that has
  only rejects (in stats.json, not in manifest.json) too, and the rejects without a split."""
  lines = []
  stats_splits = {k for k, v in data.stats.items() if isinstance(v, dict) and 'num_rejected' in v}
  for split in ordered_splits(set(data.manifest['splits']) | stats_splits):
    s = data.stats.get(split, {})
    entry = data.manifest['splits'].get(split, {'num_examples': 0, 'num_shards': 0})
    lines.append(
      f'{split}: {entry["num_examples"]} examples in {entry["num_shards"]} shard(s), '
      f'{s.get("num_rejected", 0)} rejected; mean RGB {_fmt(s.get("mean_rgb", []))}, '
      f'std RGB {_fmt(s.get("std_rgb", []))}'
    )
  if data.stats.get('num_rejected_without_split'):
    lines.append(
      f'no split: {data.stats["num_rejected_without_split"]} rejected before a split was chosen'
    )
  return lines


def _sample_rows(data: ReportData) -> Tuple[List[str], List[List[Sample]]]:
  labels = sorted(data.samples)
  return (
    [data.label_names[label] if label < len(data.label_names) else str(label) for label in labels],
    [data.samples[label] for label in labels],
  )


MAX_SIZE_BARS = 12  # distinct stored sizes drawn as bars; more make width/height histograms


def _draw_sizes(ax, data: ReportData, splits: Sequence[str]) -> None:
  """Stored sizes: a bar per distinct WxH when there are few (center-cropped outputs have one),
  else histograms of width and height."""
  distinct = sorted({(w, h) for split in splits for h, w in data.sizes[split]})
  if len(distinct) <= MAX_SIZE_BARS:
    positions = np.arange(len(distinct))
    width = 0.8 / max(1, len(splits))
    for i, split in enumerate(splits):
      counts = collections.Counter((w, h) for h, w in data.sizes[split])
      ax.bar(positions + i * width, [counts[d] for d in distinct], width, label=split)
    ax.set_xticks(positions + width * (len(splits) - 1) / 2)
    ax.set_xticklabels([f'{w}x{h}' for w, h in distinct])
    ax.set_xlabel('width x height (pixels)')
    ax.set_ylabel('records')
  else:
    for split in (s for s in splits if data.sizes[s]):
      dims = np.array(data.sizes[split])
      ax.hist(
        [dims[:, 1], dims[:, 0]], bins=30, label=[f'{split} width', f'{split} height'], alpha=0.7
      )
    ax.set_xlabel('pixels')
  _legend_in_headroom(ax)


def _legend_in_headroom(ax) -> None:
  """The legend in the upper right corner, in a band above the highest bar made for it (the y axis
  extended), so that it never covers a bar."""
  labels = ax.get_legend_handles_labels()[1]
  if not labels:
    return
  band = LEGEND_ENTRY_FRACTION * len(labels) + LEGEND_MARGIN_FRACTION
  low, high = ax.get_ylim()
  ax.set_ylim(low, low + (high - low) / (1 - band))
  ax.legend(loc='upper right', fontsize=8)


def _fitted(text: str, width: int, max_lines: int = 1) -> str:
  """`text` wrapped at `width` characters into at most `max_lines` lines, cut with '…' after."""
  lines = textwrap.wrap(text, width, break_on_hyphens=False) or ['']
  if len(lines) > max_lines:
    lines = lines[:max_lines]
    lines[-1] = lines[-1][: width - 1] + '…'
  return '\n'.join(lines)


def _draw_charts(
  fig, data: ReportData, top: float, bottom: float, glyphs: Callable[[str], str] = str
) -> None:
  """Four charts in two rows between figure fractions bottom..top; `glyphs` writes texts that hold
  characters no font has (pipeline/reporting/fonts.py)."""
  from matplotlib.ticker import MaxNLocator  # pylint: disable=import-outside-toplevel

  row_h = (top - bottom) / 2
  splits = ordered_splits(data.manifest['splits'])
  # the right column starts further in: its y labels (reject reasons) are words, not numbers
  axes = [
    fig.add_axes(
      [
        (0.06, 0.62)[col],
        bottom + row_h * (1 - row) + 0.12 * row_h,
        (0.40, 0.36)[col],
        0.68 * row_h,
      ]
    )
    for row in range(2)
    for col in range(2)
  ]

  offset = int(data.manifest['label_offset'])
  classes = data.label_names[offset:]
  positions = np.arange(len(classes))
  width = 0.8 / max(1, len(splits))
  for i, split in enumerate(splits):
    counts = data.stats.get(split, {}).get('class_counts', {})
    axes[0].bar(positions + i * width, [counts.get(c, 0) for c in classes], width, label=split)
  axes[0].set_xticks(positions + width * (len(splits) - 1) / 2)
  axes[0].set_xticklabels(
    [_fitted(glyphs(c), TICK_LABEL_CHARS) for c in classes],
    rotation=45 if len(classes) <= 40 else 90,
    ha='right',
    fontsize=8 if len(classes) <= 40 else 4,
  )
  axes[0].set_ylabel('examples')
  axes[0].set_title('Examples per class per split (stats.json)')
  _legend_in_headroom(axes[0])

  _draw_sizes(axes[1], data, splits)
  for split in splits:
    axes[2].hist(np.array(data.num_bytes[split]) / 1024, bins=30, label=split, alpha=0.7)
  read = sum(len(v) for v in data.num_bytes.values())
  total = sum(e['num_examples'] for e in data.manifest['splits'].values())
  axes[1].set_title(f'Stored image size, pixels ({read} of {total} records)')
  axes[2].set_title(f'Encoded JPEG size, KiB ({read} of {total} records)')
  axes[2].set_xlabel('KiB')
  _legend_in_headroom(axes[2])

  reasons = data_reasons(data)
  rejected = data.stats.get('num_rejected', len(data.rejects))
  axes[3].set_title(f'Reject reasons (stats.json, {rejected} file{"s" * (rejected != 1)})')
  if reasons:
    axes[3].barh(
      [_fitted(glyphs(r), REASON_LABEL_CHARS, 3) for r, _ in reasons][::-1],
      [n for _, n in reasons][::-1],
      color='tab:red',
    )
    axes[3].tick_params(axis='y', labelsize=8)
    axes[3].set_xlabel('files')
    axes[3].xaxis.set_major_locator(MaxNLocator(integer=True))
  else:
    axes[3].set_axis_off()
    axes[3].text(
      0.5, 0.5, NO_REJECTS, ha='center', va='center', fontsize=12, transform=axes[3].transAxes
    )


def render(data: ReportData, png_path: str, per_class: int = PER_CLASS) -> ReportResult:
  """Draws the report into png_path (Beam FileSystems path) and returns its size and tiles."""
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use('Agg')
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  names, rows = _sample_rows(data)
  sheet, tiles = contact_sheet(rows, per_class)
  lines = summary_lines(data)
  glyphs = Glyphs(
    [
      *data.label_names,
      *lines,
      *(p.caption() for p in data.duplicate_pairs),
      *(reason for reason, _ in data_reasons(data)),
    ]
  )
  header = HEADER_HEIGHT + SUMMARY_LINE_HEIGHT * max(0, len(lines) - 2)  # a test split adds a line
  width = max(MIN_WIDTH, LABEL_WIDTH + sheet.shape[1] + 40)
  pairs = pairs_sheet(data.duplicate_pairs, tile_image, TILE_PIXELS, TILE_GAP, TILE_BACKGROUND)
  pairs_height = PAIRS_TITLE_HEIGHT + pairs.shape[0] if data.duplicate_pairs else 0
  height = header + sheet.shape[0] + 30 + pairs_height + 2 * CHART_HEIGHT
  with matplotlib.rc_context({'font.family': glyphs.families}):
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor='white')
    fig.text(
      10 / width,
      1 - 12 / height,
      'folder2tfrecord report',
      fontsize=16,
      weight='bold',
      va='top',
      fontfamily=glyphs.families[0],
    )  # A fallback font may have no bold.
    for i, line in enumerate(lines):
      fig.text(
        10 / width, 1 - (44 + SUMMARY_LINE_HEIGHT * i) / height, glyphs(line), fontsize=10, va='top'
      )
    shown = len(rows)
    fig.text(
      10 / width,
      1 - (header - 16) / height,
      f'Contact sheet: first {per_class} records of {shown} of '
      f'{data.manifest["num_classes"]} classes, decoded from the shards',
      fontsize=10,
      va='top',
      style='italic',
    )
    sheet_x, sheet_y = LABEL_WIDTH, header
    fig.figimage(sheet, xo=sheet_x, yo=height - sheet_y - sheet.shape[0], origin='upper')
    for r, name in enumerate(names):
      centre = sheet_y + TILE_GAP + r * (TILE_PIXELS + TILE_GAP) + TILE_PIXELS / 2
      fig.text(
        (LABEL_WIDTH - 10) / width,
        1 - centre / height,
        _fitted(glyphs(name), NAME_CHARS, 3),
        ha='right',
        va='center',
        fontsize=11,
        multialignment='right',
      )
    for t in tiles:
      t.png_y, t.png_x = sheet_y + t.y, sheet_x + t.x
    if data.duplicate_pairs:
      _draw_pairs(
        fig,
        data.duplicate_pairs,
        pairs,
        width,
        height,
        top=sheet_y + sheet.shape[0] + 30,
        glyphs=glyphs,
      )
    _draw_charts(fig, data, top=(2 * CHART_HEIGHT) / height, bottom=0.0, glyphs=glyphs)
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=DPI)
  png = buffer.getvalue()
  with FileSystems.create(png_path, mime_type='image/png') as f:
    f.write(png)
  html_path = (png_path[:-4] if png_path.lower().endswith('.png') else png_path) + '.html'
  with FileSystems.create(html_path, mime_type='text/html') as f:
    f.write(build_html(data, png).encode('utf-8'))
  return ReportResult(png_path, html_path, width, height, tiles)


def _draw_pairs(
  fig,
  pairs: Sequence[DuplicatePair],
  sheet: np.ndarray,
  width: int,
  height: int,
  top: int,
  glyphs: Callable[[str], str] = str,
) -> None:
  """The duplicates section at `top` pixels from the top of the figure."""
  fig.text(
    10 / width,
    1 - top / height,
    f'Closest duplicates across splits (duplicates.jsonl, '
    f'{len(pairs)} shown), decoded from the shards',
    fontsize=10,
    va='top',
    style='italic',
  )
  sheet_y = top + PAIRS_TITLE_HEIGHT
  fig.figimage(sheet, xo=LABEL_WIDTH, yo=height - sheet_y - sheet.shape[0], origin='upper')
  for r, pair in enumerate(pairs):
    centre = sheet_y + TILE_GAP + r * (TILE_PIXELS + TILE_GAP) + TILE_PIXELS / 2
    fig.text(
      (LABEL_WIDTH + sheet.shape[1] + 10) / width,
      1 - centre / height,
      glyphs(pair.caption()),
      va='center',
      fontsize=10,
    )


def build_html(data: ReportData, png: bytes) -> str:
  """A self-contained page: the PNG embedded as base64, then per-split and reject tables."""
  esc = html.escape
  rows = ''.join(f'<li>{esc(line)}</li>' for line in summary_lines(data))
  offset = int(data.manifest['label_offset'])
  splits = ordered_splits(data.manifest['splits'])
  head = ''.join(f'<th>{esc(s)}</th>' for s in splits)
  class_rows = ''.join(
    f'<tr><td>{i + offset}</td><td>{esc(name)}</td>'
    + ''.join(
      f'<td>{data.stats.get(s, {}).get("class_counts", {}).get(name, 0)}</td>' for s in splits
    )
    + '</tr>'
    for i, name in enumerate(data.label_names[offset:])
  )
  reject_rows = ''.join(
    f'<tr><td>{esc(reason)}</td><td>{n}</td></tr>' for reason, n in data_reasons(data)
  )
  pair_rows = ''.join(
    f'<tr><td>{esc(p.kind)}</td><td>{p.distance}</td>'
    + ''.join(
      f'<td>{esc(split)}</td><td style="text-align:left">{esc(path)}</td>'
      for split, path in p.files
    )
    + '</tr>'
    for p in data.duplicate_pairs
  )
  return (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>folder2tfrecord report</title>'
    '<style>body{font-family:sans-serif} td,th{padding:2px 8px;text-align:right}</style>'
    '</head><body>\n<h1>folder2tfrecord report</h1>\n'
    f'<ul>{rows}</ul>\n'
    f'<img alt="report" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">\n'
    f'<h2>Examples per class</h2><table><tr><th>label</th><th>class</th>{head}</tr>'
    f'{class_rows}</table>\n'
    '<h2>Reject reasons</h2>'
    + (
      f'<table><tr><th>reason</th><th>files</th></tr>{reject_rows}</table>\n'
      if reject_rows
      else f'<p>{NO_REJECTS}</p>\n'
    )
    + '<h2>Closest duplicates across splits</h2><table><tr><th>kind</th><th>bits</th>'
    f'<th>split</th><th>file</th><th>split</th><th>file</th></tr>{pair_rows}</table>\n'
    '</body></html>\n'
  )


def report(
  output_dir: str,
  png_path: str,
  per_class: int = PER_CLASS,
  max_classes: int = MAX_CLASSES,
  max_records: int = MAX_RECORDS,
) -> ReportResult:
  """Reads output_dir and writes png_path and the .html next to it."""
  data = read_report_data(output_dir, per_class, max_classes, max_records)
  return render(data, png_path, per_class)


def build_parser() -> argparse.ArgumentParser:
  """The flags of `folder2tfrecord report` (scripts/flags_doc.py documents them)."""
  parser = argparse.ArgumentParser(
    prog='folder2tfrecord report', description=__doc__.split('\n')[0]
  )
  parser.add_argument('output_dir', help="the converter's output directory (local, gs://, s3://)")
  parser.add_argument(
    '--output',
    default='report.png',
    help='PNG to write; the HTML page goes next to it (.png -> .html)',
  )
  parser.add_argument('--per_class', type=int, default=PER_CLASS, help='tiles per class')
  parser.add_argument(
    '--max_classes',
    type=int,
    default=MAX_CLASSES,
    help='classes shown in the contact sheet (the first ones by label)',
  )
  parser.add_argument(
    '--max_records',
    type=int,
    default=MAX_RECORDS,
    help='records read per split for the histograms, spread over its shards (0 = all)',
  )
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  """CLI: `python -m pipeline.report OUTPUT --output report.png [flags] [beam options]`."""
  args, beam_args = parse_command_line(build_parser(), argv)
  try:
    extras.require('matplotlib', 'matplotlib', 'pipeline.report needs')
    extras.require_for_args([args.output_dir, args.output])
  except extras.MissingDependency as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  FileSystems.set_options(PipelineOptions(beam_args))  # e.g. --s3_endpoint_url
  manifest = layout.join(args.output_dir, layout.MANIFEST_FILE)
  if not FileSystems.exists(manifest):
    print(
      f'error: {manifest} not found: {args.output_dir} is not a converter output, or its run has '
      'not finished (the manifest is written after every shard).',
      file=sys.stderr,
    )
    return 2
  result = report(args.output_dir, args.output, args.per_class, args.max_classes, args.max_records)
  print(
    f'wrote {result.png} ({result.width}x{result.height}, {len(result.tiles)} tiles) and '
    f'{result.html}'
  )
  return 0


if __name__ == '__main__':
  sys.exit(main())
