"""The converter's steps: composite PTransforms, DoFns, the CombineFn and pure image functions."""
