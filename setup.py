"""Packaging for folder2tfrecord: `pip install .` locally, `--setup_file ./setup.py` on Dataflow.

Beam's multi-file pipeline layout (apache_beam/examples/complete/juliaset): the workers install this
package, so `pipeline` and `transforms` import there exactly as on the driver.
"""

import setuptools

REQUIRED = [
  # Verified together on Python 3.11 (2026-11): Beam 2.77 pins pillow < 13.
  'apache-beam==2.77.0',
  'tensorflow==2.21.0',
  'pillow>=12.1.1,<13',
  'numpy>=1.26,<3',
  # Beam's TFRecord sink silently falls back to a pure-Python CRC32C without it
  # (apache/beam#33407).
  'google-crc32c>=1.5',
  # The fast path for JPEG input: OpenCV's resize of the crop box, libjpeg-turbo encode/decode
  # through simplejpeg, Pillow's zero-copy Arrow export (pyarrow also comes with Beam).
  'opencv-python-headless>=4.8',
  'simplejpeg>=1.8',
  'pyarrow>=14',
  'tqdm>=4.60',  # The progress bar of local runs.
  # A failed local run stops its own Beam worker processes (pipeline/runtime/worker_watch.py).
  'psutil>=5.9',
]
EXTRAS = {
  'gcp': ['apache-beam[gcp]==2.77.0'],
  'aws': ['apache-beam[aws]==2.77.0'],
  # --file_format array_record and pipeline.read.ExampleSource's random access (ArrayRecordWriter,
  # ArrayRecordReader; transforms/output/file_format.py).
  'array_record': ['array-record>=0.8.1'],
  # Reading ArrayRecord output with Grain (grain.MapDataset.source(ExampleSource(...))).
  'grain': ['array-record>=0.8.1', 'grain>=0.2.18'],
  'test': [
    'pytest>=8',
    'pytest-timeout>=2.3',
    'ruff>=0.17,<0.18',  # tests/test_lint.py: ruff check and ruff format --check (ruff.toml)
    'hypothesis>=6.100',
    'psutil>=5.9',
    'apache-beam[gcp,aws]==2.77.0',
    'moto[server]>=5.0',
    'matplotlib>=3.8',
    'tensorflow-datasets>=4.9.6',
    'array-record>=0.8.1',
    'grain>=0.2.18',
    'imagehash>=4.3',  # tests/test_perceptual_hash.py: image/phash against the reference pHash
  ],
  'bench': ['psutil>=5.9', 'matplotlib>=3.8'],
  'report': ['matplotlib>=3.8'],
}

setuptools.setup(
  name='folder2tfrecord',
  version='0.1.0',
  description='Image folder (root/<class>/<image>) to sharded TFRecords of tf.train.Example, '
  'on Apache Beam.',
  long_description=open('README.md', encoding='utf-8').read(),
  long_description_content_type='text/markdown',
  license='Apache-2.0',
  python_requires='>=3.10',
  packages=setuptools.find_packages(include=['pipeline*', 'transforms*', 'beam_private*']),
  install_requires=REQUIRED,
  extras_require=EXTRAS,
  entry_points={'console_scripts': ['folder2tfrecord=pipeline.cli:main']},
)
