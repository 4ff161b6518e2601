"""`ExampleSource`: one split of an output as decoded examples, without TensorFlow or TFDS.

    from pipeline.read import ExampleSource
    source = ExampleSource('OUTPUT', 'train')      # --file_format array_record: random access
    len(source); source[1234]                      # {'image': uint8 [H, W, 3], 'label': int, ...}
    grain.MapDataset.source(source).shuffle(seed=0).map(...)          # Grain
    torch.utils.data.DataLoader(source, batch_size=64, shuffle=True)  # PyTorch (equal-sized images)

Over ArrayRecord output it is map-style (Grain's `RandomAccessDataSource` protocol, PyTorch's
`Dataset`), on `array_record`'s `ArrayRecordDataSource`; over TFRecord output it is iterable only
(`__getitem__` raises TypeError saying how to convert). Records are parsed by
transforms/imaging/example.py's Example class and decoded by simplejpeg. Files are read through
Beam's FileSystems (Beam options as `pipeline_options`); gs:// and s3:// ArrayRecord shards are
copied into `cache_dir` first, and a pickled source (Grain's, PyTorch's worker processes) reopens
its readers from those local paths.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import weakref
from typing import Any, Dict, Iterator, List, Optional, Sequence, SupportsIndex

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from transforms.output import file_format as file_formats
from transforms.imaging import image as image_lib
from transforms.output import layout
from transforms.imaging.example import parse_example
from transforms.paths import is_remote

Example = Dict[str, Any]


@dataclasses.dataclass(frozen=True)
class _ShardInstruction:
  """A whole shard, as array_record's `FileInstruction` protocol (TFDS's): saves opening every file
  to count its records, which manifest.json already says."""

  filename: str
  skip: int
  take: int
  examples_in_shard: int


def decode_example(record: bytes, multi_label: bool = False) -> Example:
  """A serialized tf.train.Example of the converter -> its example.

  Args:
    multi_label: the record is a multi-label --manifest's (manifest.json "multi_label").
  Returns:
    {'image': uint8 [H, W, 3] RGB (libjpeg-turbo), 'label': int (as stored, label_offset included),
     'filename': str (path relative to the split's root), 'synset': str (the class folder name)};
    multi_label: 'label' the sorted list of label ids, 'synset' the list of class names.
  Raises:
    ValueError: not a serialized Example, one without these features (transforms/imaging/example.py
      parse_example), or `image/encoded` is not a decodable JPEG.
  """
  example = parse_example(record)
  if multi_label:
    example.require('encoded', 'labels', 'filename')
    return {
      'image': image_lib.decode_stored_jpeg(example.encoded),
      'label': list(example.labels),
      'filename': example.filename,
      'synset': list(example.synsets),
    }
  example.require('encoded', 'label', 'filename', 'synset')
  return {
    'image': image_lib.decode_stored_jpeg(example.encoded),
    'label': example.label,
    'filename': example.filename,
    'synset': example.synset,
  }


class ExampleSource:
  """The decoded examples of one split of a converter output, in manifest (shard, record) order.

  Attributes:
    file_format: the output's shard container (transforms/output/file_format.py FileFormat).
    multi_label: the output is a multi-label --manifest's: each example's 'label' is a list of ids.
    paths: the split's shard files, in order (local copies for a remote ArrayRecord output).
  """

  def __init__(
    self,
    output_dir: str,
    split: str,
    cache_dir: Optional[str] = None,
    pipeline_options: Optional[PipelineOptions] = None,
  ):
    """Reads manifest.json; for a gs:// or s3:// ArrayRecord output, copies the split's shards.

    Args:
      output_dir: the converter's output (local path, gs:// or s3:// URL).
      split: 'train', 'validation', ... (a key of the manifest's "splits").
      cache_dir: local folder for the shard copies of a remote ArrayRecord output (default: a
        temporary folder, removed when this source is garbage-collected).
      pipeline_options: Beam options for the file system (e.g. --s3_endpoint_url).
    Raises:
      ValueError: the split is not in the manifest (the message lists the ones that are).
      ModuleNotFoundError: an ArrayRecord output without the array_record package.
    """
    if pipeline_options is not None:
      FileSystems.set_options(pipeline_options)
    output, manifest = layout.read_output(output_dir)
    if split not in manifest['splits']:
      raise ValueError(
        f'split {split!r} is not in {output_dir}/{layout.MANIFEST_FILE}; it has '
        f'{sorted(manifest["splits"])}.'
      )
    shards = manifest['splits'][split]['shards']
    self.file_format = file_formats.of_manifest(manifest).name
    self.paths = [output.path(shard['file']) for shard in shards]
    self._lengths = [int(shard['num_examples']) for shard in shards]
    self._compression = manifest.get('compression', 'none')
    self.multi_label = bool(manifest.get('multi_label'))  # 'label': a list (decode_example)
    self._records = None  # array_record's ArrayRecordDataSource, made on first random access
    if self.file_format == file_formats.FileFormat.ARRAY_RECORD:
      file_formats.array_record_module()  # Fails here, with the install command, if missing.
      if any(is_remote(path) for path in self.paths):
        self.paths = self._copy_locally(cache_dir)

  def _copy_locally(self, cache_dir: Optional[str]) -> List[str]:
    if cache_dir is None:
      cache_dir = tempfile.mkdtemp(prefix='folder2tfrecord-')
      weakref.finalize(self, shutil.rmtree, cache_dir, ignore_errors=True)
    os.makedirs(cache_dir, exist_ok=True)
    local = [os.path.join(cache_dir, path.rsplit('/', 1)[-1]) for path in self.paths]
    for path, copy in zip(self.paths, local):
      file_formats.download(path, copy)
    return local

  def __len__(self) -> int:
    """Examples in the split (manifest.json's exact count)."""
    return sum(self._lengths)

  def _random_access(self):
    if self.file_format != file_formats.FileFormat.ARRAY_RECORD:
      raise TypeError(
        f'{self.file_format} output is read front to back: iterate over this source, '
        'or convert with --file_format array_record for random access (source[i]).'
      )
    if self._records is None:
      from array_record.python import array_record_data_source  # pylint: disable=import-outside-toplevel

      self._records = array_record_data_source.ArrayRecordDataSource(
        [_ShardInstruction(path, 0, n, n) for path, n in zip(self.paths, self._lengths)]
      )
    return self._records

  def _index(self, index: SupportsIndex) -> int:
    position = index.__index__()
    position += len(self) if position < 0 else 0
    if not 0 <= position < len(self):
      raise IndexError(f'example {index} out of range: the split has {len(self)}')
    return position

  def __getitem__(self, index: SupportsIndex) -> Example:
    """Example `index` (0 <= index < len, or negative from the end) of an ArrayRecord output.

    Raises:
      IndexError: out of range.
      TypeError: a TFRecord output (no random access).
    """
    records = self._random_access()
    return decode_example(records[self._index(index)], self.multi_label)

  def __getitems__(self, indices: Sequence[SupportsIndex]) -> List[Example]:
    """Several examples at once (Grain's and PyTorch's batched fetch; shards are read in parallel)."""
    records = self._random_access()
    return [
      decode_example(r, self.multi_label)
      for r in records.__getitems__([self._index(i) for i in indices])
    ]

  def __iter__(self) -> Iterator[Example]:
    """Every example in order, each shard read front to back (both formats)."""
    shard_format = file_formats.get(self.file_format)
    for path in self.paths:
      for record in shard_format.read(path, self._compression):
        yield decode_example(record, self.multi_label)

  def __getstate__(self) -> Dict[str, Any]:
    return {**self.__dict__, '_records': None}  # Readers are reopened in the receiving process.

  def __repr__(self) -> str:
    return (
      f'ExampleSource({len(self)} examples in {len(self.paths)} {self.file_format} shards, '
      f'{self.paths[0] if self.paths else "no shards"} ...)'
    )
