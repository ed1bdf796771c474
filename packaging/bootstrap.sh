#!/usr/bin/env bash
# One-step set-up for a fresh Debian/Ubuntu machine, then the demo or the test suite.
#   bash packaging/bootstrap.sh demo   -> cone demo: GUI with a display, headless reconstruction without
#   bash packaging/bootstrap.sh test   -> the whole test suite (GUI tests under Xvfb); under CI
#                                         (CI=true) or with SLICEWISE_BUILD_BUNDLE=1 it first builds
#                                         the desktop bundle, which tests/test_bundle.py then starts
#   bash packaging/bootstrap.sh setup  -> only install
# Safe to run again: installed pieces are skipped. Environment: VENV (default .venv), PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
what=${1:-demo}
shift || true

APT_PACKAGES=(python3-venv xvfb xauth libgl1 libegl1 libgl1-mesa-dri libxkbcommon0 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0
  libxcb-randr0 libxcb-xkb1 libxcb-xinerama0 libdbus-1-3 libfontconfig1 fonts-dejavu-core libglib2.0-0
  appstream desktop-file-utils binutils)  # validators of resources/, objdump for PyInstaller

install_system() {
  command -v dpkg-query >/dev/null || { echo "not a Debian system: install the Qt/OpenGL/Xvfb libraries yourself"; return 0; }
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "[slicewise] installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[slicewise] creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip
  echo "[slicewise] installing slicewise and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
}

install_system
install_python

case "$what" in
  setup) echo "[slicewise] ready: $VENV/bin/slicewise --help" ;;
  demo)
    if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
      exec "$VENV/bin/slicewise" demo "$@"
    else
      echo "[slicewise] no display: running the cone demo headless (results in ./slicewise-demo)"
      exec "$VENV/bin/slicewise" demo --headless "$@"
    fi ;;
  test)
    if [ "${CI:-}" = true ] || [ -n "${SLICEWISE_BUILD_BUNDLE:-}" ]; then
      VENV="$VENV" bash packaging/build_bundle.sh --no-test   # about 3 minutes on 2 cores
      export SLICEWISE_BUNDLE="$(pwd)/dist/slicewise/slicewise"
    fi
    export QT_QPA_PLATFORM=xcb
    export PATH="$(cd "$VENV" && pwd)/bin:$PATH"   # the venv's commands (slicewise, mpiexec) for subprocess tests
    # pytest exits 5 when it collected no test: with set -e that fails the run, as it must.
    exec xvfb-run -a -s "-screen 0 1600x1000x24" "$VENV/bin/python" -m pytest -q -rs -p no:cacheprovider "$@" ;;
  *) echo "usage: bash packaging/bootstrap.sh [demo|test|setup] [extra args]"; exit 2 ;;
esac
