"""``moderate eval``: a model and prompt measured against labelled fixtures."""
