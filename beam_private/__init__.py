"""Private Apache Beam APIs this project relies on, one small module each.

Beam does not promise these names across releases. Each module wraps one of them behind a plain
function, and tests/test_beam_private.py fails with a message naming the module when a Beam upgrade
moves or changes one, so an upgrade breaks in one named place instead of deep inside a run.
"""
