# The reference wallet as a container: slim Python, non-root, SQLite on a volume, a HEALTHCHECK.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY simulator ./simulator
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 croupier && mkdir /data && chown croupier /data
COPY --from=build /install /usr/local
COPY scenarios /usr/share/croupier/scenarios
ENV CROUPIER_SCENARIOS=/usr/share/croupier/scenarios
USER croupier
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
ENV PYTHONUNBUFFERED=1
# Outside a container's loopback the wallet refuses to start without real secrets:
# pass CROUPIER_SECRET and CROUPIER_ADMIN_TOKEN (docker run -e ...).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
STOPSIGNAL SIGTERM
CMD ["croupier", "wallet", "serve", "--host", "0.0.0.0", "--port", "8080", "--db", "/data/croupier-wallet.db"]
