"""ImageNet layouts: flat validation folder + ground truth, synset texts, VOC bounding boxes."""

import io
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import SAMPLE_DIR, convert
from transforms.imaging.image import ImageSpec, process_image
from transforms.inputs.imagenet import map_boxes, parse_voc_xml, read_ground_truth

SYNSETS = {'animal': 'n00000001', 'flower': 'n00000002', 'space': 'n00000003'}


def _voc(width, height, boxes):
  objects = ''.join(
    f'<object><name>x</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>'
    f'<ymax>{b[3]}</ymax></bndbox></object>'
    for b in boxes
  )
  return (
    f'<annotation><filename>f</filename><size><width>{width}</width><height>{height}</height>'
    f'<depth>3</depth></size>{objects}</annotation>'
  ).encode()


def _imagenet_like(root):
  """train/<synset>/<synset>_<i>.JPEG and a flat validation/ILSVRC2012_val_%08d.JPEG folder."""
  truth = {}
  index = 0
  for name, synset in SYNSETS.items():
    photos = sorted((SAMPLE_DIR / name).iterdir())
    (root / 'train' / synset).mkdir(parents=True)
    for i, photo in enumerate(photos[:-2]):
      shutil.copy(photo, root / 'train' / synset / f'{synset}_{i}{photo.suffix}')
    for photo in photos[-2:]:
      index += 1
      (root / 'validation').mkdir(exist_ok=True)
      shutil.copy(photo, root / 'validation' / f'ILSVRC2012_val_{index:08d}.JPEG')
      truth[f'ILSVRC2012_val_{index:08d}'] = synset
  return truth


def _records(output, split):
  examples = []
  for shard in sorted(output.glob(f'{split}-*')):
    for raw in tf.data.TFRecordDataset(str(shard)):
      examples.append(tf.train.Example.FromString(raw.numpy()).features.feature)
  return examples


def _value(feature, key):
  f = feature[key]
  return list(f.bytes_list.value) or list(f.int64_list.value) or list(f.float_list.value)


@pytest.mark.parametrize('form', ['csv', 'devkit', 'synset_per_line'])
def test_flat_validation_folder_with_ground_truth(tmp_path, form):
  source = tmp_path / 'imagenet'
  truth = _imagenet_like(source)
  (source / 'validation' / 'ILSVRC2012_val_00000099.JPEG').write_bytes(
    (SAMPLE_DIR / 'animal' / 'gc_cat.JPEG').read_bytes()
  )  # No ground truth for this one.
  synset_list = sorted(SYNSETS.values())
  extra = []
  if form == 'csv':
    gt = tmp_path / 'LOC_val_solution.csv'
    gt.write_text(
      'ImageId,PredictionString\n'
      + ''.join(f'{stem},{synset} 1 2 30 40 {synset} 5 6 70 80\n' for stem, synset in truth.items())
    )
  elif form == 'devkit':
    gt = tmp_path / 'ILSVRC2012_validation_ground_truth.txt'
    gt.write_text(''.join(f'{synset_list.index(truth[s]) + 1}\n' for s in sorted(truth)))
    synsets = tmp_path / 'LOC_synset_mapping.txt'
    synsets.write_text(''.join(f'{s} text of {s}\n' for s in synset_list))
    extra = ['--ground_truth_synsets', synsets]
  else:
    gt = tmp_path / 'imagenet_2012_validation_synset_labels.txt'
    gt.write_text(''.join(f'{truth[s]}\n' for s in sorted(truth)))
  texts = tmp_path / 'synset_words.txt'
  texts.write_text(''.join(f'{s} human text, number {i}\n' for i, s in enumerate(synset_list)))
  output = tmp_path / 'out'
  assert (
    convert(
      source,
      output,
      '--validation_ground_truth',
      gt,
      '--class_text_file',
      texts,
      '--label_offset',
      '1',
      *extra,
    )
    == 0
  )
  assert (output / 'labels.txt').read_text().splitlines() == synset_list
  validation = _records(output, 'validation')
  assert len(validation) == len(truth)
  for feature in validation:
    stem = _value(feature, 'image/filename')[0].decode().rsplit('.', 1)[0]
    synset = _value(feature, 'image/class/synset')[0].decode()
    assert synset == truth[stem]
    assert _value(feature, 'image/class/label')[0] == synset_list.index(synset) + 1
    assert _value(feature, 'image/class/text')[0].decode().startswith('human text')
  rejects = (output / 'rejects.jsonl').read_text()
  assert 'ILSVRC2012_val_00000099.JPEG' in rejects and 'no ground-truth label' in rejects


def test_flat_validation_without_ground_truth_fails_early(tmp_path, capsys):
  source = tmp_path / 'imagenet'
  _imagenet_like(source)
  assert convert(source, tmp_path / 'out') == 2
  assert '--validation_ground_truth' in capsys.readouterr().err


def test_devkit_ids_need_the_synset_list(tmp_path):
  gt = tmp_path / 'gt.txt'
  gt.write_text('3\n1\n')
  with pytest.raises(ValueError, match='--ground_truth_synsets'):
    read_ground_truth(str(gt))


def _card_with_box(width, height, box):
  array = np.full((height, width, 3), 255, np.uint8)
  array[box[1] : box[3], box[0] : box[2]] = (220, 20, 20)
  return array


def _red_fraction(rgb, box):
  h, w, _ = rgb.shape
  x0, y0, x1, y1 = (int(round(v)) for v in (box[0] * w, box[1] * h, box[2] * w, box[3] * h))
  region = rgb[y0:y1, x0:x1].reshape(-1, 3).astype(int)
  red = (region[:, 0] > 150) & (region[:, 1] < 100)
  return red.mean(), (x1 - x0) * (y1 - y0)


@pytest.mark.parametrize('orientation', range(1, 9))
def test_boxes_follow_orientation_and_crop(orientation):
  width, height, box = 600, 400, (380, 60, 560, 200)  # Right of centre: partly cut by the crop.
  stored_pixels = _card_with_box(width, height, box)
  image = Image.fromarray(stored_pixels)
  exif = Image.Exif()
  exif[0x0112] = orientation
  buffer = io.BytesIO()
  image.save(buffer, 'JPEG', quality=95, exif=exif.tobytes())
  stored = process_image(buffer.getvalue(), ImageSpec(resize_shorter_side=256, center_crop=224))
  boxes = map_boxes(parse_voc_xml(_voc(width, height, [box])), stored.orientation, stored.crop)
  assert len(boxes) == 1
  rgb = np.asarray(Image.open(io.BytesIO(stored.encoded)))
  inside, area = _red_fraction(rgb, boxes[0])
  assert inside > 0.9 and area > 500, (orientation, boxes, inside)
  everything_red = ((rgb[..., 0] > 150) & (rgb[..., 1] < 100)).sum()
  assert everything_red <= area * 1.1  # Nothing red outside the mapped box.


def test_boxes_cut_away_by_the_crop_are_dropped():
  assert map_boxes([(0.0, 0.0, 0.1, 0.1), (0.4, 0.4, 0.6, 0.6)], 1, (0.125, 0.0, 0.875, 1.0)) == [
    (pytest.approx(0.4 / 0.75 - 0.125 / 0.75), 0.4, pytest.approx(0.6 / 0.75 - 0.125 / 0.75), 0.6)
  ]


def test_boxes_end_to_end(tmp_path):
  source = tmp_path / 'input'
  (source / 'n00000001').mkdir(parents=True)
  annotations = tmp_path / 'Annotation'
  (annotations / 'n00000001').mkdir(parents=True)
  box = (100, 50, 300, 250)
  Image.fromarray(_card_with_box(400, 300, box)).save(
    source / 'n00000001' / 'n00000001_1.JPEG', quality=95
  )
  (annotations / 'n00000001' / 'n00000001_1.xml').write_bytes(_voc(400, 300, [box]))
  Image.fromarray(_card_with_box(300, 300, (0, 0, 1, 1))).save(source / 'n00000001' / 'no_box.JPEG')
  output = tmp_path / 'out'
  assert convert(source, output, '--bbox_dir', annotations, '--label_offset', '1') == 0
  features = {_value(f, 'image/filename')[0].decode(): f for f in _records(output, 'train')}
  boxed = features['n00000001/n00000001_1.JPEG']
  coords = [_value(boxed, f'image/object/bbox/{k}') for k in ('xmin', 'ymin', 'xmax', 'ymax')]
  assert all(len(c) == 1 for c in coords)
  assert _value(boxed, 'image/object/bbox/label') == [1]
  rgb = tf.io.decode_jpeg(_value(boxed, 'image/encoded')[0]).numpy()
  inside, _ = _red_fraction(rgb, [c[0] for c in coords])
  assert inside > 0.9
  assert _value(features['n00000001/no_box.JPEG'], 'image/object/bbox/xmin') == []
