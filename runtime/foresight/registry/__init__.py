"""The model registry: ModelVersion verification / optimisation (the Job's runtime) and the
``foresight models`` command that lists, compares, promotes and rolls back versions in a cluster.

Import the submodules you need: :mod:`.verify` (torch, onnxruntime) and :mod:`.cli` (the
Kubernetes client) have heavy dependencies; :mod:`.command` is cheap to import.
"""
