#!/usr/bin/env bash
# Put Slicewise into the Linux desktop's menus: desktop entry, AppStream metadata and icons.
#   bash packaging/install_desktop.sh                    -> Exec=slicewise (must be on PATH)
#   bash packaging/install_desktop.sh --exec dist/slicewise/slicewise   -> a bundle, or any program
# Installs below DATA_HOME (default ~/.local/share; /usr/local/share for every user, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_HOME=${DATA_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}}
APP_ID=org.slicewise.Slicewise
program=slicewise
if [ "${1:-}" = "--exec" ]; then
  [ -x "${2:-}" ] || { echo "--exec needs an executable program, got '${2:-}'"; exit 2; }
  program=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
fi

install -d "$DATA_HOME/applications" "$DATA_HOME/metainfo"
sed "s|^Exec=slicewise |Exec=$program |" "resources/$APP_ID.desktop" > "$DATA_HOME/applications/$APP_ID.desktop"
install -m644 "resources/$APP_ID.metainfo.xml" "$DATA_HOME/metainfo/$APP_ID.metainfo.xml"
install -Dm644 resources/slicewise.svg "$DATA_HOME/icons/hicolor/scalable/apps/$APP_ID.svg"
for png in resources/slicewise-*.png; do
  size=$(basename "$png" .png); size=${size#slicewise-}
  install -Dm644 "$png" "$DATA_HOME/icons/hicolor/${size}x${size}/apps/$APP_ID.png"
done
# menus and icon caches pick the files up at the next login; refresh them now where we can
command -v update-desktop-database >/dev/null && update-desktop-database -q "$DATA_HOME/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$DATA_HOME/icons/hicolor" || true
echo "installed $APP_ID (Exec=$program) below $DATA_HOME"
