# The xqueue-watcher image: compiled on Debian bookworm with the -dev packages scripts/setup installs,
# run on slim Debian with only the runtime libraries, as a non-root user (uid 10001).
#
#   docker build -t xqueue-watcher:latest .
#   docker run --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /srv/xqueue-watcher/config:/etc/xqueue-watcher:ro \
#     -v /srv/xqueue-watcher/jobs:/srv/xqueue-watcher/jobs \
#     -v /srv/courses:/srv/courses:ro xqueue-watcher:latest
#
# The engine resolves bind-mount sources on its own host: work_dir and every grader_root must be
# mounted at the same path inside this container as on the engine's host (or set
# docker_host_work_dir / docker_host_grader_root). See docs/operators.md, "The path rule".
#
# Both stages start from Debian bookworm; scripts/images bootstraps debian:bookworm-slim offline when
# no registry answers. Another base (a mirror, a pinned digest) goes through the build arguments.
ARG BUILD_BASE=debian:bookworm-slim
ARG RUNTIME_BASE=debian:bookworm-slim

FROM ${BUILD_BASE} AS build
# The build tools and -dev packages are read from scripts/setup's list, so the image builds with
# exactly what the host build uses (the test-only tools there, such as docker.io, are left out).
COPY scripts/setup /tmp/setup
RUN packages=$(sed -n '/^packages=(/,/^)/p' /tmp/setup | tr -s ' \t' '\n' \
      | grep -E -e '-dev$' -e '^(build-essential|cmake|ninja-build|pkg-config|ca-certificates)$') \
 && echo "$packages" | grep -qx cmake \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY src ./src
COPY tests ./tests
# Only the watcher itself: the test binaries are built and run by scripts/test, not here. The Debian
# packages owning the shared libraries it links are what the runtime stage installs.
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DXQW_BUILD_TESTS=OFF >/dev/null \
 && ninja -C build -j "$(nproc)" xqueue-watcher \
 && strip build/xqueue-watcher \
 && ldd build/xqueue-watcher | awk '$3 ~ /^\// {print $3}' \
      | while read -r lib; do dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")"; done \
      | cut -d: -f1 | sort -u >build/runtime-packages \
 && cat build/runtime-packages

FROM ${RUNTIME_BASE}
# Only the runtime libraries the watcher links (libcurl with OpenSSL, yaml-cpp, spdlog/fmt,
# prometheus-cpp, ...: the list the build stage derived), and ca-certificates for https:// XQueue.
COPY --from=build /src/build/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates $(cat /tmp/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/runtime-packages
# uid/gid 10001: no clash with a host's or a grader image's users. To reach the engine socket, add the
# socket's group at run time (docker run --group-add <gid>; Kubernetes: supplementalGroups).
RUN groupadd --system --gid 10001 xqueue-watcher \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/xqueue-watcher --no-create-home \
      --shell /usr/sbin/nologin xqueue-watcher \
 && install -d -m 0755 /etc/xqueue-watcher /etc/xqueue-watcher/conf.d \
 && install -d -m 0755 -o 10001 -g 10001 /var/lib/xqueue-watcher \
 && install -d -m 0711 -o 10001 -g 10001 /var/lib/xqueue-watcher/jobs \
 && install -d -m 0700 -o 10001 -g 10001 /var/lib/xqueue-watcher/journal
COPY --from=build /src/build/xqueue-watcher /usr/local/bin/xqueue-watcher
# Fails the build if a shared library is missing.
RUN xqueue-watcher --version

LABEL org.opencontainers.image.title="xqueue-watcher" \
      org.opencontainers.image.description="Grades Open edX code submissions in locked-down Docker containers"
USER 10001:10001
WORKDIR /var/lib/xqueue-watcher
# Prometheus /metrics, /healthz and /readyz (metrics_port in xqwatcher.yaml).
EXPOSE 9090
ENTRYPOINT ["xqueue-watcher"]
CMD ["-d", "/etc/xqueue-watcher"]
