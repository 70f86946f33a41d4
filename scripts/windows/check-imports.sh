#!/usr/bin/env bash
# Checks that every DLL imported by the .exe/.dll files in a folder is either in that folder or
# part of a stock Windows 10/11 (the list below), so the folder runs without installing
# anything. Prints each file's imports; exits 1 naming what is missing.
#   scripts/windows/check-imports.sh <folder>
set -euo pipefail
folder="$1"

# DLLs every Windows 10/11 has (system32), lower case; api-ms-win-* / ext-ms-win-* API sets too.
system=(
  advapi32 avrt bcrypt bcryptprimitives cfgmgr32 combase comctl32 comdlg32 crypt32 d2d1 d3d11
  d3d12 d3d9 d3dcompiler_47 dbghelp dinput8 dwmapi dwrite dxgi gdi32 hid imm32 iphlpapi kernel32
  kernelbase ktmw32 mswsock msvcrt ncrypt netapi32 ntdll ole32 oleaut32 opengl32 pdh powrprof
  propsys psapi rpcrt4 secur32 setupapi shcore shell32 shlwapi uiautomationcore user32 userenv
  uxtheme version windowscodecs winhttp wininet winmm ws2_32 wsock32 xinput1_4
)

shopt -s nullglob nocaseglob
files=("$folder"/*.exe "$folder"/*.dll)
shopt -u nullglob nocaseglob
if ((${#files[@]} == 0)); then
  echo "check-imports: no .exe or .dll in $folder" >&2
  exit 1
fi

declare -A known=()
for name in "${system[@]}"; do
  known["$name"]=1
done
declare -A here=()
for file in "${files[@]}"; do
  name=$(basename "$file")
  here["${name,,}"]=1
done

missing=0
for file in "${files[@]}"; do
  imports=$(x86_64-w64-mingw32-objdump -p "$file" | sed -n 's/^\s*DLL Name: //p' | tr -d '\r')
  echo "$(basename "$file"): $(echo "$imports" | sort -fu | tr '\n' ' ')"
  while read -r dll; do
    [[ -z "$dll" ]] && continue
    lower="${dll,,}"
    base="${lower%.dll}"
    if [[ -n "${here[$lower]:-}" ]] || [[ "$base" == api-ms-win-* ]] || [[ "$base" == ext-ms-win-* ]]; then
      continue
    fi
    if [[ -n "${known[$base]:-}" ]]; then
      continue
    fi
    echo "check-imports: $(basename "$file") imports $dll, which is neither in $folder nor part of Windows" >&2
    missing=1
  done <<<"$imports"
done
if ((missing)); then
  exit 1
fi
echo "check-imports: every import of ${#files[@]} files is in the folder or part of Windows"
