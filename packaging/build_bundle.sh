#!/usr/bin/env bash
# Build the one-folder desktop bundle dist/slicewise/ (PyInstaller) and test the frozen program.
#   bash packaging/build_bundle.sh            -> build, then test the frozen program (tests/test_bundle.py)
#   bash packaging/build_bundle.sh --no-test  -> build only
# Needs the virtual environment of `bash packaging/bootstrap.sh setup` (VENV, default .venv);
# installs the `bundle` extra (PyInstaller) into it. Work files go to build/bundle/.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "no $PY: run bash packaging/bootstrap.sh setup first"; exit 2; }

if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
  echo "[bundle] installing PyInstaller (the 'bundle' extra) into $VENV"
  "$PY" -m pip install -q -e ".[bundle]"
fi

# PyInstaller follows imports through sys.path, not setuptools' editable-install finder: stage the
# package tree (pyproject's package-dir mapping) as a plain folder it can read.
STAGE=build/bundle/src
rm -rf "$STAGE"
mkdir -p "$STAGE/slicewise"
for part in engine app cli resources; do
  cp -r "$part" "$STAGE/slicewise/$part"
done
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +

start=$(date +%s)
QT_QPA_PLATFORM=offscreen SLICEWISE_STAGE="$(pwd)/$STAGE" PYTHONPATH="$(pwd)/$STAGE" \
  "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --workpath build/bundle/work --distpath dist packaging/slicewise.spec
# hdf5plugin's filters come with their debug information (185 MB, a tenth of it without)
strip --strip-debug dist/slicewise/_internal/hdf5plugin/plugins/*.so
end=$(date +%s)
size=$(du -sh dist/slicewise | cut -f1)
files=$(find dist/slicewise -type f | wc -l)
echo "[bundle] built dist/slicewise in $((end - start)) s: $size in $files files"
echo "[bundle] run it as dist/slicewise/slicewise (try: dist/slicewise/slicewise doctor)"

if [ "${1:-}" != "--no-test" ]; then
  # the frozen program started as a user would: --version, doctor, a one-epoch demo, the window
  export SLICEWISE_BUNDLE="$(pwd)/dist/slicewise/slicewise" QT_QPA_PLATFORM=xcb
  xvfb-run -a -s "-screen 0 1600x1000x24" "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_bundle.py
fi
