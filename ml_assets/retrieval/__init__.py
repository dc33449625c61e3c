"""Candidate retrieval's pure ML code: a synthetic world of users and ads with a known affinity,
a two-tower model trained with in-batch sampled softmax, and top-K metrics; no Dagster imports."""
