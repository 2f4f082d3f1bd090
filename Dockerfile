# ls-ml-backend in a container.
#   CPU:  docker build -t ls-ml-backend .
#   CUDA: docker build --target cuda -t ls-ml-backend:cuda .
# Both take ONNX Runtime from its official PyPI wheel, through the same script as the README.

ARG RUST_VERSION=1.88

# --- build: the binary, the plugins, and ONNX Runtime's library -----------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/package.sh /out

FROM build AS build-cuda
RUN ORT_FLAVOR=gpu ORT_VENDOR_DIR=/out/lib-cuda scripts/setup-onnxruntime.sh

# --- cpu: the default image --------------------------------------------------------------------
FROM debian:bookworm-slim AS cpu
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
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
    ORT_DYLIB_PATH=/app/lib/libonnxruntime.so
VOLUME ["/app/models"]
USER 10001:10001
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD ["/app/ls-ml-backend", "--health-check"]
ENTRYPOINT ["/app/ls-ml-backend"]

# --- cuda: the same on NVIDIA's CUDA 13 + cuDNN 9 runtime (onnxruntime-gpu 1.31.1 targets it) --
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 AS cuda
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app/models \
    && chown app /app/models
WORKDIR /app
COPY --from=build /out/ls-ml-backend /app/ls-ml-backend
COPY --from=build /out/plugins/ /app/plugins/
COPY --from=build-cuda /out/lib-cuda/ /app/lib/
ENV ML_BACKEND_ADDR=0.0.0.0 \
    ML_BACKEND_PORT=9090 \
    ML_MODELS_DIR=/app/models \
    ML_PLUGINS_DIR=/app/plugins \
    ML_PROVIDER=cuda \
    ORT_DYLIB_PATH=/app/lib/libonnxruntime.so
VOLUME ["/app/models"]
USER 10001:10001
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD ["/app/ls-ml-backend", "--health-check"]
ENTRYPOINT ["/app/ls-ml-backend"]

# The default target is the CPU image.
FROM cpu
