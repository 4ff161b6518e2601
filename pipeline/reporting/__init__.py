"""Parts of the report command: fonts and the duplicates page."""
