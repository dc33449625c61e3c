"""Distributed training for any model family: a `TrainingTask` says what is specific to the
model (build it, turn rows into batches, its loss, its validation); the driver does the rest
(Ray Train, sharding or streaming, checkpoints and resume, the GPU batch, the epoch history)."""
