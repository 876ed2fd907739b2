# syntax=docker/dockerfile:1
# Builds the xtv test image (kernel + initramfs) in a clean Debian 12, by
# calling the same script as `npm run build:image`: guest/image/build.sh is
# the single source of truth, this file only provides a machine to run it on.
#
#   docker build -t xtv-image .                       the build
#   docker build --output type=local,dest=out .       the image files into ./out
#
# Only Debian's registry and npm's are used, as on the project's machines.
# The base is Debian 12 with Node 20 and npm (Docker's official node image:
# Debian 12's own nodejs is 18, below package.json's engines; the Xen 4.17
# packages scripts/deps.sh names exist on Debian 12 only).
FROM node:20-bookworm-slim AS build
ENV DEBIAN_FRONTEND=noninteractive
# Node and npm (for the agent's bundler, esbuild) come with the base image;
# everything else comes from scripts/deps.sh, the project's one list of
# Debian packages.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
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
