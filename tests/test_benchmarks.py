"""Tests for benchmarks/: the synthesiser, the measurement harness, the image-path candidates, the
classic converters and the one-command benchmark (tiny sizes; the real numbers are in
docs/performance.md)."""

import io
import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from benchmarks import imageops as ops
from benchmarks import synth
from benchmarks.measure import output_bytes, run_measured

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow  # Benchmarks: synthetic datasets, subprocess converters.


@pytest.fixture(scope='module')
def small_dataset(tmp_path_factory):
  return synth.synthesize(24, 4, seed=3, cache_dir=tmp_path_factory.mktemp('synth'), processes=1)


def test_synth_is_deterministic_per_image_and_cached(small_dataset, tmp_path):
  smaller = synth.synthesize(12, 4, seed=3, cache_dir=tmp_path, processes=2)
  small = {p.name: p.read_bytes() for p, _ in synth.list_images(small_dataset.root)}
  for path, label in synth.list_images(smaller.root):
    assert path.read_bytes() == small[path.name], path.name  # image i depends only on (seed, i)
    assert path.parent.name == synth.synset_name(label)
  other_seed = synth.synthesize(12, 4, seed=4, cache_dir=tmp_path, processes=1)
  assert [p.read_bytes() for p, _ in synth.list_images(other_seed.root)] != [
    p.read_bytes() for p, _ in synth.list_images(smaller.root)
  ]
  # the first 6 of the cached 12, hard-linked
  linked = synth.synthesize(6, 4, seed=3, cache_dir=tmp_path)
  for path, _ in synth.list_images(linked.root):
    assert path.stat().st_nlink == 2 and path.read_bytes() == small[path.name]
  marker = smaller.root / '_COMPLETE'
  mtime = marker.stat().st_mtime_ns
  assert synth.synthesize(12, 4, seed=3, cache_dir=tmp_path) == smaller
  assert marker.stat().st_mtime_ns == mtime  # reused, not rebuilt
  # 24 from the cached 12: the 12 linked, the other 12 synthesised, equal to those made from nothing
  grown = synth.synthesize(24, 4, seed=3, cache_dir=tmp_path, processes=1)
  grown_files = synth.list_images(grown.root)
  assert sum(path.stat().st_nlink > 1 for path, _ in grown_files) == 12
  assert {path.name: path.read_bytes() for path, _ in grown_files} == {
    p.name: p.read_bytes() for p, _ in synth.list_images(small_dataset.root)
  }
  assert grown.total_bytes == small_dataset.total_bytes


def test_synth_images_look_like_imagenet_files(small_dataset):
  files = synth.list_images(small_dataset.root)
  assert len(files) == 24 and len({label for _, label in files}) == 4
  for path, _ in files:
    with Image.open(path) as im:
      assert im.format == 'JPEG' and im.mode == 'RGB'
      assert 300 <= max(im.size) <= synth.MAX_LONG_SIDE_PX
  mean_kib = small_dataset.total_bytes / 24 / 1024
  assert 60 < mean_kib < 200, mean_kib  # ImageNet's train files average ~110 KB


def test_synth_size_distribution():
  rng = random.Random(0)
  sizes = [synth.target_size(rng) for _ in range(4000)]
  long_sides = [max(s) for s in sizes]
  assert 0.84 < sum(ls == 500 for ls in long_sides) / len(sizes) < 0.92
  assert max(long_sides) <= synth.MAX_LONG_SIDE_PX and max(long_sides) > 1500
  assert 0.2 < sum(w < h for w, h in sizes) / len(sizes) < 0.3
  assert sizes.count((500, 375)) > sizes.count((500, 333)) > 0


def test_synth_refuses_fewer_images_than_classes(tmp_path):
  with pytest.raises(ValueError, match='num_images >= num_classes'):
    synth.synthesize(3, 4, cache_dir=tmp_path)
  with pytest.raises(ValueError, match='profile'):
    synth.synthesize(4, 4, cache_dir=tmp_path, profile='imagenet-2')


def test_synth_imagenet_profile_keeps_the_first_versions_files():
  import hashlib

  sources = synth.load_sources()
  assert {i: hashlib.sha256(synth.synth_image(sources, 0, i)).hexdigest()[:16] for i in (0, 7)} == {
    0: 'bec429819549551d',
    7: 'ebb4a05007ed34cc',
  }  # cached sets and published figures stay valid


def test_synth_phone_size_distribution():
  rng = random.Random(0)
  sizes = [synth.phone_size(rng) for _ in range(4000)]

  def share(pred):
    return sum(map(pred, sizes)) / len(sizes)

  assert 0.3 < share(lambda s: s[0] < s[1]) < 0.4  # portrait photos (upright)
  assert 0.14 < share(lambda s: s[2] in (6, 8)) < 0.21  # stored sideways with an EXIF orientation
  assert 0.4 < share(lambda s: max(s[:2]) > 1000) < 0.52
  assert 0.15 < share(lambda s: abs(max(s[:2]) / min(s[:2]) - 16 / 9) < 0.01) < 0.3  # 16:9
  assert 0.03 < share(lambda s: min(s[:2]) < 256) < 0.12  # upscaled to the shorter side


def test_synth_phone_profile_files(tmp_path):
  import simplejpeg

  phone = synth.synthesize(40, 4, seed=1, cache_dir=tmp_path, processes=1, profile='phone')
  assert phone.profile == 'phone' and 'phone' in phone.root.name
  assert synth.synthesize(40, 4, seed=1, cache_dir=tmp_path, profile='phone') == phone  # cached
  # not linked
  assert synth.synthesize(8, 4, seed=1, cache_dir=tmp_path, processes=1).profile == 'imagenet'
  seen = set()
  for path, _ in synth.list_images(phone.root):
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as im:
      assert im.format == 'JPEG' and im.mode == 'RGB'
      seen.add(('exif', im.getexif().get(0x0112, 0)))
      seen.add(('progressive', bool(im.info.get('progressive'))))
    seen.add(('subsampling', simplejpeg.decode_jpeg_header(data)[3]))
  assert {
    ('subsampling', '420'),
    ('subsampling', '422'),
    ('exif', 0),
    ('exif', 1),
    ('progressive', False),
  } <= seen
  assert seen & {('exif', 6), ('exif', 8)}


def test_measure_sums_the_process_tree(tmp_path):
  child = textwrap.dedent("""
      import subprocess, sys, time
      grand = subprocess.Popen([sys.executable, '-c',
          'import time; b = bytearray(300 << 20); b[::4096] = b"x" * len(b[::4096]); time.sleep(1.0)'])
      t = time.process_time()
      while time.process_time() - t < 0.5:
          pass
      grand.wait()
      print('done')
      sys.exit(3)""")
  m = run_measured([sys.executable, '-c', child], interval_s=0.02)
  assert m.returncode == 3 and m.stdout.strip() == 'done'
  assert m.peak_rss_bytes > 300 << 20  # the grandchild's 300 MiB counted with its parents
  assert m.cpu_s >= 0.5 and m.wall_s >= 1.0
  (tmp_path / '_work').mkdir()
  (tmp_path / '_work' / 'x').write_bytes(b'1' * 10)
  (tmp_path / 'a').write_bytes(b'1' * 7)
  assert output_bytes(str(tmp_path)) == 7


def test_floor_makes_the_products_stored_size(small_dataset):
  from benchmarks.ceiling import floor_image, measure
  from transforms.imaging.image import ImageSpec, process_image

  spec = ImageSpec()
  files = [(p, label, p.parent.name, p.name) for p, label in synth.list_images(small_dataset.root)][
    :4
  ]
  for path, _, _, _ in files:
    data = path.read_bytes()
    floor = Image.open(io.BytesIO(floor_image(data, spec)))
    stored = process_image(data, spec)
    assert floor.format == 'JPEG' and floor.size == (stored.width, stored.height) == (256, 256)
  result = measure(files, spec)
  assert (
    result['images'] == 4
    and result['floor_us_per_image'] > 0
    and result['ceiling_us_per_image'] > 0
  )
  assert set(result['extras_us_per_image']) == {'header', 'statistics', 'hashes', 'record'}
  assert all(us > 0 for us in result['extras_us_per_image'].values())
  assert 'ceiling_us_per_image' not in measure(files, spec, with_ceiling=False)
  from benchmarks.run import extras_line  # pylint: disable=import-outside-toplevel

  line = extras_line([result, result], pipeline_ms=9.0)
  assert line.startswith('where the time goes') and 'hashes' in line and '% of the floor' in line
  assert 'read' in line and 'rest of the pipeline' in line and 'rest of process_image' in line
  result['writer_loop_us_per_image'] = 80.0
  assert 'shard writer loop incl. read (image stubbed) 80' in extras_line([result])
  assert extras_line([measure(files, spec, with_ceiling=False)]) == ''


@pytest.mark.parametrize(
  'width, height, side, scale',
  [
    (500, 375, 256, 1),
    (1024, 768, 256, 2),
    (2000, 1500, 256, 4),
    (4000, 3000, 256, 8),
    (9000, 6000, 256, 8),
    (512, 1024, 256, 2),
    (511, 700, 256, 1),
    (240, 320, 256, 1),
  ],
)
def test_dct_scale_stops_at_or_above_the_target(width, height, side, scale):
  assert ops.dct_scale(width, height, side) == scale
  assert scale == 1 or min(width, height) / scale >= side


def test_reference_crop_is_exact_at_scale_one():
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, (40, 40, 3), np.uint8)
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, 'PNG')
  out = ops.reference_crop(buf.getvalue(), ops.geometry(40, 40, 40, 40))
  np.testing.assert_allclose(out, pixels, atol=1e-9)


def test_geometry_is_the_centered_box():
  g = ops.geometry(500, 375, 256, 224)
  side = 224 * 375 / 256
  assert g.box == pytest.approx(
    ((500 - side) / 2, (375 - side) / 2, (500 + side) / 2, (375 + side) / 2)
  )


@pytest.mark.parametrize(
  'name, min_psnr',
  [
    ('Pillow draft + resize(box) LANCZOS', 45),
    ('Pillow draft + resize(box) BILINEAR', 33),
    ('cv2 IMREAD_REDUCED + INTER_LINEAR on box', 32),
    ('cv2 IMREAD_REDUCED + warpAffine LINEAR, exact box', 33),
    ('simplejpeg pow2 + cv2 INTER_LINEAR on box', 32),
    ('cv2 full decode + INTER_LINEAR whole (AlexNet article)', 28),
  ],
)
def test_resize_paths_match_the_reference(small_dataset, name, min_psnr):
  from benchmarks.micro import CROP, SHORTER_SIDE, aggregate_psnr, resize_paths

  items = []
  for path, _ in synth.list_images(small_dataset.root)[:8]:
    data = path.read_bytes()
    w, h = ops.header(data)[2:4]
    items.append((data, ops.geometry(w, h, SHORTER_SIDE, CROP)))
  refs = [ops.reference_crop(*it) for it in items]
  fn = resize_paths()[name]
  assert fn(items[0]).shape == (CROP, CROP, 3)
  assert aggregate_psnr(fn, items, refs) > min_psnr


def _read_records(output_dir):
  import tensorflow as tf

  files = sorted(tf.io.gfile.glob(os.path.join(output_dir, 'train-*')))
  return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files)]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize('module', ['benchmarks.classic_tf', 'benchmarks.classic_opencv'])
def test_classic_converters_write_readable_shards(small_dataset, tmp_path, module):
  out = tmp_path / 'out'
  cmd = [
    sys.executable,
    '-m',
    module,
    '--input',
    str(small_dataset.root),
    '--output',
    str(out),
    '--workers',
    '2',
  ]
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=500)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert json.loads(proc.stdout.strip().splitlines()[-1])['images'] == 24
  assert sorted(p.name for p in out.iterdir()) == ['train-00000-of-00002', 'train-00001-of-00002']
  records = _read_records(out)
  assert len(records) == 24
  labels = {p.name: label for p, label in synth.list_images(small_dataset.root)}
  for ex in records:
    f = ex.features.feature
    name = f['image/filename'].bytes_list.value[0].decode()
    assert f['image/class/label'].int64_list.value[0] == labels[name]
    im = Image.open(io.BytesIO(f['image/encoded'].bytes_list.value[0]))
    assert im.format == 'JPEG' and im.size == (256, 256)
    assert (f['image/height'].int64_list.value[0], f['image/width'].int64_list.value[0]) == (
      256,
      256,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_classic_tf_original_mode_keeps_the_bytes(small_dataset, tmp_path):
  out = tmp_path / 'out'
  cmd = [
    sys.executable,
    '-m',
    'benchmarks.classic_tf',
    '--input',
    str(small_dataset.root),
    '--output',
    str(out),
    '--resize_shorter_side',
    '0',
    '--center_crop',
    '0',
  ]
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=500)
  assert proc.returncode == 0, proc.stderr[-2000:]
  originals = {p.name: p.read_bytes() for p, _ in synth.list_images(small_dataset.root)}
  records = _read_records(out)
  assert len(records) == 24
  for ex in records:
    f = ex.features.feature
    assert (
      f['image/encoded'].bytes_list.value[0]
      == originals[f['image/filename'].bytes_list.value[0].decode()]
    )


def _run(images, wall_s, cpu_s):
  return {'images': images, 'wall_s': wall_s, 'cpu_s': cpu_s}


def test_marginal_cancels_startup():
  from benchmarks.marginal import marginal

  m = marginal(
    _run(200, 10.0 + 200 / 400, 12.0 + 200 * 0.005),
    _run(4000, 10.0 + 4000 / 400, 12.0 + 4000 * 0.005),
  )
  assert m['cpu_ms_per_image'] == pytest.approx(5.0) and m['images_per_s'] == pytest.approx(400)
  assert m['startup_wall_s'] == pytest.approx(10.0) and m['startup_cpu_s'] == pytest.approx(12.0)
  assert m['wall_plausible'] is None  # cores not given
  small, large = _run(200, 10.5, 13.0), _run(4000, 20.0, 32.0)  # 400 img/s at 5 ms: 2 cores busy
  assert marginal(small, large, cores=2)['wall_plausible'] is True
  # the start-up's wall moved, not 2 cores
  assert marginal(small, large, cores=1)['wall_plausible'] is False
  # too small a difference: no figure, no crash
  noisy = marginal(_run(8, 9.0, 9.0), _run(24, 8.5, 9.0))
  assert (
    noisy['cpu_ms_per_image'] is None
    and noisy['images_per_s'] is None
    and noisy['startup_wall_s'] is None
  )
  with pytest.raises(ValueError, match='more images'):
    marginal(_run(10, 1, 1), _run(10, 2, 2))


def test_ratios_are_taken_within_each_repeat_and_medians_checked_against_the_targets():
  from benchmarks import marginal as mg

  def repeat(load):  # the load slows both converters of one repeat alike: the ratios do not move
    pipeline = {'cpu_ms_per_image': 4.0 * load, 'images_per_s': 500 / load, 'startup_wall_s': 9.0}
    script = {'cpu_ms_per_image': 5.0 * load, 'images_per_s': 400 / load, 'startup_wall_s': 7.0}
    return mg.repeat_summary(
      pipeline, script, {'floor_us_per_image': 3600.0 * load, 'ceiling_us_per_image': 1}
    )

  repeats = [repeat(load) for load in (1.0, 1.3, 0.8)]
  for r in repeats:
    assert r['cpu_ratio'] == pytest.approx(1.25) and r['wall_ratio'] == pytest.approx(1.25)
    assert r['floor_ratio'] == pytest.approx(4.0 / 3.6) and r['tf_cpu_ratio'] is None
  summary = mg.summarize(repeats)
  assert summary['pipeline_cpu_ms'] == {
    'median': 4.0,
    'min': 3.2,
    'max': pytest.approx(5.2),
    'n': 3,
  }
  assert [t['met'] for t in summary['targets']] == [True, True]
  assert mg.format_targets(summary).count('| MET |') == 2
  assert [t['bound'] for t in mg.summarize(repeats, 'phone')['targets']] == [1.25, 1.25]
  repeats[0]['wall_ratio'] = None
  summary = mg.summarize(repeats[:1])
  assert [t['met'] for t in summary['targets']] == [True, None]
  assert 'NOT MEASURABLE' in mg.format_targets(summary)
  assert 'NOT MET' in mg.format_targets(mg.summarize([repeat(1.0) | {'cpu_ratio': 0.99}]))
  assert 'NOT MET' in mg.format_targets(mg.summarize([repeat(1.0) | {'cpu_ratio': 1.2}], 'phone'))
  assert '**median**' in mg.format_repeats(repeats, [(1.0, 1.5)] * 3)


def test_repeats_alternate_who_goes_first():
  from benchmarks.run import repeat_order

  assert [repeat_order(r, 2) for r in range(4)] == [
    ['pipeline', 'script', 'tf'],
    ['script', 'pipeline', 'tf'],
    ['pipeline', 'script'],
    ['script', 'pipeline'],
  ]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_benchmark_end_to_end(tmp_path, monkeypatch):
  """The smoke run works and prints every field; its figures (a few images) are never checked."""
  from benchmarks import run as bench

  monkeypatch.setenv('FOLDER2TFRECORD_BENCH_CACHE', str(tmp_path / 'cache'))
  results = tmp_path / 'results'
  assert (
    bench.main(
      [
        '--quick',
        '--repeats',
        '1',
        '--memory',
        '8,24',
        '--quality_images',
        '2',
        '--results',
        str(results),
      ]
    )
    == 0
  )
  data = json.loads((results / 'results.json').read_text())
  assert [s['profile'] for s in data['sets']] == ['imagenet', 'phone']
  assert data['machine']['nproc'] >= 1 and data['machine']['cpu_model'] and data['code']['commit']
  for s in data['sets']:
    assert s['small'] == 8 and s['large'] == 24 and len(s['repeats']) == 1
    assert sorted((r['contender'], r['images']) for r in s['runs']) == [
      (c, n) for c in ('pipeline', 'script', 'tf') for n in (8, 24)
    ]
    assert all(r['cpu_s'] > 0 and r['wall_s'] > 0 and r['peak_rss_mib'] > 50 for r in s['runs'])
    assert s['floors'][0]['images'] == 24 and s['floors'][0]['floor_us_per_image'] > 0
    assert [t['key'] for t in s['summary']['targets']] == ['cpu_ratio', 'wall_ratio']
  assert len(list(results.glob('run-*.json'))) == 1
  assert [p['images'] for p in data['memory']['points']] == [8, 24] and 'flat' in data['memory']
  assert {(q['method'], q['path']) for q in data['quality']} == {
    (m, p) for m in ('bilinear', 'bicubic', 'lanczos') for p in ('fast', 'reference (Pillow)')
  }
  summary = (results / 'summary.md').read_text()
  for field in (
    'cores',
    'load average',
    'commit',
    "Set 'imagenet'",
    "Set 'phone'",
    'CPU script÷pipeline',
    'wall pipeline÷script',
    'pipeline÷floor',
    'ceiling÷floor',
    'TF CPU ms/img',
    'start-up',
    'pipeline peak RSS',
    'resample methods',
  ):
    assert field in summary, field
  target_lines = [
    line for line in summary.splitlines() if line.startswith('| CPU per image, script')
  ]
  assert len(target_lines) == 2 and all(
    'MET' in line or 'NOT MEASURABLE' in line for line in target_lines
  )
  assert bench.main(['--render', str(results / 'results.json'), '--results', str(results)]) == 0


@pytest.fixture(scope='module')
def phone_dataset(tmp_path_factory):
  return synth.synthesize(
    24, 4, seed=5, cache_dir=tmp_path_factory.mktemp('phone'), processes=1, profile='phone'
  )


def test_app1_exif_probe_agrees_with_pillow(phone_dataset):
  from benchmarks import variants

  seen = set()
  for path, _ in synth.list_images(phone_dataset.root):
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as im:
      pillow = im.getexif().get(0x0112, 1)
      assert (variants.app1_exif(data) is not None) == ('exif' in im.info)
    for how in ('open', 'segment'):
      assert variants.exif_orientation(data, how) == pillow
    seen.add(pillow)
  assert seen >= {1} and seen & {6, 8}


@pytest.mark.parametrize(
  'variant, same_pixels',
  [
    ('BASELINE', True),
    ('sums', True),
    ('pillow_probe', True),
    ('probe', True),
    ('probe_segment', True),
    ('fastdct', False),
    ('m8', False),
    ('rotate_late', False),
    ('reuse_buffer', True),
  ],
)
def test_lever_variants_match_the_product(small_dataset, phone_dataset, variant, same_pixels):
  from benchmarks import variants
  from transforms.imaging.image import ImageSpec, process_image

  v = {
    'BASELINE': variants.BASELINE,
    'sums': variants.Variant(sums='array'),
    'pillow_probe': variants.Variant(probe='pillow'),
    'probe': variants.Variant(probe='simplejpeg'),
    'probe_segment': variants.Variant(probe='simplejpeg', exif='segment'),
    'fastdct': variants.Variant(fastdct=True),
    'm8': variants.Variant(scale='m8'),
    'rotate_late': variants.Variant(rotate_late=True),
    'reuse_buffer': variants.Variant(reuse_buffer=True),
  }[variant]
  spec = ImageSpec()
  for dataset in (small_dataset, phone_dataset):
    for path, _ in synth.list_images(dataset.root)[:12]:
      data = path.read_bytes()
      want, got = process_image(data, spec), variants.process_variant(data, spec, v)
      assert (got.height, got.width, got.orientation) == (want.height, want.width, want.orientation)
      assert got.crop == pytest.approx(want.crop)
      if same_pixels:
        assert got.encoded == want.encoded, path.name
      if variant in ('BASELINE', 'pillow_probe', 'probe', 'probe_segment', 'reuse_buffer'):
        assert (got.channel_sums, got.channel_squares) == (want.channel_sums, want.channel_squares)
      else:  # other pixels, or the same pixels before JPEG: the means move by a fraction of a level
        n = got.height * got.width
        assert np.allclose(
          np.array(got.channel_sums) / n, np.array(want.channel_sums) / n, atol=2.0
        )


def test_interleaved_passes_rotate_and_pair():
  from benchmarks.levers import interleaved, paired

  calls = []
  fns = {name: (lambda item, name=name: calls.append((name, item))) for name in ('a', 'b', 'c')}
  per_pass = interleaved(fns, [0, 1], 2)
  # pass 1: image by image
  assert calls == [
    ('a', 0),
    ('b', 0),
    ('c', 0),
    ('b', 1),
    ('c', 1),
    ('a', 1),
    # pass 2: rotated again
    ('b', 0),
    ('c', 0),
    ('a', 0),
    ('c', 1),
    ('a', 1),
    ('b', 1),
  ]
  assert {len(v) for v in per_pass.values()} == {2}
  result = paired({'base': [10.0, 12.0, 11.0], 'x': [8.0, 11.0, 8.0]}, 'base')
  assert result['x']['us'] == 8.0 and result['x']['saving_us'] == 2.0
  assert (result['x']['saving_min_us'], result['x']['saving_max_us']) == (1.0, 3.0)


@pytest.mark.timeout(300)
def test_levers_benchmark_runs_and_reports_every_lever(tmp_path, monkeypatch, capsys):
  """A tiny run: every lever gets a row with its time, PSNR and record check; figures not checked."""
  from benchmarks import levers

  monkeypatch.setenv('FOLDER2TFRECORD_BENCH_CACHE', str(tmp_path / 'cache'))
  assert (
    levers.main(
      [
        '--sets',
        'imagenet',
        '--num_images',
        '8',
        '--images',
        '6',
        '--passes',
        '1',
        '--psnr_images',
        '2',
        '--profile',
        '--results',
        str(tmp_path),
      ]
    )
    == 0
  )
  result = json.loads(next(tmp_path.glob('levers-*.json')).read_text())['sets'][0]
  assert set(result['variants']) == set(levers.VARIANTS)
  assert result['records']['1. sums of the pre-encode pixels']['identical_bytes'] == 6
  assert result['writer']['variants']['_write_records (product)']['us'] > 0
  assert 'with open() instead of FileSystems' in result['writer']['variants']
  assert set(result['components']) == {'probe', 'statistics', 'decode'}
  out = capsys.readouterr().out
  assert (
    'ΔPSNR' in out
    and 'over open + read + process_image' in out
    and 'without building the Example' in out
  )


def test_issue28_reference_sums_and_tree_specs():
  """benchmarks.component_levers' previous statistics give the product's sums (a fair 'before'), and
  compare_trees parses NAME=REF+PATCH."""
  import argparse
  from benchmarks.compare_trees import parse_tree
  from benchmarks.component_levers import previous_channel_sums
  from transforms.imaging.image import channel_sums

  rng = np.random.default_rng(3)
  for shape in ((256, 256, 3), (375, 500, 4), (1, 70_000, 3)):
    pixels = rng.integers(0, 256, shape, np.uint8)
    assert previous_channel_sums(pixels) == channel_sums(pixels)
  assert parse_tree('both=0e9fa8d+a.patch+b.patch') == ('both', '0e9fa8d', ('a.patch', 'b.patch'))
  assert parse_tree('base=HEAD') == ('base', 'HEAD', ())
  with pytest.raises(argparse.ArgumentTypeError):
    parse_tree('=HEAD')
