#!/usr/bin/env bash
# Installs desktop-mate for this user: the program and its libraries in
# ~/.local/lib/desktop-mate/, `desktop-mate` on the PATH (~/.local/bin), and an entry with an
# icon in the app menu. Nothing outside your home folder; your settings are not touched.
#
#   scripts/install.sh               build (the dev build run.sh uses), pack and install
#   scripts/install.sh --release     the same with the release profile (thin LTO, a second build)
#   ./install.sh                     from an unpacked desktop-mate-linux-x86_64.tar.gz
#   install.sh --uninstall           remove what it installed (settings and history stay)
#   PREFIX=/some/dir install.sh      install under another folder than ~/.local
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix="${PREFIX:-$HOME/.local}"
lib="$prefix/lib/desktop-mate"
bin="$prefix/bin/desktop-mate"
entry="$prefix/share/applications/desktop-mate.desktop"
icon="$prefix/share/icons/hicolor/256x256/apps/desktop-mate.png"

refresh_menu() {
  if command -v update-desktop-database >/dev/null; then
    update-desktop-database "$prefix/share/applications" 2>/dev/null || true
  fi
}

if [[ "${1:-}" == "--uninstall" ]]; then
  rm -rf "$lib"
  rm -f "$bin" "$entry" "$icon"
  refresh_menu
  echo "install: removed desktop-mate from $prefix (settings and history are kept)"
  exit 0
fi

# The folder to install: this script's own (an unpacked package), else a fresh package of the
# build in this checkout.
if [[ -x "$here/desktop-mate" ]]; then
  from="$here"
else
  tarball=$("$here/package-linux.sh" "$@")
  from="${tarball%.tar.gz}"
fi

rm -rf "$lib"
mkdir -p "$lib" "$(dirname "$bin")" "$(dirname "$entry")" "$(dirname "$icon")"
cp -r "$from"/. "$lib/"
# A link: the program finds its libraries and modules next to its real path ($ORIGIN).
ln -sfn "$lib/desktop-mate" "$bin"
cp "$from/desktop-mate.png" "$icon"
cat >"$entry" <<DESKTOP
[Desktop Entry]
Type=Application
Name=desktop-mate
GenericName=Desktop companion
Comment=A VRM mascot that chats with you through a local LLM
Exec="$bin" run
Icon=desktop-mate
Terminal=false
Categories=Utility;
StartupNotify=false
StartupWMClass=desktop-mate
DESKTOP
refresh_menu
echo "install: desktop-mate installed in $lib; run it with: $bin"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "install: $prefix/bin is not on your PATH; add it (e.g. in ~/.profile) to type 'desktop-mate'" ;;
esac
