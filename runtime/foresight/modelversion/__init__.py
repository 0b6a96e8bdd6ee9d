"""The runtime side of ModelVersion: what its verify / optimise Job runs, and ``foresight models``.

- :mod:`.verify`: ``foresight model-job``, the Job the operator starts for a ModelVersion
  (download and checksum the artifact, run it once, optionally optimise it);
- :mod:`.loaders`: loading an artifact, whatever produced it, for that check;
- :mod:`.manage`: ``foresight models``, which lists, compares, promotes and rolls back the
  ModelVersions in a cluster (MLflow's "model registry", Kubernetes-style).

Import the submodules you need: :mod:`.verify` (torch, onnxruntime) and :mod:`.manage` (the
Kubernetes client) have heavy dependencies; the command itself is :mod:`foresight.commands.models`.
"""
