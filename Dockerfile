FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY configs configs
COPY rag rag
COPY ingest ingest
COPY pipeline pipeline
COPY policy policy
COPY api api
COPY cli cli
COPY mcpserver mcpserver
# A plain (non-editable) install: the image runs the installed package, not /src.
# MMRAG_EXTRAS="[ray]" adds Ray (docker-compose.cluster.yml builds it so).
ARG MMRAG_EXTRAS=""
RUN pip install ".${MMRAG_EXTRAS}" && rm -rf /src
# mmrag runs as an unprivileged user with a fixed uid (volumes and orchestrators can
# name it), owning only its data dir; /data is private (0700) like every mmrag data dir,
# and a new named volume mounted there copies that owner and mode.
RUN groupadd --system --gid 10001 mmrag \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin mmrag \
    && mkdir -p /data /app /shared/media /shared/jobs \
    && chown 10001:10001 /data /app /shared/media /shared/jobs \
    && chmod 700 /data /shared/media /shared/jobs
ENV MMRAG_DATA_DIR=/data
USER 10001:10001
WORKDIR /app
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
CMD ["mmrag", "serve", "--host", "0.0.0.0", "--port", "8080"]
