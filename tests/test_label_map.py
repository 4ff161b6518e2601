"""--labels_file as a JSON label map {"class": id}: ids as given, gaps named by a placeholder."""

import json

import pytest
import tensorflow as tf

from conftest import SAMPLE_DIR, convert, files_by_class
from pipeline import verify
from transforms.inputs.label_map import PLACEHOLDER, label_names, read_labels_file
from transforms.inputs.listing import InputError

GAPPED = {'space': 5, 'animal': 0, 'flower': 2}


def _labels_by_synset(output):
  found = set()
  for shard in output.glob('train-*'):
    for raw in tf.data.TFRecordDataset(str(shard)):
      feature = tf.train.Example.FromString(raw.numpy()).features.feature
      found.add(
        (
          feature['image/class/synset'].bytes_list.value[0].decode(),
          feature['image/class/label'].int64_list.value[0],
        )
      )
  return found


@pytest.mark.parametrize('offset', [0, 1])
def test_json_label_map_keeps_its_ids_and_names_the_gaps(tmp_path, offset):
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

  labels = tmp_path / 'label_map.json'
  labels.write_text(json.dumps(GAPPED))
  output = tmp_path / 'out'
  assert convert(SAMPLE_DIR, output, '--labels_file', labels, '--label_offset', offset) == 0
  names = ['animal', '__unused_1__', 'flower', '__unused_3__', '__unused_4__', 'space']
  assert (output / 'labels.txt').read_text().splitlines() == names
  assert _labels_by_synset(output) == {(k, v + offset) for k, v in GAPPED.items()}
  manifest = json.loads((output / 'manifest.json').read_text())
  assert manifest['num_classes'] == 6
  rejects = (output / 'rejects.jsonl').read_text().splitlines()
  by_class = files_by_class()
  # Not in the map, and data/sample_images/ATTRIBUTION.md beside the class folders.
  assert len(rejects) == len(by_class['landscape']) + len(by_class['object']) + 1
  assert verify.verify(str(output)).ok  # labels within [offset, offset + 6)
  builder = tfds.builder_from_directory(str(output))
  assert builder.info.features['image']['class']['label'].names == ['background'] * offset + names
  model_garden = (output / 'model_garden.yaml').read_text()
  assert f'num_classes: {6 + offset}\n' in model_garden


def test_labels_txt_of_a_gapped_map_fed_back_keeps_the_ids(tmp_path):
  labels = tmp_path / 'label_map.json'
  labels.write_text(json.dumps(GAPPED))
  assert convert(SAMPLE_DIR, tmp_path / 'a', '--labels_file', labels) == 0
  assert read_labels_file(str(tmp_path / 'a' / 'labels.txt')) == {
    **GAPPED,
    **{PLACEHOLDER.format(id=i): i for i in (1, 3, 4)},
  }


@pytest.mark.parametrize(
  'text, message',
  [
    ('{"animal": 0, "flower": 0}', 'gives these ids to more than one class: [0]'),
    ('{"animal": -1, "flower": 0}', "ids must be integers from 0 to 999999; got 'animal': -1"),
    ('{"animal": 1.5}', "'animal': 1.5"),
    ('{"animal": true}', "'animal': True"),
    ('{"animal": "0"}', "'animal': '0'"),
    ('{"animal": 0, "animal": 1}', 'lists these classes twice'),
    ('{"a/b": 0}', 'not class folder names'),
    ('{}', 'lists no classes'),
    ('{"animal": 0,}', 'not a JSON object'),
    ('{"animal": 0, "__unused_1__": 2}', 'placeholder name of an id the map leaves out'),
    ('{"animal": 1000000}', 'from 0 to 999999'),
  ],
)
def test_bad_json_label_maps_are_input_errors(tmp_path, text, message):
  path = tmp_path / 'labels.json'
  path.write_text(text)
  with pytest.raises(InputError) as error:
    read_labels_file(str(path))
  assert message in str(error.value)


def test_bad_json_label_map_fails_the_run_before_any_work(tmp_path, capsys):
  path = tmp_path / 'labels.json'
  path.write_text('{"animal": 0, "flower": -2}')
  assert convert(SAMPLE_DIR, tmp_path / 'out', '--labels_file', path) == 2
  assert 'ids must be integers' in capsys.readouterr().err
  assert not (tmp_path / 'out').exists()


def test_text_labels_file_and_label_names(tmp_path):
  path = tmp_path / 'labels.txt'
  path.write_text('\ufeffspace\n# comment\n\nanimal\n')
  assert read_labels_file(str(path)) == {'space': 0, 'animal': 1}
  assert label_names({'b': 1, 'a': 0}) == ['a', 'b']
  assert label_names({'b': 2}) == ['__unused_0__', '__unused_1__', 'b']
