# ls-ml-backend in a container.
#   CPU:  docker build -t ls-ml-backend .
#   CUDA: docker build -t ls-ml-backend:cuda --build-arg ORT_FLAVOR=gpu \
#           --build-arg RUNTIME_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 --build-arg ML_PROVIDER=cuda .
#   Training jobs (Ultralytics and torch in /app/trainer, about 6 GB more):
#         add --build-arg WITH_TRAINER=true
# ONNX Runtime comes from its official PyPI wheel (onnxruntime, or onnxruntime-gpu 1.31.1, which
# is built for CUDA 13 and cuDNN 9), through the same script as the README.

ARG RUST_VERSION=1.88
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- build: the binary, the plugins, and ONNX Runtime's library -----------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
ARG ORT_FLAVOR=cpu
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip nasm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN ORT_FLAVOR=${ORT_FLAVOR} scripts/package.sh /out

# --- the image: Debian slim, or NVIDIA's CUDA runtime for the CUDA build -------------------
FROM ${RUNTIME_IMAGE}
ARG ML_PROVIDER=cpu
ARG WITH_TRAINER=false
# The trainer is installed from its lock alone (every package pinned, each file checked by its
# sha256), by uv, which pip installs first from uv's own hashed lock.
COPY scripts/python/uv.txt scripts/python/trainer.linux-*.txt /tmp/locks/
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates ffmpeg \
    && if [ "$WITH_TRAINER" = true ]; then \
         apt-get install -y --no-install-recommends python3 python3-venv libgl1 libglib2.0-0 \
         && python3 -m venv /tmp/uv \
         && /tmp/uv/bin/pip install --no-cache-dir --require-hashes --no-deps -r /tmp/locks/uv.txt \
         && /tmp/uv/bin/uv venv --no-python-downloads --python python3 /app/trainer \
         && /tmp/uv/bin/uv pip sync --no-cache --require-hashes --python /app/trainer/bin/python \
              "/tmp/locks/trainer.linux-$(uname -m).txt" \
         && rm -rf /tmp/uv; \
       fi \
    && rm -rf /tmp/locks \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app/models \
    && chown app /app/models
WORKDIR /app
COPY --from=build /out/ls-ml-backend /app/ls-ml-backend
COPY --from=build /out/plugins/ /app/plugins/
COPY --from=build /out/lib/ /app/lib/
ENV ML_BACKEND_ADDR=0.0.0.0 \
    ML_BACKEND_PORT=9090 \
    ML_MODELS_DIR=/app/models \
    ML_PLUGINS_DIR=/app/plugins \
    ML_PROVIDER=${ML_PROVIDER} \
    ML_TRAINER_PYTHON=/app/trainer/bin/python \
    ML_STATE_DIR=/app/models/.state \
    ORT_DYLIB_PATH=/app/lib/libonnxruntime.so
VOLUME ["/app/models"]
USER 10001:10001
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD ["/app/ls-ml-backend", "--health-check"]
ENTRYPOINT ["/app/ls-ml-backend"]
