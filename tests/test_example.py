"""Our tf.train.Example class writes exactly TensorFlow's bytes, without importing TensorFlow."""

import subprocess
import sys

import tensorflow as tf

from transforms.imaging.example import build_example, example_class


def test_same_bytes_as_tensorflow():
  boxes = [(0.1, 0.2, 0.5, 0.75), (0.0, 0.0, 1.0, 1.0)]
  ours = build_example(
    b'\xff\xd8jpeg', 256, 224, 'n01440764/ñandú 1.JPEG', 7, 'n01440764', 'tench, Tinca tinca', boxes
  )
  feature = tf.train.Feature
  expected = tf.train.Example(
    features=tf.train.Features(
      feature={
        'image/encoded': feature(bytes_list=tf.train.BytesList(value=[b'\xff\xd8jpeg'])),
        'image/format': feature(bytes_list=tf.train.BytesList(value=[b'JPEG'])),
        'image/height': feature(int64_list=tf.train.Int64List(value=[256])),
        'image/width': feature(int64_list=tf.train.Int64List(value=[224])),
        'image/channels': feature(int64_list=tf.train.Int64List(value=[3])),
        'image/colorspace': feature(bytes_list=tf.train.BytesList(value=[b'RGB'])),
        'image/filename': feature(
          bytes_list=tf.train.BytesList(value=['n01440764/ñandú 1.JPEG'.encode()])
        ),
        'image/class/label': feature(int64_list=tf.train.Int64List(value=[7])),
        'image/class/synset': feature(bytes_list=tf.train.BytesList(value=[b'n01440764'])),
        'image/class/text': feature(bytes_list=tf.train.BytesList(value=[b'tench, Tinca tinca'])),
        'image/object/bbox/xmin': feature(float_list=tf.train.FloatList(value=[0.1, 0.0])),
        'image/object/bbox/ymin': feature(float_list=tf.train.FloatList(value=[0.2, 0.0])),
        'image/object/bbox/xmax': feature(float_list=tf.train.FloatList(value=[0.5, 1.0])),
        'image/object/bbox/ymax': feature(float_list=tf.train.FloatList(value=[0.75, 1.0])),
        'image/object/bbox/label': feature(int64_list=tf.train.Int64List(value=[7, 7])),
      }
    )
  )
  assert ours == expected.SerializeToString(deterministic=True)
  assert tf.train.Example.FromString(ours) == expected
  assert example_class().FromString(ours).features.feature['image/height'].int64_list.value == [256]


def test_building_examples_does_not_import_tensorflow():
  code = (
    'import sys; from transforms.imaging.example import build_example; '
    'build_example(b"x", 1, 1, "a/b.jpg", 0, "a"); '
    'assert "tensorflow" not in sys.modules, "tensorflow was imported"'
  )
  subprocess.run([sys.executable, '-c', code], check=True)
