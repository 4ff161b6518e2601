"""End to end: the converter on the sample photos, read back with TensorFlow."""

import io
import json
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from clusters.outputs import assert_same_dataset, read_dataset
from conftest import SAMPLE_DIR, SAMPLE_FLAGS, convert
from transforms.imaging.image import ImageSpec, process_image

FEATURES = {
  'image/encoded': tf.io.FixedLenFeature([], tf.string),
  'image/format': tf.io.FixedLenFeature([], tf.string),
  'image/height': tf.io.FixedLenFeature([], tf.int64),
  'image/width': tf.io.FixedLenFeature([], tf.int64),
  'image/channels': tf.io.FixedLenFeature([], tf.int64),
  'image/colorspace': tf.io.FixedLenFeature([], tf.string),
  'image/filename': tf.io.FixedLenFeature([], tf.string),
  'image/class/label': tf.io.FixedLenFeature([], tf.int64),
  'image/class/synset': tf.io.FixedLenFeature([], tf.string),
}


def read_split(output, split, compression=None):
  """[(shard name, parsed example dict)] of every record of `split`, shards in name order."""
  records = []
  for shard in sorted(output.glob(f'{split}-*-of-*')):
    for raw in tf.data.TFRecordDataset(str(shard), compression_type=compression):
      parsed = tf.io.parse_single_example(raw, FEATURES)
      records.append((shard.name, {k: v.numpy() for k, v in parsed.items()}))
  return records


def test_shards_metadata_and_counts(sample_output):
  names = sorted(p.name for p in sample_output.iterdir())
  assert names == [
    '_SUCCESS',
    '_work',
    'dataset_info.json',
    'duplicates.jsonl',
    'features.json',
    'image-class-label.labels.txt',
    'labels.txt',
    'manifest.json',
    'model_garden.yaml',
    'provenance.json',
    'rejects.jsonl',
    'stats.json',
    'train-00000-of-00003',
    'train-00001-of-00003',
    'train-00002-of-00003',
    'validation-00000-of-00002',
    'validation-00001-of-00002',
  ]
  labels = (sample_output / 'labels.txt').read_text().splitlines()
  assert labels == sorted(p.name for p in SAMPLE_DIR.iterdir() if p.is_dir())
  stats = json.loads((sample_output / 'stats.json').read_text())
  manifest = json.loads((sample_output / 'manifest.json').read_text())
  assert stats['num_examples'] == 54 and stats['num_rejected'] == 1
  assert json.loads((sample_output / 'rejects.jsonl').read_text()) == {  # beside the class folders
    'path': str(SAMPLE_DIR / 'ATTRIBUTION.md'),
    'reason': 'not in a class folder',
    'split': None,
  }
  seen = {}
  for split in ('train', 'validation'):
    records = read_split(sample_output, split)
    assert len(records) == stats[split]['num_examples'] == manifest['splits'][split]['num_examples']
    per_shard = {}
    for shard, example in records:
      per_shard[shard] = per_shard.get(shard, 0) + 1
      synset = example['image/class/synset'].decode()
      assert labels[example['image/class/label']] == synset
      assert example['image/format'] == b'JPEG' and example['image/colorspace'] == b'RGB'
      assert (example['image/height'], example['image/width'], example['image/channels']) == (
        256,
        256,
        3,
      )
      filename = example['image/filename'].decode()
      assert filename.split('/')[0] == synset and filename not in seen
      seen[filename] = split
    assert per_shard == {s['file']: s['num_examples'] for s in manifest['splits'][split]['shards']}
    # Balanced: shard sizes differ by at most one.
    assert max(per_shard.values()) - min(per_shard.values()) <= 1
    counts = {}
    for _, example in records:
      synset = example['image/class/synset'].decode()
      counts[synset] = counts.get(synset, 0) + 1
    assert counts == stats[split]['class_counts']
  assert len(seen) == 54
  # Stratified split: each class has round(20%) of its files in validation.
  for synset in labels:
    n = len(list((SAMPLE_DIR / synset).iterdir()))
    assert stats['validation']['class_counts'][synset] == int(n * 0.2 + 0.5)


def test_records_hold_exactly_what_the_image_function_makes(sample_output):
  records = read_split(sample_output, 'train') + read_split(sample_output, 'validation')
  for _, example in records:
    source = SAMPLE_DIR / example['image/filename'].decode()
    assert example['image/encoded'] == process_image(source.read_bytes(), ImageSpec()).encoded


def test_quirky_photos_in_the_shards(sample_output):
  records = {
    e['image/filename'].decode(): e
    for _, e in read_split(sample_output, 'train') + read_split(sample_output, 'validation')
  }
  # PNG bytes named .JPEG are stored as JPEG.
  raccoon = records['animal/scipy_raccoon.JPEG']['image/encoded']
  assert raccoon[:2] == b'\xff\xd8' and Image.open(io.BytesIO(raccoon)).format == 'JPEG'
  # The EXIF-rotated koala (stored landscape, displayed portrait) is stored upright.
  koala_file = Image.open(SAMPLE_DIR / 'animal' / 'gc_koala.JPEG')
  upright = koala_file.convert('RGB').transpose(Image.Transpose.ROTATE_90)
  buffer = io.BytesIO()
  upright.save(buffer, 'PNG')
  expected = tf.io.decode_jpeg(process_image(buffer.getvalue(), ImageSpec(fast=False)).encoded)
  stored = tf.io.decode_jpeg(records['animal/gc_koala.JPEG']['image/encoded'])
  sideways = tf.io.decode_jpeg(
    process_image(_png_bytes(koala_file.convert('RGB')), ImageSpec(fast=False)).encoded
  )

  def error(a, b):
    return float(tf.reduce_mean(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32))))

  assert error(stored, expected) < 6 < error(stored, sideways)
  # The inverted Adobe CMYK flower keeps its yellow.
  flower = tf.io.decode_jpeg(records['flower/mate_yellowflower_cmyk.JPEG']['image/encoded']).numpy()
  r, g, b = flower[64:192, 64:192].reshape(-1, 3).mean(axis=0)
  assert r > 150 and g > 120 and b < 90


def _png_bytes(image):
  buffer = io.BytesIO()
  image.save(buffer, 'PNG')
  return buffer.getvalue()


def test_stats_are_within_a_quarter_level_of_the_decoded_stored_images(sample_output):
  """stats.json sums the pixels handed to the JPEG encoder (exact: tests/test_image.py); what a reader
  decodes from the records differs by JPEG's rounding only. Exact libjpeg decoding (ISLOW):
  tf.io.decode_jpeg's default INTEGER_FAST IDCT differs by up to ~5 levels a pixel and shifts
  channel means by up to ~1.2 (measured on these photos)."""
  stats = json.loads((sample_output / 'stats.json').read_text())
  for split in ('train', 'validation'):
    pixels = np.concatenate(
      [
        tf.io.decode_jpeg(example['image/encoded'], dct_method='INTEGER_ACCURATE')
        .numpy()
        .reshape(-1, 3)
        .astype(np.float64)
        for _, example in read_split(sample_output, split)
      ]
    )
    np.testing.assert_allclose(stats[split]['mean_rgb'], pixels.mean(axis=0), atol=0.25)
    np.testing.assert_allclose(stats[split]['std_rgb'], pixels.std(axis=0), atol=0.25)
    print(
      split,
      'mean difference',
      np.round(np.array(stats[split]['mean_rgb']) - pixels.mean(axis=0), 3),
      'std difference',
      np.round(np.array(stats[split]['std_rgb']) - pixels.std(axis=0), 3),
    )


@pytest.mark.slow
def test_in_memory_and_multi_processing_give_identical_bytes(sample_output, tmp_path):
  assert (
    convert(
      SAMPLE_DIR,
      tmp_path,
      *SAMPLE_FLAGS,
      '--direct_running_mode=multi_processing',
      '--direct_num_workers=2',
    )
    == 0
  )
  assert_same_dataset(read_dataset(str(tmp_path)), read_dataset(str(sample_output)))


def _copy_sample(tmp_path):
  copy = tmp_path / 'input'
  shutil.copytree(SAMPLE_DIR, copy)
  (copy / 'ATTRIBUTION.md').unlink()
  return copy


def test_bad_files_are_rejected_and_the_run_goes_on(tmp_path):
  source = _copy_sample(tmp_path)
  (source / 'animal' / 'truncated.jpg').write_bytes(
    (source / 'animal' / 'gc_cat.JPEG').read_bytes()[:5000]
  )
  (source / 'animal' / 'error_page.jpg').write_text('<html><body>403 Forbidden</body></html>')
  (source / 'animal' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  (source / 'animal' / '._gc_cat.JPEG').write_bytes(b'\0\5\26\7AppleDouble')
  (source / 'animal' / 'nested').mkdir()
  (source / 'animal' / 'nested' / 'x.jpg').write_bytes(b'')
  output = tmp_path / 'out'
  assert convert(source, output, '--validation_fraction', '0.2') == 0
  rejects = [json.loads(line) for line in (output / 'rejects.jsonl').read_text().splitlines()]
  reasons = {r['path'].rsplit('/', 1)[-1]: r['reason'] for r in rejects}
  assert set(reasons) == {'truncated.jpg', 'error_page.jpg', 'nested'}
  assert 'truncated or corrupt' in reasons['truncated.jpg']
  assert 'text' in reasons['error_page.jpg']
  assert 'nested folder' in reasons['nested']
  stats = json.loads((output / 'stats.json').read_text())
  assert stats['num_examples'] == 54 and stats['num_rejected'] == 3
  assert (output / '_SUCCESS').exists()
  # Past --max_reject_fraction the run fails, after writing the rejects list, and leaves no
  # _SUCCESS.
  assert convert(source, tmp_path / 'strict', '--max_reject_fraction', '0.01') == 1
  assert len((tmp_path / 'strict' / 'rejects.jsonl').read_text().splitlines()) == 3
  assert not (tmp_path / 'strict' / '_SUCCESS').exists()


def test_labels_file_fixes_order_and_rejects_unlisted_classes(tmp_path):
  labels = tmp_path / 'labels.txt'
  labels.write_text('space\nanimal\n# comment\nflower\n')
  output = tmp_path / 'out'
  assert convert(SAMPLE_DIR, output, '--labels_file', labels, '--label_offset', '1') == 0
  assert (output / 'labels.txt').read_text() == 'space\nanimal\nflower\n'
  records = read_split(output, 'train')
  assert {(e['image/class/synset'], e['image/class/label']) for _, e in records} == {
    (b'space', 1),
    (b'animal', 2),
    (b'flower', 3),
  }
  rejects = [json.loads(line) for line in (output / 'rejects.jsonl').read_text().splitlines()]
  rejects.remove(
    {'path': str(SAMPLE_DIR / 'ATTRIBUTION.md'), 'reason': 'not in a class folder', 'split': None}
  )  # beside the class folders
  unlisted = len(list((SAMPLE_DIR / 'landscape').iterdir())) + len(
    list((SAMPLE_DIR / 'object').iterdir())
  )
  assert len(rejects) == unlisted
  assert all('not in --labels_file' in r['reason'] for r in rejects)


def test_explicit_split_folders_and_gzip(tmp_path):
  source = tmp_path / 'input'
  for split, classes in (('train', ('animal', 'space')), ('val', ('animal', 'space'))):
    for synset in classes:
      files = sorted((SAMPLE_DIR / synset).iterdir())
      chosen = files[:-2] if split == 'train' else files[-2:]
      (source / split / synset).mkdir(parents=True)
      for f in chosen:
        shutil.copy(f, source / split / synset / f.name)
  output = tmp_path / 'out'
  assert convert(source, output, '--compression', 'gzip') == 0
  assert len(read_split(output, 'validation', 'GZIP')) == 4
  assert (
    len(read_split(output, 'train', 'GZIP'))
    == len(list((SAMPLE_DIR / 'animal').iterdir()))
    + len(list((SAMPLE_DIR / 'space').iterdir()))
    - 4
  )
  assert sorted(p.name for p in output.glob('*-of-*')) == [
    'train-00000-of-00001',
    'validation-00000-of-00001',
  ]


def test_existing_output_is_refused_then_overwritten_or_resumed(sample_output, tmp_path, capsys):
  output = tmp_path / 'out'
  shutil.copytree(sample_output, output)
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS) == 2
  assert 'already holds a dataset' in capsys.readouterr().err
  # An interrupted run: one shard missing, a temp file left behind, no _SUCCESS.
  (output / 'train-00001-of-00003').unlink()
  (output / '_SUCCESS').unlink()
  (output / '_work' / 'train-00001-of-00003.tmp-deadbeef').write_bytes(b'partial')
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS, '--resume', '--train_shards', '4') == 2
  assert 'differ' in capsys.readouterr().err
  assert convert(SAMPLE_DIR, output, *SAMPLE_FLAGS, '--resume') == 0
  assert_same_dataset(read_dataset(str(output)), read_dataset(str(sample_output)))
  assert not list((output / '_work').glob('*.tmp-*'))
  # --overwrite with other flags replaces every shard of the old run.
  assert convert(SAMPLE_DIR, output, '--overwrite', '--train_shards', '2') == 0
  assert sorted(p.name for p in output.glob('*-of-*')) == [
    'train-00000-of-00002',
    'train-00001-of-00002',
  ]


@pytest.mark.parametrize(
  'flags,message',
  [
    (['--center_crop', '300'], 'would not fit'),
    (['--label_offset', '2'], 'invalid choice'),
    (['--validation_fraction', '1.5'], 'validation_fraction'),
    (['--train_shard', '4'], 'did you mean --train_shards'),
    (['--overwrite', '--resume'], 'exclude each other'),
  ],
)
def test_bad_flags_fail_before_any_work(tmp_path, capsys, flags, message):
  try:
    code = convert(SAMPLE_DIR, tmp_path / 'out', *flags)
  except SystemExit as e:  # argparse's own type and choice errors.
    code = e.code
  assert code == 2
  assert message in capsys.readouterr().err
  assert not (tmp_path / 'out').exists()


def test_empty_missing_and_classless_inputs_fail_with_a_hint(tmp_path, capsys):
  (tmp_path / 'empty' / 'cat').mkdir(parents=True)
  (tmp_path / 'flat').mkdir()
  (tmp_path / 'flat' / 'a.jpg').write_bytes(b'x')
  for source, message in (
    (tmp_path / 'empty', 'no images'),
    (tmp_path / 'missing', 'cannot be read'),
    (tmp_path / 'flat', 'no class folders'),
  ):
    assert convert(source, tmp_path / 'out', '--overwrite') == 2
    assert message in capsys.readouterr().err
  assert not (tmp_path / 'out').exists()


def test_channel_stats_are_exact_and_read_sidecars_with_histograms():
  """Per-split mean/std from integer sums equal numpy's over the same pixels, and a shard sidecar
  written by an earlier version (768-bin histogram instead of sums) resumes to the same numbers."""
  from transforms.metadata.stats import SplitStatsCombineFn
  from transforms.records import ShardSummary

  rng = np.random.default_rng(7)
  shards = [rng.integers(0, 256, (n, 3), dtype=np.int64) for n in (5000, 1, 777)]

  def summary(name, pixels, old_format):
    s = {
      'shard': name,
      'split': 'train',
      'num_examples': 1,
      'num_bytes': 0,
      'num_passthrough': 0,
      'rejects': [],
      'class_counts': {'a': 1},
    }
    if old_format:
      s['histogram'] = [int((pixels[:, c] == v).sum()) for c in range(3) for v in range(256)]
    else:
      s.update(
        num_pixels=len(pixels),
        channel_sums=pixels.sum(0).tolist(),
        channel_squares=(pixels**2).sum(0).tolist(),
      )
    return ShardSummary.from_json(s)

  combine = SplitStatsCombineFn()
  results = []
  for old_format in (False, True):
    accs = [
      combine.add_input(combine.create_accumulator(), summary(f's{i}', p, old_format and i != 1))
      for i, p in enumerate(shards)
    ]
    results.append(combine.extract_output(combine.merge_accumulators(accs)))
  everything = np.concatenate(shards).astype(np.float64)
  for result in results:
    np.testing.assert_allclose(result.mean_std[0], everything.mean(0), rtol=1e-12)
    np.testing.assert_allclose(result.mean_std[1], everything.std(0), rtol=1e-12)
  assert results[0] == results[1]


def test_image_refs_travel_small_and_find_their_files(tmp_path):
  """What the runner holds per input file between listing and shard writer is ~40 bytes (the memory
  slope on the DirectRunner scales with it), and the path derived for a ref is the listed one."""
  import apache_beam as beam
  from transforms.inputs.listing import Layout, image_path, list_class_dir
  from transforms.split.sharding import ImageRef

  coder = beam.coders.registry.get_coder(ImageRef)
  ref = ImageRef(
    'train', 17, 'n01440764', 'n01440764/n01440764_10026.JPEG', 110_527, 1_732_970_000_123_456
  )
  assert coder.is_deterministic() and coder.decode(coder.encode(ref)) == ref
  assert len(coder.encode(ref)) <= 60
  layout = Layout({'': str(SAMPLE_DIR)})
  listed = list(list_class_dir(('', str(SAMPLE_DIR), 'animal'), {'animal': 0}, 0))
  assert listed and all(isinstance(r, ImageRef) for r in listed)
  on_disk = sorted(str(p) for p in (SAMPLE_DIR / 'animal').iterdir())
  assert sorted(image_path(layout.split_roots, r) for r in listed) == on_disk
  # The listing's size and modification time of each file, what --resume compares.
  for r in listed:
    stat = pathlib.Path(image_path(layout.split_roots, r)).stat()
    assert (r.size, r.mtime_us) == (stat.st_size, stat.st_mtime_ns // 1000)
