# syntax=docker/dockerfile:1
# The Foresight runtime image: every Pod the operator starts (forecast, training, verification,
# library fetch, classifier serving) runs this image with a different `foresight` subcommand.
#
# Build from the repository root:
#   docker build -f images/runtime.Dockerfile -t ghcr.io/foresight-dev/foresight-runtime:0.1.0 .
#   docker build -f images/runtime.Dockerfile --build-arg TORCH_VARIANT=cu124 -t ...-runtime:0.1.0-cu124 .
# TORCH_VARIANT picks the PyTorch wheel index (cpu, or a CUDA variant published for this torch
# version: the CUDA wheels carry their own CUDA libraries, so the slim base works on GPU nodes
# with only the host driver). BASE_IMAGE swaps the base, e.g. for a CUDA image that ships
# Python 3.11 and pip.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_VARIANT=cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 foresight \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/foresight foresight

# torch first, pinned and from the chosen index: left to the project's requirements, pip would take
# torch from PyPI, whose default Linux wheel is the newest CUDA build (several GB).
# Keep the pin equal to the one in pyproject.toml (the project's `.[runtime]` then finds it satisfied).
RUN pip install --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" "torch==2.13.0"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime ./runtime
COPY operator ./operator
RUN pip install ".[runtime]" && rm -rf /src

WORKDIR /home/foresight
USER 10001:10001
ENTRYPOINT ["foresight"]
CMD ["--help"]
