# The envfence container image, for GitLab CI, Jenkins and any other CI: the static (musl)
# release binary on a distroless base (CA certificates for the GitHub API, no shell, no package
# manager), running as a non-root user. .github/workflows/release.yml builds it for linux/amd64
# and linux/arm64 from the release archives, so the image build compiles nothing and needs no
# emulation: dist/<arch>/envfence must hold the binary of each architecture.
#
#   docker run --rm -v "$PWD:/repo" ghcr.io/envfence/envfence:latest scan .
#
# helm is not in the image: charts are not rendered (a Helm chart's folder is reported as not
# checked). Not built here (no container daemon in this project's CI): see docs/release.md.
FROM gcr.io/distroless/static-debian12:nonroot
ARG TARGETARCH
LABEL org.opencontainers.image.source="https://github.com/envfence/envfence" \
      org.opencontainers.image.description="Keeps non-production workloads out of production" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --chmod=0555 dist/${TARGETARCH}/envfence /usr/local/bin/envfence
USER 65532:65532
WORKDIR /repo
ENTRYPOINT ["/usr/local/bin/envfence"]
CMD ["scan", "."]
