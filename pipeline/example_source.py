"""`ExampleSource`: one split of an output as decoded examples, without TensorFlow or TFDS.

    from pipeline.read import ExampleSource
    source = ExampleSource('OUTPUT', 'train')      # --file_format array_record: random access
    len(source); source[1234]                      # {'image': uint8 [H, W, 3], 'label': int, ...}
    grain.MapDataset.source(source).shuffle(seed=0).map(...)          # Grain
    torch.utils.data.DataLoader(source, batch_size=64, shuffle=True)  # PyTorch (equal-sized images)

Over ArrayRecord output it is a map-style source (Grain's `RandomAccessDataSource` protocol, PyTorch's
map-style `Dataset`: `__len__`, `__getitem__`, `__getitems__`), built on the `array_record` package's
`ArrayRecordDataSource` (one thread-safe reader per shard, opened on first use). Over TFRecord output,
which is read front to back, it is iterable only (`__iter__`; `__getitem__` raises TypeError saying how
to convert for random access). Records are parsed with the converter's own tf.train.Example class
(transforms/example.py) and images decoded with its own JPEG decoder (libjpeg-turbo through
simplejpeg, transforms/image.py), so neither TensorFlow nor TFDS is imported.

Files: manifest.json says the shards, their counts, the file format and compression; every file is
read through Beam's FileSystems, so local, gs:// and s3:// outputs work (pass Beam options such as
`--s3_endpoint_url` as `pipeline_options`). ArrayRecord's reader opens local files only: the shards of
a gs:// or s3:// output are copied into `cache_dir` when the source is made (a temporary folder removed
with the source unless given). A pickled source (Grain's and PyTorch's worker processes) carries the
local paths and reopens its readers there.
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

from transforms import file_format as file_formats
from transforms import image as image_lib
from transforms import layout
from transforms.example import example_class

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
    google.protobuf.message.DecodeError: not a serialized Example.
    ValueError: `image/encoded` is not a decodable JPEG.
  """
  feature = example_class().FromString(record).features.feature
  if multi_label:
    return {'image': image_lib.decode_stored_jpeg(feature['image/encoded'].bytes_list.value[0]),
            'label': [int(label) for label in feature['image/class/label'].int64_list.value],
            'filename': feature['image/filename'].bytes_list.value[0].decode('utf-8'),
            'synset': [name.decode('utf-8')
                       for name in feature['image/class/synset'].bytes_list.value]}
  return {'image': image_lib.decode_stored_jpeg(feature['image/encoded'].bytes_list.value[0]),
          'label': int(feature['image/class/label'].int64_list.value[0]),
          'filename': feature['image/filename'].bytes_list.value[0].decode('utf-8'),
          'synset': feature['image/class/synset'].bytes_list.value[0].decode('utf-8')}


class ExampleSource:
  """The decoded examples of one split of a converter output, in manifest (shard, record) order.

  Attributes:
    file_format: the output's shard format name ('tfrecord' or 'array_record').
    multi_label: the output is a multi-label --manifest's: each example's 'label' is a list of ids.
    paths: the split's shard files, in order (local copies for a remote ArrayRecord output).
  """

  def __init__(self, output_dir: str, split: str, cache_dir: Optional[str] = None,
               pipeline_options: Optional[PipelineOptions] = None):
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
      raise ValueError(f'split {split!r} is not in {output_dir}/{layout.MANIFEST_FILE}; it has '
                       f'{sorted(manifest["splits"])}.')
    shards = manifest['splits'][split]['shards']
    self.file_format = file_formats.of_manifest(manifest).name
    self.paths = [output.path(shard['file']) for shard in shards]
    self._lengths = [int(shard['num_examples']) for shard in shards]
    self._compression = manifest.get('compression', 'none')
    self.multi_label = bool(manifest.get('multi_label'))  # 'label': a list (decode_example)
    self._records = None  # array_record's ArrayRecordDataSource, made on first random access
    if self.file_format == file_formats.ARRAY_RECORD:
      file_formats.array_record_module()  # Fails here, with the install command, if missing.
      if not all(file_formats.is_local(path) for path in self.paths):
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
    if self.file_format != file_formats.ARRAY_RECORD:
      raise TypeError(f'{self.file_format} output is read front to back: iterate over this source, '
                      'or convert with --file_format array_record for random access (source[i]).')
    if self._records is None:
      from array_record.python import array_record_data_source  # pylint: disable=import-outside-toplevel
      self._records = array_record_data_source.ArrayRecordDataSource([
          _ShardInstruction(path, 0, n, n) for path, n in zip(self.paths, self._lengths)])
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
    return [decode_example(r, self.multi_label)
            for r in records.__getitems__([self._index(i) for i in indices])]

  def __iter__(self) -> Iterator[Example]:
    """Every example in order, each shard read front to back (both formats)."""
    shard_format = file_formats.get(self.file_format)
    for path in self.paths:
      for record in shard_format.read(path, self._compression):
        yield decode_example(record, self.multi_label)

  def __getstate__(self) -> Dict[str, Any]:
    return {**self.__dict__, '_records': None}  # Readers are reopened in the receiving process.

  def __repr__(self) -> str:
    return (f'ExampleSource({len(self)} examples in {len(self.paths)} {self.file_format} shards, '
            f'{self.paths[0] if self.paths else "no shards"} ...)')
