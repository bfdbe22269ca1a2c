# vigil as PID 1 of a container.
#
#   docker build -t vigil .
#   docker run --rm -p 9321:9321 vigil                       # the sample config
#   docker run --rm -p 9321:9321 -v "$PWD/my.toml:/etc/vigil/vigil.toml:ro" vigil
#   docker exec CONTAINER vigil status                       # WORKDIR is /etc/vigil
#
# vigil reaps every orphan (no tini or --init needed), stops its programs on
# SIGTERM (docker stop) and exits 0, and exits 3 when an `essential` program
# goes fatal. Give `docker stop -t` more than the largest stop_timeout.
# Your programs go into an image built FROM this one (or add them to the
# runtime stage), with a vigil.toml that starts them.

# --- build: Debian 12 with the -dev packages (scripts/deps.sh lists them) ---
FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates cmake g++ make pkg-config \
      libevent-dev prometheus-cpp-dev libtomlplusplus-dev libspdlog-dev nlohmann-json3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DVIGIL_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target vigil \
 && strip /build/vigil \
 && /build/vigil check -c deploy/container/vigil.toml

# --- runtime: only the shared libraries the binary needs ---
# The package list is what `ldd vigil` resolves to on Debian 12
# (tests/observability/check_container.sh keeps it in step).
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libc6 libgcc-s1 libstdc++6 libevent-core-2.1-7 libevent-extra-2.1-7 libfmt9 libprometheus-cpp-core1.0 libspdlog1.10 libtomlplusplus3 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/log/vigil /run/vigil
COPY --from=build /build/vigil /usr/local/bin/vigil
COPY deploy/container/vigil.toml /etc/vigil/vigil.toml
WORKDIR /etc/vigil
# [http] listen of the sample config: /metrics, /healthz, /api/v1/...
EXPOSE 9321
# What vigil stops everything on; a second one kills at once.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/vigil"]
CMD ["run", "-c", "/etc/vigil/vigil.toml"]
