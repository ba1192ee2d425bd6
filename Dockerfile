FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY rag rag
COPY ingest ingest
COPY api api
COPY cli cli
COPY configs configs
RUN pip install -e .
EXPOSE 8080
CMD ["mmrag", "serve", "--host", "0.0.0.0", "--port", "8080"]
