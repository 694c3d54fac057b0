#!/usr/bin/env bash
# One entry point for xnatnode: build (default) | setup | test | demo | register. See ./build.sh --help.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO_DIR
readonly DEFAULT_BASE_IMAGE="python:3.11-slim"
# Built from the Debian mirror with debootstrap when the Python base image cannot be pulled.
readonly DEBOOTSTRAP_IMAGE="xnatnode/debian-python:bookworm"
readonly DEBIAN_SOURCES="/etc/apt/sources.list.d/debian.sources"
readonly VENV_DIR="${REPO_DIR}/.venv"

usage() {
    cat <<'EOF'
Usage: ./build.sh [build] [options] [IMAGE...]
       ./build.sh setup
       ./build.sh test
       ./build.sh demo [--swarm] [options]
       ./build.sh register --xnat URL [--user USER] [--ca-bundle FILE | --insecure] [--netrc FILE]
       ./build.sh --help

Subcommands:
  build      (default) Check every command-json/<image>.json, then build xnatnode/base:<version>
             and xnatnode/<image>:<version> for every folder in containers/ (or only the IMAGEs
             named), each command image carrying its command JSON in the org.nrg.commands label.
             The tags and checks come from "xnatnode images" (the one image-name rule).
             "./build.sh build base" builds only the base image.
  setup      Make a fresh Debian machine ready (as root): apt-get install what is missing of
             docker.io, debootstrap, chromium, shellcheck, dcmtk, time and python3-venv, and start
             dockerd if no Docker engine answers. Idempotent.
  test       Create or reuse .venv (pip install -e 'shared_lib[xnatpy]' -e xnatsim -r requirements-dev.txt),
             then run ruff, mypy and every test (pytest tests/). Docker tests run whenever the
             CI environment variable is set, and skip otherwise when Docker is unavailable.
  demo       Build the images, then run "python -m xnatsim demo": the simulator with demo data,
             project-summary launched through its Container Service; prints where the report is.
             Then "python -m xnatsim demo-dicom-upload": a small DICOM batch sent by the
             dicom-upload image over C-STORE into the simulator's receiver, verified.
             The simulator's data is kept in .demo/ (a re-run reuses it). With --swarm the
             Container Service launches run as Docker Swarm services (a single-node swarm is
             made and left if needed).
  register   POST every command in command-json/ to XNAT's /xapi/commands (how Kubernetes sites,
             whose XNAT cannot read image labels, add commands), with "xnatnode register" from
             .venv (created as for test). Each file is checked with XNAT's rules first; a command
             XNAT already holds is skipped. The password comes from XNAT_PASS or the netrc file,
             else it is prompted for; it is never read from the command line.

Build options:
  --base-image IMAGE   Python image to build on (default python:3.11-slim). When the default
                       cannot be pulled, an equivalent is built from the Debian mirror with
                       debootstrap (needs root) and tagged xnatnode/debian-python:bookworm.
  --ca-bundle FILE     CA bundle pip trusts while building (default: $PIP_CERT, then
                       $REQUESTS_CA_BUNDLE, $SSL_CERT_FILE, the system bundle
                       /etc/ssl/certs/ca-certificates.crt). Used in a builder stage only, never
                       in the images.
  --containers DIR     image folders (default: containers/)
  --command-json DIR   command JSON files (default: command-json/)

Register options:
  --xnat URL           XNAT root URL, e.g. https://xnat.example.org (default: $XNAT_HOST)
  --user USER          XNAT user (default: $XNAT_USER, else the netrc login, else prompted)
  --ca-bundle FILE     PEM file of CA certificates to verify XNAT's TLS certificate with
  --insecure           do not verify XNAT's TLS certificate (not recommended)
  --netrc FILE         netrc file with the password (default: $NETRC, else ~/.netrc)
  --command-json DIR   command JSON files (default: command-json/)
EOF
}

die() {
    printf 'build.sh: error: %s\n' "$*" >&2
    exit 1
}

say() {
    printf 'build.sh: %s\n' "$*" >&2
}

# --- facts read from the repository (one source of truth each) ----------------------------

package_version() {
    local version
    version="$(sed -n 's/^__version__ = "\([^"]*\)"$/\1/p' "${REPO_DIR}/shared_lib/xnatnode/__init__.py")"
    [[ -n "${version}" ]] || die "no __version__ in shared_lib/xnatnode/__init__.py"
    printf '%s\n' "${version}"
}

git_revision() {
    local rev
    if rev="$(git -C "${REPO_DIR}" rev-parse HEAD 2>/dev/null)"; then
        # Uncommitted changes, new files included, make what is built differ from the commit.
        if [[ -n "$(git -C "${REPO_DIR}" status --porcelain 2>/dev/null)" ]]; then
            rev="${rev}-dirty"
        fi
        printf '%s\n' "${rev}"
    else
        printf 'unknown\n'
    fi
}

# Build time, reproducible: SOURCE_DATE_EPOCH if set, else the time of the last commit, so an
# unchanged tree rebuilds to identical images (and images built on top keep their cache).
build_created() {
    local epoch="${SOURCE_DATE_EPOCH:-}"
    if [[ -z "${epoch}" ]]; then
        epoch="$(git -C "${REPO_DIR}" log -1 --format=%ct 2>/dev/null || true)"
    fi
    if [[ -n "${epoch}" ]]; then
        date -u -d "@${epoch}" +%Y-%m-%dT%H:%M:%SZ
    else
        date -u +%Y-%m-%dT%H:%M:%SZ
    fi
}

# The origin URL without any user:password part; a file:// URL when there is no remote.
source_url() {
    local url
    if url="$(git -C "${REPO_DIR}" remote get-url origin 2>/dev/null)"; then
        printf '%s\n' "${url}" | sed -E 's#^([a-z+]+://)[^/@]*@#\1#'
    else
        printf 'file://%s\n' "${REPO_DIR}"
    fi
}

# --- Docker -------------------------------------------------------------------------------

require_docker() {
    command -v docker >/dev/null 2>&1 \
        || die "docker is not installed. Install it (.ci/run installs Debian's docker.io) and retry."
    if ! docker info >/dev/null 2>&1; then
        die "the Docker daemon is not reachable ($(docker info 2>&1 | grep -m1 -iE 'error|cannot' || echo 'docker info failed')). Start it (systemctl start docker, or: setsid dockerd >dockerd.log 2>&1 &) or check access to the Docker socket."
    fi
}

image_exists() {
    docker image inspect "$1" >/dev/null 2>&1
}

debian_mirror() {
    local mirror=""
    if [[ -r "${DEBIAN_SOURCES}" ]]; then
        mirror="$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' "${DEBIAN_SOURCES}" | head -n 1)"
    fi
    printf '%s\n' "${mirror:-http://deb.debian.org/debian}"
}

# Debian bookworm with python3 and python3-venv, imported as DEBOOTSTRAP_IMAGE (cached).
build_debootstrap_image() {
    if image_exists "${DEBOOTSTRAP_IMAGE}"; then
        say "using the local ${DEBOOTSTRAP_IMAGE} (built earlier with debootstrap)"
        return
    fi
    command -v debootstrap >/dev/null 2>&1 \
        || die "debootstrap is not installed (apt-get install debootstrap; .ci/run does it)"
    [[ "$(id -u)" == 0 ]] || die "building ${DEBOOTSTRAP_IMAGE} with debootstrap needs root"
    local mirror rootfs
    mirror="$(debian_mirror)"
    rootfs="$(mktemp -d "${TMPDIR:-/tmp}/xnatnode-rootfs.XXXXXX")"
    say "building ${DEBOOTSTRAP_IMAGE} from ${mirror} with debootstrap (about a minute)"
    if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "${rootfs}" "${mirror}" >"${rootfs}.log" 2>&1; then
        tail -n 20 "${rootfs}.log" >&2
        rm -rf "${rootfs}"
        die "debootstrap failed (full log: ${rootfs}.log)"
    fi
    rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/* "${rootfs}.log"
    # Like Debian's slim images: no documentation but copyright files, no manuals, no
    # translations (50 MB), now and for packages installed later.
    find "${rootfs}/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "${rootfs}/usr/share/doc" -mindepth 1 -type d -empty -delete
    find "${rootfs}/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias \
        -exec rm -rf {} +
    rm -rf "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/info/*
    cat >"${rootfs}/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    tar -C "${rootfs}" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        --message "debootstrap --variant=minbase bookworm ${mirror} + python3 python3-venv" \
        - "${DEBOOTSTRAP_IMAGE}" >/dev/null
    rm -rf "${rootfs}"
    say "built ${DEBOOTSTRAP_IMAGE}"
}

# Prints the Python base image to build on: the one asked for, pulled if needed; for the
# default, the debootstrap image when it cannot be pulled.
resolve_python_image() {
    local wanted="$1"
    if image_exists "${wanted}"; then
        printf '%s\n' "${wanted}"
        return
    fi
    if docker pull "${wanted}" >/dev/null 2>&1; then
        printf '%s\n' "${wanted}"
        return
    fi
    if [[ "${wanted}" != "${DEFAULT_BASE_IMAGE}" ]]; then
        die "base image ${wanted} is neither local nor pullable"
    fi
    say "cannot pull ${wanted} (no registry access): building the Python base from the Debian mirror instead"
    build_debootstrap_image
    printf '%s\n' "${DEBOOTSTRAP_IMAGE}"
}

# --- command JSON and image names ----------------------------------------------------------

# Runs an xnatnode subcommand that needs only the standard library (images,
# validate-command-json) from the source tree, so that a build needs no virtual environment.
xnatnode_tool() {
    command -v python3 >/dev/null 2>&1 || die "python3 (3.11 or later) is needed to build"
    PYTHONPATH="${REPO_DIR}/shared_lib${PYTHONPATH:+:${PYTHONPATH}}" python3 -m xnatnode "$@"
}

# Runs XNAT's rules (xnatnode validate-command-json --strict) from the freshly built base image,
# when the package has that command.
validate_command_json() {
    local base_tag="$1" dir="$2"
    shift 2
    (($# > 0)) || return 0
    local args=() file
    for file in "$@"; do
        args+=("/command-json/$(basename "${file}")")
    done
    docker run --rm --network none --read-only --tmpfs /tmp --user "$(id -u):$(id -g)" \
        -v "${dir}:/command-json:ro" "${base_tag}" validate-command-json --strict "${args[@]}" \
        || die "command JSON failed validation (see above)"
}

# --- build --------------------------------------------------------------------------------

# Copies DIR's files into a fresh build context, with the CA bundle (or an empty file).
make_context() {
    local src="$1" ctx="$2" ca="$3"
    rm -rf "${ctx}"
    mkdir -p "${ctx}"
    cp -R "${src}/." "${ctx}/"
    if [[ -n "${ca}" ]]; then
        cp "${ca}" "${ctx}/build-ca.pem"
    else
        : >"${ctx}/build-ca.pem"
    fi
}

# docker build with the OCI labels; extra arguments are passed on. The output goes to
# .build/<title>.log, and its end to stderr when the build fails.
docker_build() {
    local tag="$1" title="$2" ctx="$3"
    shift 3
    local log="${REPO_DIR}/.build/${title//\//_}.log"
    if ! docker build --tag "${tag}" \
        --label "org.opencontainers.image.title=${title}" \
        --label "org.opencontainers.image.version=${VERSION}" \
        --label "org.opencontainers.image.revision=${REVISION}" \
        --label "org.opencontainers.image.created=${CREATED}" \
        --label "org.opencontainers.image.source=${SOURCE}" \
        --label "org.opencontainers.image.licenses=Apache-2.0" \
        "$@" "${ctx}" >"${log}" 2>&1; then
        tail -n 40 "${log}" >&2
        die "docker build of ${tag} failed (full output: ${log})"
    fi
    say "built ${tag}"
}

cmd_build() {
    local base_image="${DEFAULT_BASE_IMAGE}" ca="${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}"
    # a machine whose proxy CA sits only in the system store (no PIP_CERT in the environment)
    [[ -z "${ca}" && -s /etc/ssl/certs/ca-certificates.crt ]] && ca=/etc/ssl/certs/ca-certificates.crt
    local containers="${REPO_DIR}/containers" jsondir="${REPO_DIR}/command-json"
    local only=()
    while (($# > 0)); do
        case "$1" in
            --base-image) base_image="${2:?--base-image needs an image}"; shift 2 ;;
            --ca-bundle) ca="${2:?--ca-bundle needs a file}"; shift 2 ;;
            --containers) containers="${2:?--containers needs a directory}"; shift 2 ;;
            --command-json) jsondir="${2:?--command-json needs a directory}"; shift 2 ;;
            -h | --help) usage; exit 0 ;;
            -*) die "unknown build option: $1 (see ./build.sh --help)" ;;
            *) only+=("$1"); shift ;;
        esac
    done
    [[ -z "${ca}" || -f "${ca}" ]] || die "CA bundle ${ca} does not exist"
    containers="$(cd "${containers}" && pwd)" || die "no such directory: ${containers}"
    jsondir="$(cd "${jsondir}" && pwd)" || die "no such directory: ${jsondir}"

    VERSION="$(package_version)"
    REVISION="$(git_revision)"
    CREATED="$(build_created)"
    SOURCE="$(source_url)"

    # Which command images, and their tags: "xnatnode images" pairs each folder of containers/
    # (or each IMAGE named) with its command-json/<name>.json and checks the JSON's image fields
    # against the one image-name rule. Its lines are NAME<TAB>TAG<TAB>JSON.
    local plan names=() tags=() files=() name tag file
    plan="$(xnatnode_tool images --containers "${containers}" --command-json "${jsondir}" \
        "${only[@]+"${only[@]}"}")" || die "the image folders and command JSON do not match (see above)"
    while IFS=$'\t' read -r name tag file; do
        [[ -n "${name}" ]] || continue
        names+=("${name}")
        tags+=("${tag}")
        files+=("${file}")
    done <<<"${plan}"
    local base_tag
    base_tag="$(xnatnode_tool images --tag base)"

    require_docker
    local python_image
    python_image="$(resolve_python_image "${base_image}")"
    # A context directory per run, so that builds running side by side do not share one.
    mkdir -p "${REPO_DIR}/.build"
    BUILD_ROOT="$(mktemp -d "${REPO_DIR}/.build/context.XXXXXX")"
    trap 'rm -rf "${BUILD_ROOT}"' EXIT
    local build_root="${BUILD_ROOT}"

    # Base: its context is containers/base/ plus the package source (shared_lib/, no caches).
    make_context "${containers}/base" "${build_root}/base" "${ca}"
    mkdir -p "${build_root}/base/shared_lib"
    cp "${REPO_DIR}/shared_lib/pyproject.toml" "${REPO_DIR}/shared_lib/README.md" \
        "${build_root}/base/shared_lib/"
    cp -R "${REPO_DIR}/shared_lib/xnatnode" "${build_root}/base/shared_lib/"
    find "${build_root}/base/shared_lib" -name __pycache__ -prune -exec rm -rf {} +
    say "building ${base_tag} on ${python_image}"
    docker_build "${base_tag}" "${base_tag%:*}" "${build_root}/base" \
        --build-arg "PYTHON_IMAGE=${python_image}" \
        --label "org.opencontainers.image.base.name=${python_image}"

    validate_command_json "${base_tag}" "${jsondir}" "${files[@]+"${files[@]}"}"

    local i
    for i in "${!names[@]}"; do
        name="${names[i]}"
        make_context "${containers}/${name}" "${build_root}/${name}" "${ca}"
        docker_build "${tags[i]}" "${tags[i]%:*}" "${build_root}/${name}" \
            --build-arg "BASE_IMAGE=${base_tag}" \
            --label "org.nrg.commands=$(cat "${files[i]}")"
    done
    rm -rf "${build_root}"
    trap - EXIT
}

# --- setup: what a fresh Debian machine needs -------------------------------------------------

readonly DOCKERD_LOG="${TMPDIR:-/tmp}/xnatnode-dockerd.log"
readonly DOCKERD_WAIT_S=90

as_root() {
    if [[ "$(id -u)" == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        say "need root (or sudo) to run: $*"
        exit 1
    fi
}

install_missing() {
    local missing=()
    # The machine may ship a docker client alone: the engine is what counts.
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
    # dcmtk: storescu/echoscu, the DICOM clients the receiver and dicom-upload are checked with
    command -v storescu >/dev/null 2>&1 || missing+=(dcmtk)
    # GNU time (not the shell keyword): a benchmark child's own peak RSS (benchmarks/measure.py)
    [[ -x /usr/bin/time ]] || missing+=(time)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
    if ((${#missing[@]} > 0)); then
        say "installing ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" </dev/null
    fi
}

start_docker() {
    if docker info >/dev/null 2>&1; then
        return
    fi
    say "starting dockerd (log: ${DOCKERD_LOG})"
    as_root setsid dockerd >"${DOCKERD_LOG}" 2>&1 </dev/null &
    local waited=0
    until docker info >/dev/null 2>&1; do
        if ((waited >= DOCKERD_WAIT_S)); then
            say "dockerd did not answer within ${DOCKERD_WAIT_S} s; last lines of its log:"
            tail -n 30 "${DOCKERD_LOG}" >&2 || true
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "dockerd is up after ${waited} s"
}

cmd_setup() {
    (($# == 0)) || die "setup takes no arguments"
    install_missing
    start_docker
}

# --- test and demo ------------------------------------------------------------------------

# Creates .venv, or reuses it while the dependency files it was made from are unchanged.
ensure_venv() {
    local stamp="${VENV_DIR}/.xnatnode-deps" want
    want="$(cat "${REPO_DIR}/shared_lib/pyproject.toml" "${REPO_DIR}/xnatsim/pyproject.toml" \
        "${REPO_DIR}/requirements-dev.txt" | sha256sum | cut -d' ' -f1)"
    if [[ -x "${VENV_DIR}/bin/python" && -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
        return
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 (3.11 or later) is needed for .venv"
    if [[ ! -x "${VENV_DIR}/bin/python" ]]; then
        say "creating ${VENV_DIR}"
        python3 -m venv "${VENV_DIR}" || die "python3 -m venv failed (apt-get install python3-venv)"
    fi
    say "installing xnatnode, xnatsim and the development tools into ${VENV_DIR}"
    "${VENV_DIR}/bin/python" -m pip install --quiet -e "${REPO_DIR}/shared_lib[xnatpy]" \
        -e "${REPO_DIR}/xnatsim" -r "${REPO_DIR}/requirements-dev.txt"
    printf '%s\n' "${want}" >"${stamp}"
}

# ruff, mypy and pytest all run, so one pass shows every problem; any failure fails the whole.
cmd_test() {
    (($# == 0)) || die "test takes no arguments"
    ensure_venv
    cd "${REPO_DIR}"
    local failed=() status=0
    say "ruff check ."
    "${VENV_DIR}/bin/ruff" check . || failed+=("ruff")
    say "mypy"
    "${VENV_DIR}/bin/mypy" || failed+=("mypy")
    say "pytest tests/"
    "${VENV_DIR}/bin/pytest" tests/ || status=$?
    case "${status}" in
        0) ;;
        5) failed+=("pytest (exit status 5: no tests were collected, the test suite is missing)") ;;
        *) failed+=("pytest (exit status ${status})") ;;
    esac
    if ((${#failed[@]} > 0)); then
        local summary
        summary="$(printf '%s; ' "${failed[@]}")"
        die "failed: ${summary%; }"
    fi
    say "ruff, mypy and every test passed"
}

cmd_demo() {
    local build_args=() demo_args=()
    for arg in "$@"; do
        case "${arg}" in
            --swarm) demo_args+=(--swarm) ;;
            *) build_args+=("${arg}") ;;
        esac
    done
    cmd_build "${build_args[@]}"
    ensure_venv
    cd "${REPO_DIR}"
    # A kept data folder, so the printed report path stays valid after the demo ends.
    "${VENV_DIR}/bin/python" -m xnatsim demo --data "${REPO_DIR}/.demo" \
        --command-json "${REPO_DIR}/command-json" "${demo_args[@]}"
    # dicom-upload: a small deep-storage batch sent by C-STORE into the simulator's DICOM receiver
    "${VENV_DIR}/bin/python" -m xnatsim demo-dicom-upload --data "${REPO_DIR}/.demo/dicom-upload"
}

# --- register -----------------------------------------------------------------------------

cmd_register() {
    local args=() jsondir="${REPO_DIR}/command-json"
    while (($# > 0)); do
        case "$1" in
            --xnat) args+=(--xnat-host "${2:?--xnat needs a URL}"); shift 2 ;;
            --user) args+=(--xnat-user "${2:?--user needs a name}"); shift 2 ;;
            --command-json) jsondir="${2:?--command-json needs a directory}"; shift 2 ;;
            --password | --pass | -p) die "the password is never taken from the command line: set XNAT_PASS, use a netrc file or answer the prompt" ;;
            -h | --help) usage; exit 0 ;;
            # The client's own options (--ca-bundle FILE, --insecure, --netrc FILE, --timeout S,
            # --retries N) go to "xnatnode register", which refuses what it does not know.
            *) args+=("$1"); shift ;;
        esac
    done
    local files=("${jsondir}"/*.json)
    [[ -e "${files[0]}" ]] || die "no command JSON in ${jsondir}"
    ensure_venv
    "${VENV_DIR}/bin/xnatnode" register "${args[@]+"${args[@]}"}" "${files[@]}"
}

# --- main ---------------------------------------------------------------------------------

main() {
    local sub="build"
    if (($# > 0)); then
        case "$1" in
            build | setup | test | demo | register) sub="$1"; shift ;;
            -h | --help | help) usage; exit 0 ;;
        esac
    fi
    "cmd_${sub}" "$@"
}

main "$@"
