# syntax=docker/dockerfile:1
# The image the registry-cleanup components run: FROM scratch plus a root filesystem extracted
# from Debian trixie's packages (Python 3.13, dash, the few tools job scripts use, CA
# certificates), the CLI's venv and a regctl built from source, as user 10001.
#
# Every stage but the last runs on the build platform and only fetches or compiles for the
# target one, so linux/arm64 builds on an amd64 machine without emulation. The pipeline builds
# this file with docker buildx (.gitlab/ci/image.yml); `./dev image` builds the same file with
# buildah, passing a DEBIAN_IMAGE it made with mmdebstrap. docs/image.md explains the choices.

# debian:13.7-slim (trixie) pinned by its multi-platform index digest, as listed in
# github.com/docker-library/repo-info repos/debian/remote/13.7-slim.md (commit 0de62c7b).
ARG DEBIAN_IMAGE=debian:13.7-slim@sha256:a99cfc517144bc59b1978475ec53b46ecabec7e43635402ee5b77cc54cd1b20a
ARG DEBIAN_SUITE=trixie
ARG DEBIAN_MIRROR=http://deb.debian.org/debian

# --- rootfs: the target's Debian packages, extracted, no maintainer scripts ------------------
FROM --platform=${BUILDPLATFORM} ${DEBIAN_IMAGE} AS rootfs
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The target's ARGs come after the tools' install, so both platforms share that layer.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends mmdebstrap ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ARG TARGETARCH
ARG DEBIAN_SUITE
ARG DEBIAN_MIRROR
# mmdebstrap's extract variant resolves the packages' dependencies with apt and unpacks them
# without running dpkg or any maintainer script, for any architecture. The package list is
# the runtime: Python and its standard library, libstdc++ (google-re2's wheel links it),
# /bin/sh (dash) and the tools GitLab Runner's job scripts and ours call (coreutils, grep, sed,
# mawk). Packages that the dependencies pull in only for maintainer scripts (tzdata needs
# debconf, which needs perl) are unpacked and then removed file by file, as listed in their
# .deb. ca-certificates is not among them: its bundle is written by a maintainer script, and
# it would pull in openssl and debconf. The bundle is arch-independent text, so it is made here
# from this stage's copy of the package: every Mozilla certificate, as update-ca-certificates
# does by default, and none of the build machine's local additions
# (/usr/local/share/ca-certificates). Docs, man pages, locales and glibc's iconv modules are
# dropped (Python and regctl use none of them). The links the maintainer scripts would make
# are made here: awk and which (update-alternatives), OpenSSL's default CA paths (the openssl
# package's). usr/share/registry-cleanup/debian-packages lists what the image holds.
ARG ROOTFS_PACKAGES=base-files,dash,coreutils,grep,sed,mawk,python3.13-minimal,libpython3.13-stdlib,libstdc++6
ARG ROOTFS_DROP="debconf perl-base dpkg"
RUN set -eu; \
    mmdebstrap --mode=chrootless --variant=extract --architectures="${TARGETARCH}" \
        --include="${ROOTFS_PACKAGES}" --skip=cleanup/apt/cache \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/lintian/*' \
        "${DEBIAN_SUITE}" /rootfs "${DEBIAN_MIRROR}"
WORKDIR /rootfs
# dpkg-deb's --showformat takes ${Package} literally, hence the single quotes.
# hadolint ignore=SC2016
RUN set -eu; \
    mkdir -p usr/share/registry-cleanup; \
    for deb in var/cache/apt/archives/*.deb; do \
        name="$(dpkg-deb --field "$deb" Package)"; \
        case " ${ROOTFS_DROP} " in \
            *" ${name} "*) \
                echo "removing ${name}: only maintainer scripts use it"; \
                dpkg-deb --fsys-tarfile "$deb" | tar -t | grep -v '/$' | sed 's|^\./||' \
                    | while read -r path; do rm -f "./${path}"; done ;; \
            *) dpkg-deb --show --showformat='${Package} ${Version} ${Architecture}\n' "$deb" \
                    >> usr/share/registry-cleanup/debian-packages ;; \
        esac; \
    done; \
    cat usr/share/registry-cleanup/debian-packages; \
    rm -rf etc/apt var/lib/apt var/cache/apt var/lib/dpkg var/log/* etc/dpkg \
        usr/share/doc usr/share/man usr/share/info usr/share/locale usr/share/lintian \
        usr/lib/*-linux-gnu/gconv usr/share/perl* usr/lib/*-linux-gnu/perl*; \
    find usr/share -depth -type d -empty -delete; \
    mkdir -p etc/ssl/certs usr/lib/ssl tmp home/registry-cleanup; \
    cat /usr/share/ca-certificates/mozilla/*.crt > etc/ssl/certs/ca-certificates.crt; \
    ln -s /etc/ssl/certs/ca-certificates.crt usr/lib/ssl/cert.pem; \
    ln -s /etc/ssl/certs usr/lib/ssl/certs; \
    ln -s mawk usr/bin/awk; \
    ln -s which.debianutils usr/bin/which; \
    chmod 1777 tmp; \
    printf 'root:x:0:0:root:/root:/bin/sh\nregistry-cleanup:x:10001:10001::/home/registry-cleanup:/bin/sh\n' > etc/passwd; \
    printf 'root:x:0:\nregistry-cleanup:x:10001:\n' > etc/group; \
    test -x bin/sh && test -x usr/bin/python3.13; \
    if find . -path ./proc -prune -o \( -name 'perl*' -o -name 'dpkg*' -o -name 'apt*' \) -type f -print | grep .; then \
        echo "the rootfs still holds perl, dpkg or apt files" >&2; exit 1; \
    fi

# --- venv: the CLI and its dependencies, as wheels for the target ----------------------------
FROM --platform=${BUILDPLATFORM} ${DEBIAN_IMAGE} AS venv
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.13 python3-pip python3-installer \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ARG TARGETARCH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY entrypoint/ entrypoint/
# pip downloads binary wheels only, for CPython 3.13 on the target's architecture and any
# manylinux glibc up to trixie's, so nothing is compiled and nothing target-built runs here.
# installer then unpacks them into the venv without checking the tags against this machine,
# run by the venv's interpreter so scripts point at /opt/registry-cleanup/bin/python. No pip in
# the venv, and .pyc files only for what the command imports (the bytecode stage).
# hadolint ignore=DL3042
RUN set -eu; \
    case "${TARGETARCH}" in \
        amd64) machine=x86_64 ;; arm64) machine=aarch64 ;; \
        *) echo "no wheel platform for ${TARGETARCH}" >&2; exit 1 ;; \
    esac; \
    glibc_minor="$(getconf GNU_LIBC_VERSION | sed -E 's/^glibc 2\.([0-9]+).*/\1/')"; \
    set --; \
    for minor in $(seq 17 "${glibc_minor}"); do set -- "$@" --platform "manylinux_2_${minor}_${machine}"; done; \
    python3.13 -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .; \
    python3.13 -m pip download --no-cache-dir --only-binary=:all: --dest /wheels \
        --implementation cp --python-version 3.13 --abi cp313 --abi abi3 --abi none "$@" \
        /wheels/registry_cleanup-*.whl; \
    python3.13 -m venv --without-pip /opt/registry-cleanup; \
    for wheel in /wheels/*.whl; do \
        PYTHONPATH=/usr/lib/python3/dist-packages /opt/registry-cleanup/bin/python -m installer \
            --no-compile-bytecode "$wheel"; \
    done; \
    test -x /opt/registry-cleanup/bin/registry-cleanup

# --- bytecode: .pyc files for the modules the command imports when it starts ---------------
# Without them every job's start compiles those modules again (the image's user cannot write
# .pyc files): about a second, and many on an emulated arm64. scripts/startup_bytecode.py finds
# them by importing them in a venv of the same wheels for the build platform, then compiles the
# target's own sources of exactly those modules (the standard library from the rootfs stage, the
# venv from the venv stage) into /out, at the paths the image reads them from. Bytecode is the
# same on every architecture, but only within one Python version: the build fails unless this
# stage's python3.13 is the target's Debian version. docs/image.md has the measurements.
FROM --platform=${BUILDPLATFORM} ${DEBIAN_IMAGE} AS bytecode
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The venv stage's packages, in the same instruction, so both stages share the layer.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.13 python3-pip python3-installer \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=rootfs /rootfs/usr/lib/python3.13 /target/usr/lib/python3.13
COPY --from=rootfs /rootfs/etc/python3.13 /target/etc/python3.13
COPY --from=rootfs /rootfs/usr/share/registry-cleanup/debian-packages /target/debian-packages
COPY --from=venv /wheels /wheels
COPY --from=venv /opt/registry-cleanup /target/opt/registry-cleanup
COPY scripts/startup_bytecode.py /src/startup_bytecode.py
# The same versions as the image's wheels: pure wheels as they are, the others (compiled for the
# target) again for this platform.
# hadolint ignore=DL3042
RUN set -eu; \
    target="$(awk '$1 == "python3.13-minimal" { print $2 }' /target/debian-packages)"; \
    here="$(dpkg-query --show --showformat='${Version}' python3.13-minimal)"; \
    if [ "$target" != "$here" ]; then \
        echo "python3.13 here is ${here}, in the image ${target}: its bytecode may differ" >&2; \
        exit 1; \
    fi; \
    mkdir /trace-wheels; \
    : > /trace-requirements.txt; \
    for wheel in /wheels/*.whl; do \
        case "${wheel}" in \
            *-none-any.whl) cp "${wheel}" /trace-wheels/ ;; \
            *) base="${wheel##*/}"; rest="${base#*-}"; \
               echo "${base%%-*}==${rest%%-*}" >> /trace-requirements.txt ;; \
        esac; \
    done; \
    if [ -s /trace-requirements.txt ]; then \
        python3.13 -m pip download --no-cache-dir --no-deps --only-binary=:all: \
            --dest /trace-wheels -r /trace-requirements.txt; \
    fi; \
    python3.13 -m venv --without-pip /trace; \
    for wheel in /trace-wheels/*.whl; do \
        PYTHONPATH=/usr/lib/python3/dist-packages /trace/bin/python -m installer \
            --no-compile-bytecode "${wheel}"; \
    done; \
    /trace/bin/python /src/startup_bytecode.py --image-root /target --out /out

# --- regctl: built from source for the target, checked by Go's module checksum database ------
FROM --platform=${BUILDPLATFORM} ${DEBIAN_IMAGE} AS regctl
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends golang-go ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ARG TARGETOS
ARG TARGETARCH
ARG REGCTL_VERSION=v0.11.5
# Trixie's Go is 1.24; regctl v0.11.5 needs 1.25, so Go fetches the pinned toolchain from the
# module proxy, verified against sum.golang.org like the regctl module itself.
ARG GO_TOOLCHAIN=go1.25.5
# A cross-compiled `go install` lands in bin/GOOS_GOARCH/, a native one in bin/.
RUN set -eu; \
    CGO_ENABLED=0 GOOS="${TARGETOS}" GOARCH="${TARGETARCH}" GOTOOLCHAIN="${GO_TOOLCHAIN}" \
        GOPATH=/go GOFLAGS=-modcacherw \
        go install -trimpath -ldflags='-s -w' \
        "github.com/regclient/regclient/cmd/regctl@${REGCTL_VERSION}"; \
    find /go/bin -type f -name regctl -exec mv {} /usr/local/bin/regctl \; ; \
    test -x /usr/local/bin/regctl

# --- the runtime image -----------------------------------------------------------------------
FROM scratch
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="registry-cleanup" \
      org.opencontainers.image.description="Deletes a branch's container image when the branch goes away" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=rootfs /rootfs/ /
COPY --from=rootfs --chown=10001:10001 /rootfs/home/registry-cleanup /home/registry-cleanup
COPY --from=venv /opt/registry-cleanup /opt/registry-cleanup
COPY --from=bytecode /out/ /
COPY --from=regctl /usr/local/bin/regctl /usr/local/bin/regctl
ENV PATH="/opt/registry-cleanup/bin:/usr/local/bin:/usr/bin:/bin" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/registry-cleanup
# No ENTRYPOINT: GitLab Runner starts a shell in the image to run job scripts.
CMD ["registry-cleanup", "--help"]
