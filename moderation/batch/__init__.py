"""One batch: read pending comments, ask the model, decide, write, report; one at a time."""
