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
RUN pip install . && rm -rf /src
WORKDIR /app
EXPOSE 8080
CMD ["mmrag", "serve", "--host", "0.0.0.0", "--port", "8080"]
