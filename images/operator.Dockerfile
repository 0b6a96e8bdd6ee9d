# syntax=docker/dockerfile:1
# The Foresight operator image: the kopf process only. It installs the base package (no torch, no
# serving stack): the operator never trains or serves in its own process.
#
# Build from the repository root:
#   docker build -f images/operator.Dockerfile -t ghcr.io/foresight-dev/foresight-operator:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 foresight \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/foresight foresight

WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime ./runtime
COPY operator ./operator
RUN pip install . && rm -rf /src

WORKDIR /home/foresight
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["foresight"]
CMD ["operator", "--all-namespaces"]
