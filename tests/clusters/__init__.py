"""Fixtures' machinery for the runner tests: local Flink and Spark clusters with Beam job servers,
moto's S3 server, all on loopback and torn down by the test that starts them."""
