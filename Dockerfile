# modelreg operator image (also the storage-initializer). Multi-stage: the wheel is built
# in the first stage; the final stage has no build tools and runs as a non-root user.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip install --no-cache-dir build==1.2.2 \
 && python -m build --wheel --outdir /dist . \
 && pip wheel --no-cache-dir --wheel-dir /dist /dist/modelreg-*.whl

FROM python:3.11-slim-bookworm
COPY --from=build /dist /tmp/dist
RUN pip install --no-cache-dir --no-index --find-links /tmp/dist modelreg \
 && rm -rf /tmp/dist \
 && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin modelreg
USER 65532:65532
ENTRYPOINT ["modelreg"]
