"""The converter's steps: composite PTransforms, DoFns, the CombineFn and the pure image functions."""
