"""Exact and near duplicates: hashes, the Hamming search, groups."""
