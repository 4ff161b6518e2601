"""model_garden.yaml: a TF Model Garden experiment config that trains on this output as it is.

    python -m official.vision.train --experiment=resnet_imagenet --mode=train_and_eval \\
        --model_dir=/tmp/model --config_file=OUTPUT/model_garden.yaml

Model Garden merges the file over the experiment's defaults (`resnet_imagenet`: ResNet-50, SGD with
momentum 0.9, label smoothing, ...). The file sets what depends on this output: `num_classes` (the
classes + --label_offset), each split's `input_path` (a glob of its shards under --output as given,
`ShardNameTemplate.glob`), batch and dtype (float32), `tfrecord_compressed` for gzip shards,
`drop_remainder: false` for validation, and the `trainer` schedule of Model Garden's ResNet-50
ImageNet configs in this output's steps (90 epochs, learning rate 0.1 x batch / 256, divided by 10
at epochs 30, 60 and 80, after a 5-epoch warm-up); a multi-label output gets `is_multilabel: true`
and a sigmoid loss. The batch is --model_garden_batch_size. Every value and its source:
docs/readers.md#what-model_gardenyaml-holds.
"""

from __future__ import annotations

import logging
import math
from typing import Dict, Optional

import yaml

from transforms.output import layout
from transforms.output.file_format import FileFormat
from transforms.split.sharding import TEST, TRAIN, VALIDATION, ordered_splits

_LOGGER = logging.getLogger(__name__)

EXPERIMENT = 'resnet_imagenet'
DEFAULT_BATCH_SIZE = 1024  # examples per global batch
EPOCHS = 90
DECAY_EPOCHS = (30, 60, 80)  # the learning rate is divided by 10 at each
WARMUP_EPOCHS = 5
LEARNING_RATE_PER_256 = 0.1  # initial learning rate for a batch of 256 (Goyal et al. 2017 scaling)


def _data_config(output: layout.OutputLayout, manifest: Dict, split: str, batch_size: int) -> Dict:
  data = {
    'input_path': layout.join(output.root, output.shard_names.glob(split)),
    'is_training': split == TRAIN,
    'global_batch_size': batch_size,
    'dtype': 'float32',
  }
  if split != TRAIN:
    data['drop_remainder'] = False
  if manifest.get('compression') == 'gzip':
    data['file_type'] = 'tfrecord_compressed'
  if manifest.get('multi_label'):
    data['is_multilabel'] = True
  return data


def model_garden_config(
  output: layout.OutputLayout, manifest: Dict, batch_size: int
) -> Optional[Dict]:
  """The experiment overrides for an output (module docstring); None when it has no train split.

  Args:
    output: the output's layout (its root and shard names).
    manifest: its manifest.json content (split example counts, num_classes, label_offset).
    batch_size: global batch size, examples.
  """
  splits = manifest['splits']
  if TRAIN not in splits:
    return None
  steps_per_epoch = max(1, splits[TRAIN]['num_examples'] // batch_size)
  task = {
    'model': {'num_classes': manifest['num_classes'] + manifest['label_offset']},
    'train_data': _data_config(output, manifest, TRAIN, batch_size),
  }
  trainer = {
    'train_steps': EPOCHS * steps_per_epoch,
    'steps_per_loop': steps_per_epoch,
    'summary_interval': steps_per_epoch,
    'checkpoint_interval': steps_per_epoch,
  }
  if VALIDATION in splits:
    task['validation_data'] = _data_config(output, manifest, VALIDATION, batch_size)
    trainer['validation_steps'] = math.ceil(splits[VALIDATION]['num_examples'] / batch_size)
    trainer['validation_interval'] = steps_per_epoch
  if manifest.get('multi_label'):  # one sigmoid per class (Model Garden's multi-label losses)
    task['losses'] = {'use_binary_cross_entropy': True, 'label_smoothing': 0.0}
  rate = LEARNING_RATE_PER_256 * batch_size / 256
  trainer['optimizer_config'] = {
    'learning_rate': {
      'type': 'stepwise',
      'stepwise': {
        'boundaries': [epoch * steps_per_epoch for epoch in DECAY_EPOCHS],
        'values': [round(rate / 10**k, 12) for k in range(len(DECAY_EPOCHS) + 1)],
      },
    },
    'warmup': {'type': 'linear', 'linear': {'warmup_steps': WARMUP_EPOCHS * steps_per_epoch}},
  }
  return {'task': task, 'trainer': trainer}


def _header(output: layout.OutputLayout, manifest: Dict, batch_size: int) -> str:
  splits = manifest['splits']
  counts = ', '.join(f'{split} {splits[split]["num_examples"]}' for split in ordered_splits(splits))
  lines = [
    'TF Model Garden experiment config for this output, written by folder2tfrecord. Train with:',
    f'  python -m official.vision.train --experiment={EXPERIMENT} --mode=train_and_eval \\',
    f'      --model_dir=MODEL_DIR --config_file={output.path(layout.MODEL_GARDEN_FILE)}',
    f"Examples: {counts}. Global batch {batch_size} (--model_garden_batch_size; Model Garden's",
    "own ResNet-50 ImageNet configs use 4096 on TPU, 2048 on GPU). Their schedule in this output's",
    f'steps: {EPOCHS} epochs of max(1, train examples // batch) steps; learning rate 0.1 x batch / 256,',
    f'divided by 10 at epochs {", ".join(map(str, DECAY_EPOCHS))}; {WARMUP_EPOCHS} warm-up epochs; '
    'validation_steps = ceil(validation examples / batch).',
  ]
  if VALIDATION not in splits:
    lines.append('No validation split: train with --mode=train.')
  if TEST in splits:
    lines.append(
      'Test split (the trainer does not read it): '
      + layout.join(output.root, output.shard_names.glob(TEST))
    )
  return ''.join(f'# {line}\n' for line in lines)


def model_garden_text(
  output: layout.OutputLayout, manifest: Dict, batch_size: int
) -> Optional[str]:
  """model_garden.yaml's content; None (and a warning that says why) without a train split, or for
  ArrayRecord shards (Model Garden's readers take TFRecord)."""
  if manifest.get('file_format', FileFormat.TFRECORD) != FileFormat.TFRECORD:
    _LOGGER.warning(
      'Not writing %s: Model Garden reads TFRecord shards, these are %s (convert with '
      '--file_format tfrecord for Model Garden).',
      layout.MODEL_GARDEN_FILE,
      manifest['file_format'],
    )
    return None
  values = model_garden_config(output, manifest, batch_size)
  if values is None:
    _LOGGER.warning('Not writing %s: the output has no train split.', layout.MODEL_GARDEN_FILE)
    return None
  return _header(output, manifest, batch_size) + yaml.safe_dump(values, sort_keys=False)


def write_model_garden_config(output: layout.OutputLayout, manifest: Dict, batch_size: int) -> None:
  """Writes `model_garden_text` into the output (through Beam FileSystems), when there is one."""
  text = model_garden_text(output, manifest, batch_size)
  if text is not None:
    layout.write_text(output.path(layout.MODEL_GARDEN_FILE), text)
