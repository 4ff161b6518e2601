"""One file to one record (transforms/imaging/convert.py `convert_file`), shared by the shard writer
and the driver's samples: the records of a real run are convert_file's to the byte, and a file that
gives no record is a reject with the writer's reason."""

from conftest import SAMPLE_DIR, SAMPLE_FLAGS
from pipeline.options import parse_args
from transforms.imaging import example, image
from transforms.output import file_format as file_formats
from transforms.imaging.convert import Converted, RecordRecipe, Rejected, convert_file, read_reason
from transforms.inputs.input_file import InputFileError
from transforms.metadata.reject_reasons import INTERNAL_ERROR
from transforms.split.sample import convert, draw, folders_of, list_folders
from transforms.split.sharding import UNSPLIT, ImageRef


def _recipe(tmp_path) -> RecordRecipe:
  opts, _ = parse_args(['--input', str(SAMPLE_DIR), '--output', str(tmp_path), *SAMPLE_FLAGS])
  return RecordRecipe({UNSPLIT: str(SAMPLE_DIR)}, opts.image_spec)


def test_the_writers_records_are_convert_files(sample_output, tmp_path):
  recipe, checked = _recipe(tmp_path), 0
  tfrecord = file_formats.get(file_formats.FileFormat.TFRECORD)
  for shard in sorted(sample_output.glob('*-of-*')):
    for record in tfrecord.read(str(shard), 'none'):
      stored = example.parse_example(record)
      key = stored.filename
      ref = ImageRef(UNSPLIT, stored.label, stored.synset, key)
      converted = convert_file(ref, (SAMPLE_DIR / key).read_bytes(), recipe)
      assert isinstance(converted, Converted) and converted.record == record, key
      checked += 1
  assert checked == 54


def test_the_samples_records_are_convert_files(tmp_path):
  """The driver's sample counts the bytes convert_file gives for each drawn file."""
  recipe = _recipe(tmp_path)
  listings = list_folders(
    folders_of({UNSPLIT: str(SAMPLE_DIR)}, {UNSPLIT: ['animal', 'space']}),
    {'animal': 0, 'space': 1},
    0,
  )
  sample = convert(listings, draw(listings, 6, 0), recipe)
  assert len(sample.files) == 6
  for sampled in sample.files:
    converted = convert_file(sampled.ref, (SAMPLE_DIR / sampled.ref.key).read_bytes(), recipe)
    assert sampled.reason is None and sampled.record_bytes == len(converted.record)


def test_files_that_give_no_record_are_rejects_with_a_reason(tmp_path, monkeypatch):
  recipe = _recipe(tmp_path)
  ref = ImageRef(UNSPLIT, 0, 'animal', 'animal/notes.jpg')
  text = convert_file(ref, b'not an image at all', recipe)
  assert isinstance(text, Rejected) and text.reason and text.error is None
  assert read_reason(InputFileError('not a regular file')) == 'not a regular file'
  assert read_reason(PermissionError('denied')) == 'cannot read the file (PermissionError: denied)'

  def broken(data, spec):
    raise KeyError('a bug')

  monkeypatch.setattr(image, 'process_image', broken)
  bug = convert_file(ref, (SAMPLE_DIR / 'animal' / 'gc_cat.JPEG').read_bytes(), recipe)
  assert isinstance(bug, Rejected) and isinstance(bug.error, KeyError)
  assert bug.reason.startswith(INTERNAL_ERROR + ': ')


def test_an_unreadable_box_annotation_keeps_the_record_without_boxes(tmp_path):
  boxes = tmp_path / 'boxes' / 'animal'
  boxes.mkdir(parents=True)
  (boxes / 'gc_cat.xml').write_text('<annotation><object>')  # truncated XML
  recipe = RecordRecipe(
    {UNSPLIT: str(SAMPLE_DIR)}, _recipe(tmp_path).spec, bbox_dir=str(tmp_path / 'boxes')
  )
  ref = ImageRef(UNSPLIT, 0, 'animal', 'animal/gc_cat.JPEG')
  converted = convert_file(ref, (SAMPLE_DIR / ref.key).read_bytes(), recipe)
  assert isinstance(converted, Converted) and converted.boxes_error
  features = example.example_class().FromString(converted.record).features.feature
  assert len(features['image/object/bbox/xmin'].float_list.value) == 0
