"""The driver at run time: the output claim, logs, progress, signals, worker watch."""
