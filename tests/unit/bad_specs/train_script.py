"""A stand-in training script: the specs here only need it to exist."""
