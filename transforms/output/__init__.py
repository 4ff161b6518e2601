"""The output folder: its layout, file formats, the shard writer, resume, _SUCCESS."""
