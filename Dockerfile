# syntax=docker/dockerfile:1
# The modelreg image: the operator (`modelreg run`) and, in model pods, the
# storage-initializer (`modelreg fetch-artifact`). Multi-stage: wheels are built and
# installed into a virtualenv in the build stage; the final stage gets only that
# virtualenv (no pip, no compilers) and runs as a non-root user.
# The base is pinned to an exact Python release; pin it by digest in your registry mirror
# (docs/image.md). The install steps are scripts, run the same way by tests/test_image.py.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY hack/image/ hack/image/
RUN hack/image/build-wheels.sh /dist . \
 && hack/image/install.sh /dist /opt/modelreg

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="modelreg" \
      org.opencontainers.image.description="Kubernetes-native model registry operator" \
      org.opencontainers.image.source="https://github.com/modelreg/modelreg" \
      org.opencontainers.image.licenses="Apache-2.0"
# the base image's own pip and setuptools go too: nothing installs anything at run time
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
 && useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin modelreg
COPY --from=build /opt/modelreg /opt/modelreg
# MALLOC_ARENA_MAX: glibc gives each thread its own malloc arena, and a threaded Python
# process then keeps far more memory than it uses (docs/benchmarks.md)
ENV PATH=/opt/modelreg/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2
USER 65532:65532
EXPOSE 9443 8080 8081
ENTRYPOINT ["modelreg"]
CMD ["run"]
