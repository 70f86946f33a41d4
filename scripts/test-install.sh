#!/usr/bin/env bash
# The Linux package as a user gets it (CI runs this after the Linux tests): packed, unpacked and
# installed into a temporary home with its own install.sh, then started from another folder
# through the PATH: `check --json` finds its llama.cpp modules next to the installed program,
# a snapshot renders the mascot (Xvfb), the app-menu entry points at the installed program,
# and --uninstall removes it all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
start=$SECONDS
tarball=$(scripts/package-linux.sh)
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
tar -C "$home" -xzf "$tarball"
run_home() {
  env -u DESKTOP_MATE_BACKENDS_DIR -u DESKTOP_MATE_CONFIG HOME="$home" \
    XDG_CONFIG_HOME="$home/.config" XDG_DATA_HOME="$home/.local/share" \
    PATH="$home/.local/bin:$PATH" "$@"
}
run_home "$home/desktop-mate-linux-x86_64/install.sh" >/dev/null
rm -rf "$home/desktop-mate-linux-x86_64"
mkdir -p "$home/elsewhere"
cd "$home/elsewhere"

check=$(run_home desktop-mate check --json)
echo "$check" | python3 -c '
import json, sys
home = sys.argv[1]
report = json.load(sys.stdin)
backends = report["backends"]
assert backends and backends["cpu_variant"], report.get("backends_error")
assert backends["dir"].startswith(home + "/.local/lib/desktop-mate"), backends["dir"]
print("test-install: check from another folder: CPU module", backends["cpu_variant"],
      "of", len(backends["cpu_candidates"]), "in", backends["dir"].replace(home, "~"))
' "$home"

run_home xvfb-run -a -s "-screen 0 1280x1024x24 -noreset" desktop-mate snapshot --size 300x400 \
  --out "$home/shot.png" 2>"$home/snapshot.log" || {
  tail -20 "$home/snapshot.log" >&2
  echo "test-install: the installed program's snapshot FAILED" >&2
  exit 1
}
python3 - "$home/shot.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
width, height = struct.unpack(">II", data[16:24])
print(f"test-install: the installed program rendered a {width}x{height} snapshot")
PY

entry="$home/.local/share/applications/desktop-mate.desktop"
grep -qx "Exec=\"$home/.local/bin/desktop-mate\" run" "$entry"
[[ -f "$home/.local/share/icons/hicolor/256x256/apps/desktop-mate.png" ]]
run_home "$home/.local/lib/desktop-mate/install.sh" --uninstall >/dev/null
[[ ! -e "$home/.local/bin/desktop-mate" && ! -e "$entry" && ! -e "$home/.local/lib/desktop-mate" ]]
echo "test-install: installed, run from another folder, listed in the app menu, uninstalled in $((SECONDS - start)) s"
