# The verifier's container image (docker-compose.yml builds it; README, "Running it in containers").
#
# Stage one builds the project's wheel exactly as README and tests/test_packaging.py build it
# (`pip wheel . --no-deps`: the package with data/ and schemas/ inside it; that test installs the wheel
# into an empty environment and runs `verifier demo` and `verifier serve` from it), and the wheels of the
# pinned dependencies in image-requirements.txt. Stage two installs those wheels and nothing else: no
# compiler, no sources, no network, and nothing is installed or downloaded when a container starts. The
# service runs as an unprivileged user whose only writable folder is the state folder, /state.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# The pins first: this layer is rebuilt only when a pin changes.
COPY image-requirements.txt ./
RUN python -m pip wheel --no-deps --wheel-dir /wheels --requirement image-requirements.txt
COPY pyproject.toml README.md ./
COPY verifier verifier
COPY data data
COPY schemas schemas
RUN python -m pip wheel . --no-deps --wheel-dir /wheels

FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
# Only the wheels built above, from a bind mount (they stay out of the image's layers); `pip check` fails
# the build if the pins miss a dependency the wheel declares.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --no-deps /wheels/*.whl \
    && python -m pip check
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /state --shell /usr/sbin/nologin verifier \
    && mkdir /state && chown verifier:verifier /state && chmod 0700 /state
# Every setting of `verifier serve` is also a VERIFIER_<FLAG> variable (README, "Settings"). Keys, API key
# hashes and the mock issuer's keys live in /state: mount a volume there.
ENV VERIFIER_STATE_DIR=/state VERIFIER_HOST=0.0.0.0 VERIFIER_PORT=8080
USER verifier:verifier
WORKDIR /state
EXPOSE 8080
# Ready means what GET /readyz checks: the trust list is loaded, the store is reachable, writable and able
# to keep one-time use, and the clocks agree. Any answer but 200 (or none) exits 1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('VERIFIER_PORT', '8080'), timeout=3)"]
ENTRYPOINT ["verifier"]
CMD ["serve"]
