# syntax=docker/dockerfile:1
# Builds the xtv test image (kernel + initramfs) in a clean Debian 12, by
# calling the same script as `npm run build:image`: guest/image/build.sh is
# the single source of truth, this file only provides a machine to run it on.
#
#   docker build -t xtv-image .                       the build
#   docker build --output type=local,dest=out .       the image files into ./out
#
# Only Debian's registry and npm's are used, as on the project's machines.
FROM debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive
# Node and npm for the agent's bundler (esbuild); everything else comes from
# scripts/deps.sh, the project's one list of Debian packages.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# The build cache (kernel, qjs, initramfs by input hash) survives between
# docker builds in a BuildKit cache mount, as ~/.cache/xtv does on a machine.
RUN --mount=type=cache,target=/root/.cache/xtv \
    npm run build:image \
 && cat dist/image/manifest.json

FROM scratch AS image
COPY --from=build /src/dist/image/ /
