"""The candidate retrieval pipeline: daily ad requests, a two-tower model trained on a window of
them on the step's Ray cluster, its evaluation against popularity, and its publishing."""

GROUP = "ads_retrieval"
OWNERS = ["team:ads-retrieval"]
EXPERIMENT = "ads-retrieval"  # MLflow experiment of the training runs
REGISTERED_MODEL = "ads_retrieval_two_tower"  # MLflow Model Registry name it publishes to
