"""The records feed TF Model Garden's image classification input pipeline, unchanged.

Model Garden (`tf-models-official`) pins an older TensorFlow, so it is not a project dependency:
this test installs it with `--no-deps`, plus the four modules its classification input pipeline
imports (MODEL_GARDEN_PACKAGES), into its own folder under ~/.cache/folder2tfrecord/ (created from
scratch when missing), and runs Model Garden in a subprocess with that folder on PYTHONPATH, next to
the project's TensorFlow. The subprocess is this file run as a script (`main` below): it builds the
same `InputReader(decoder_fn=classification_input.Decoder().decode,
parser_fn=Parser(...).parse_fn(...))` that
`official.vision.tasks.image_classification.ImageClassificationTask.build_inputs` builds, from an
`ImageClassificationTask` DataConfig whose input_path is the shard glob of the output's
model_garden.yaml, and reports what it yields. The trainer test runs `official.vision.train` from
model_garden.yaml itself (transforms/metadata/model_garden.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

# tf-keras follows the TensorFlow version (2.21 here); gin-config, scipy and pycocotools are what
# `official.vision` imports; tensorboard (+ its data server) is what the trainer's summaries need.
MODEL_GARDEN_PACKAGES = (
  'tf-models-official==2.20.0',
  'tf-keras==2.21.0',
  'gin-config==0.5.0',
  'scipy==1.17.1',
  'pycocotools==2.0.11',
  'tensorboard==2.20.0',
  'tensorboard-data-server==0.7.2',
)
CACHE = pathlib.Path(
  os.environ.get('FOLDER2TFRECORD_CACHE', pathlib.Path.home() / '.cache' / 'folder2tfrecord')
)
IMAGE_SIZE = 224
BATCH = 8


def model_garden_dir() -> pathlib.Path:
  """A folder with MODEL_GARDEN_PACKAGES (pip --target, --no-deps), installed once, atomically."""
  key = hashlib.sha256(' '.join(MODEL_GARDEN_PACKAGES).encode()).hexdigest()[:12]
  target = CACHE / f'model-garden-{key}'
  if (target / '.complete').exists():
    return target
  staging = CACHE / f'model-garden-{key}.partial-{os.getpid()}'
  shutil.rmtree(staging, ignore_errors=True)
  staging.mkdir(parents=True)
  subprocess.run(
    [
      sys.executable,
      '-m',
      'pip',
      'install',
      '--quiet',
      '--no-deps',
      '--target',
      str(staging),
      *MODEL_GARDEN_PACKAGES,
    ],
    check=True,
    timeout=600,
  )
  (staging / '.complete').touch()
  shutil.rmtree(target, ignore_errors=True)
  staging.rename(target)
  return target


def _model_garden_env() -> dict:
  return dict(
    os.environ,
    PYTHONPATH=os.pathsep.join(
      [str(model_garden_dir()), str(pathlib.Path(__file__).resolve().parent.parent)]
    ),
    TF_CPP_MIN_LOG_LEVEL='2',
  )


def run_model_garden(output_dir: pathlib.Path, is_training: bool, num_classes: int) -> dict:
  result = subprocess.run(
    [sys.executable, __file__, str(output_dir), str(int(is_training)), str(num_classes)],
    env=_model_garden_env(),
    capture_output=True,
    text=True,
    timeout=600,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-5000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize('is_training', [True, False], ids=['train', 'eval'])
def test_model_garden_classification_input(readers_offset1_output, is_training):
  manifest = json.loads((readers_offset1_output / 'manifest.json').read_text())
  assert manifest['label_offset'] == 1
  num_classes = manifest['num_classes'] + 1  # 0 = background, as Model Garden's ImageNet configs
  got = run_model_garden(readers_offset1_output, is_training, num_classes)

  split = 'train' if is_training else 'validation'
  expected = manifest['splits'][split]['num_examples']
  assert got['image_shapes'][0] == [BATCH, IMAGE_SIZE, IMAGE_SIZE, 3]
  assert got['image_dtype'] == 'float32'
  # Model Garden normalises with ImageNet's mean/std: values around 0, not 0-255 pixels.
  assert -3.0 < got['image_min'] < 0.0 < got['image_max'] < 3.0
  assert got['label_shapes'][0] == [BATCH]
  if is_training:  # the training reader repeats: the batches it gave hold only our labels
    assert got['num_batches'] == 3
  else:  # one pass, every record exactly once
    assert sum(s[0] for s in got['image_shapes']) == expected
  labels = got['labels']
  assert set(labels) <= set(range(1, num_classes)), labels  # 1..N: background (0) never used
  if not is_training:
    counts = json.loads((readers_offset1_output / 'stats.json').read_text())[split]['class_counts']
    names = (readers_offset1_output / 'labels.txt').read_text().split()
    names = [n for n in names if n != 'background']
    assert {names[k - 1]: labels.count(k) for k in set(labels)} == counts


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_model_garden_trainer_trains_from_model_garden_yaml(split_folders_output, tmp_path):
  """Model Garden's own entry point (`official.vision.train`, experiment resnet_imagenet) trains from
  the converter's model_garden.yaml (classes, shard globs, batch, steps), on the sample photos
  arranged in train/ val/ test/, as docs/readers.md tells users to; the overrides only shrink the
  run to a ResNet-18, batches of 4, two training and two evaluation steps on CPU."""
  config_file = split_folders_output / 'model_garden.yaml'
  config = yaml.safe_load(config_file.read_text())
  assert config['task']['model']['num_classes'] == 6  # 5 classes + label offset 1
  model_dir = tmp_path / 'model'
  overrides = {
    'task.model.backbone.resnet.model_id': 18,
    'task.train_data.global_batch_size': 4,
    'task.validation_data.global_batch_size': 4,
    'task.train_data.shuffle_buffer_size': 16,
    'task.train_data.cycle_length': 2,
    'task.validation_data.cycle_length': 1,
    'trainer.train_steps': 2,
    'trainer.validation_steps': 2,
    'trainer.steps_per_loop': 1,
    'trainer.summary_interval': 1,
    'trainer.checkpoint_interval': 2,
    'trainer.validation_interval': 2,
    'runtime.distribution_strategy': 'one_device',
    'runtime.num_gpus': 0,
  }
  result = subprocess.run(
    [
      sys.executable,
      '-m',
      'official.vision.train',
      '--experiment=resnet_imagenet',
      '--mode=train_and_eval',
      f'--model_dir={model_dir}',
      f'--config_file={config_file}',
      '--params_override=' + ','.join(f'{k}={v}' for k, v in overrides.items()),
    ],
    env=_model_garden_env(),
    capture_output=True,
    text=True,
    timeout=1100,
    check=False,
  )
  log = result.stdout + result.stderr
  assert result.returncode == 0, log[-5000:]
  assert 'train | step:      2' in log and 'eval | step:      2' in log
  assert "'accuracy'" in log and "'validation_loss'" in log
  assert (model_dir / 'ckpt-2.index').exists()
  # what the trainer ran with (tuples)
  params = yaml.full_load((model_dir / 'params.yaml').read_text())
  assert params['task']['model']['num_classes'] == 6
  assert params['task']['train_data']['input_path'] == config['task']['train_data']['input_path']
  assert params['task']['validation_data']['drop_remainder'] is False


def main(argv) -> None:
  """Subprocess side: Model Garden's InputReader over our shards; prints one JSON line."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from official.core import input_reader  # pylint: disable=import-outside-toplevel
  from official.vision.configs import image_classification as config  # pylint: disable=import-outside-toplevel
  from official.vision.dataloaders import classification_input  # pylint: disable=import-outside-toplevel

  output_dir, is_training, num_classes = argv[1], bool(int(argv[2])), int(argv[3])
  with open(os.path.join(output_dir, 'model_garden.yaml'), encoding='utf-8') as f:
    data = yaml.safe_load(f)['task']['train_data' if is_training else 'validation_data']
  params = config.DataConfig(
    input_path=data['input_path'],
    is_training=is_training,
    global_batch_size=BATCH,
    shuffle_buffer_size=64,
    cycle_length=2,
    drop_remainder=is_training,
  )
  decoder = classification_input.Decoder(
    image_field_key=params.image_field_key, label_field_key=params.label_field_key
  )
  parser = classification_input.Parser(
    output_size=[IMAGE_SIZE, IMAGE_SIZE],
    num_classes=num_classes,
    image_field_key=params.image_field_key,
    label_field_key=params.label_field_key,
    decode_jpeg_only=params.decode_jpeg_only,
    aug_rand_hflip=params.aug_rand_hflip,
    aug_crop=params.aug_crop,
    dtype=params.dtype,
  )
  reader = input_reader.InputReader(
    params,
    dataset_fn=tf.data.TFRecordDataset,
    decoder_fn=decoder.decode,
    parser_fn=parser.parse_fn(params.is_training),
  )
  batches = reader.read()
  if is_training:
    batches = batches.take(3)  # the training reader repeats forever
  images, labels = [], []
  low, high = float('inf'), float('-inf')
  for image, label in batches:
    images.append(image.shape.as_list())
    labels.append(label.numpy().tolist())
    low, high = min(low, float(tf.reduce_min(image))), max(high, float(tf.reduce_max(image)))
  print(
    json.dumps(
      {
        'image_shapes': images,
        'image_dtype': image.dtype.name,
        'label_shapes': [[len(x)] for x in labels],
        'labels': [v for x in labels for v in x],
        'num_batches': len(images),
        'image_min': low,
        'image_max': high,
      }
    )
  )


if __name__ == '__main__':
  main(sys.argv)
