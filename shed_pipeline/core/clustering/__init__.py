"""Clustering of the pool's embeddings: seeded k-means, clusters with persistent anchors that refresh
incrementally, cluster proxies, and NMI.

Cluster ids are stable: a full fit numbers clusters in the order of their proxy's row id (the same
input and seed give the same ids whatever order the initialisation found them in), and a refresh
never renumbers them.

- `seeded_kmeans`: k-means++ seeding and Lloyd iterations (faiss on the CPU, torch on a GPU), warm start
- `assignment`: each row's nearest anchor, as float64 arithmetic gives it
- `state`: ClusterState and FitInfo, and their Parquet file
- `fit`: a full fit, and clusters (members, centroid, proxy) from given anchors
- `refresh`: the incremental refresh and its drift rule
- `metrics`: normalized mutual information
"""

from shed_pipeline.core.clustering.assignment import nearest_anchor
from shed_pipeline.core.clustering.fit import clusters_from_anchors, default_n_clusters, fit_clusters
from shed_pipeline.core.clustering.metrics import normalized_mutual_info
from shed_pipeline.core.clustering.refresh import ClusterUpdate, DriftRule, update_clusters
from shed_pipeline.core.clustering.seeded_kmeans import DEFAULT_MAX_ITER, KMeansResult, kmeans
from shed_pipeline.core.clustering.state import ClusterState, FitInfo

__all__ = [
    "DEFAULT_MAX_ITER",
    "ClusterState",
    "ClusterUpdate",
    "DriftRule",
    "FitInfo",
    "KMeansResult",
    "clusters_from_anchors",
    "default_n_clusters",
    "fit_clusters",
    "kmeans",
    "nearest_anchor",
    "normalized_mutual_info",
    "update_clusters",
]
