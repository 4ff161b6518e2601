"""Image work as pure functions: decode, resize, crop, encode, hashes, the Example."""
