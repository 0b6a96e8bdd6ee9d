"""The reusable end-to-end test cluster: a Kubernetes API emulator, a test kubelet and a real kubectl.

- :mod:`tests.cluster.emulator`: :class:`Cluster` (an API server on 127.0.0.1 with a kubeconfig);
- :mod:`tests.cluster.kubelet`: :class:`Kubelet` (runs Pods of Jobs and Deployments as processes);
- :mod:`tests.cluster.kubectl`: :class:`Kubectl` (a real kubectl 1.35 binary, fetched once).
"""
