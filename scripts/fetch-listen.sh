#!/usr/bin/env bash
# Fetches what listening (src/voice/listen.rs) needs in tests and benchmarks, from PyPI:
# - Silero VAD (MIT), the voice activity detector that cuts speech into utterances: the ONNX
#   model the package `silero-vad` ships, into ~/.cache/desktop-mate/models/silero-vad.onnx;
# - real recorded English read speech with its transcripts: five LibriVox utterances (Jane
#   Austen's Sense and Sensibility, public domain) and CMU's five "cards" utterances, from the
#   test data of the `pocketsphinx` source package (BSD-2-Clause), into
#   ~/.cache/desktop-mate/models/speech-samples/.
# - Moonshine tiny (English, MIT, Moonshine AI): the quantized ORT files the PyPI wheel
#   `moonshine-voice` 0.1.0 ships (later versions download them at run time), laid out for
#   sherpa-onnx's Moonshine v2 recognizer, its tokens.txt made from the wheel's tokenizer.bin as
#   sherpa-onnx's scripts/moonshine/v2/generate_tokens.py does, into
#   ~/.cache/desktop-mate/models/moonshine-tiny-en/.
# - real recorded French speech with its transcripts: Asterisk's French prompts, read by June
#   Wallack (CC-BY-SA-3.0), from Debian main's `asterisk-core-sounds-fr-wav` and
#   `asterisk-core-sounds-fr` 1.6.1-1 (the second holds the transcripts), into
#   ~/.cache/desktop-mate/models/speech-samples-fr/ (the WAVs, core-sounds-fr.txt, copyright).
# Prints the four paths. Tests and benchmarks only: the mascot itself never downloads these.
set -euo pipefail

VAD_WHEEL_SHA256=7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8
VAD_SHA256=1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3
SAMPLES_SHA256=675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355
MOONSHINE_WHEEL_SHA256=0f833deb43bad5dcfb4cfd3257b6df83ef9abd3f27be3199622fe41932e8d916
MOONSHINE_FILES_SHA256="94e90a4654fc45cdfedb77c4c08e1739f48862998e58fada384b25118134f221  encoder_model.ort
cf524c4862d36e9e5ab032eddc73637efd822d70e868ac575cf1a46e1e4708a0  decoder_model_merged.ort
2870d843e14c1e187bf1913a521562a63b53933814bd7f2145120468f494a049  tokens.txt
6884b35fd6377d4c4d32336a0bc152f36b64d1e45b6503683cdc238250a8472d  tokenizer.bin"
FRENCH_WAV_DEB_SHA256=8d4e1bc32ed5ba7fbda40841ca1825ed20cc6232724a473c90f8bb0e53e6073e
FRENCH_TEXT_DEB_SHA256=04c82c78c570c43a7136cbc5e2488d0c470b775468dff9fbce4a131b18cf1056
models="${DESKTOP_MATE_MODELS:-$HOME/.cache/desktop-mate/models}"
vad="$models/silero-vad.onnx"
samples="$models/speech-samples"
mkdir -p "$models"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Downloads URL to FILE (PyPI's file host or Debian's pool: permanent addresses) and checks its
# SHA256.
fetch_pinned() {
  local url=$1 file=$2 sha=$3
  if ! python3 -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" "$url" "$file"; then
    echo "fetch-listen: could not download $url (offline?)" >&2
    exit 1
  fi
  if ! echo "$sha  $file" | sha256sum --check --status; then
    echo "fetch-listen: $url's sha256 is not $sha" >&2
    exit 1
  fi
}

if ! { [[ -f "$vad" ]] && echo "$VAD_SHA256  $vad" | sha256sum --check --status; }; then
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$work" silero-vad==6.2.3 >&2; then
    echo "fetch-listen: could not download silero-vad from PyPI (offline?)" >&2
    exit 1
  fi
  wheel=("$work"/silero_vad-*.whl)
  if ! echo "$VAD_WHEEL_SHA256  ${wheel[0]}" | sha256sum --check --status; then
    echo "fetch-listen: ${wheel[0]}'s sha256 is not $VAD_WHEEL_SHA256" >&2
    exit 1
  fi
  python3 -m zipfile -e "${wheel[0]}" "$work/vad"
  echo "$VAD_SHA256  $work/vad/silero_vad/data/silero_vad.onnx" | sha256sum --check --status
  cp "$work/vad/silero_vad/data/silero_vad.onnx" "$vad.tmp"
  mv "$vad.tmp" "$vad"
fi

if [[ ! -f "$samples/.complete" ]]; then
  # The source package itself (pip download of a source package would build it), at its
  # permanent address on PyPI's file host, checked by its sha256.
  fetch_pinned https://files.pythonhosted.org/packages/61/e7/13e0e787ff467218de880310d79cba14424f13b87171ac44af0bde1e428c/pocketsphinx-5.1.1.tar.gz \
    "$work/ps.tar.gz" "$SAMPLES_SHA256"
  tar -xzf "$work/ps.tar.gz" -C "$work" pocketsphinx-5.1.1/test/data/librivox pocketsphinx-5.1.1/test/data/cards pocketsphinx-5.1.1/LICENSE
  rm -rf "$samples"
  mkdir -p "$samples"
  cp -r "$work/pocketsphinx-5.1.1/test/data/librivox" "$work/pocketsphinx-5.1.1/test/data/cards" "$samples/"
  cp "$work/pocketsphinx-5.1.1/LICENSE" "$samples/LICENSE.pocketsphinx"
  touch "$samples/.complete"
fi
moonshine="$models/moonshine-tiny-en"
# tokenizer.bin is kept: the app's download makes tokens.txt from it, and a test compares.
if [[ ! -f "$moonshine/.complete" || ! -f "$moonshine/tokenizer.bin" ]]; then
  fetch_pinned https://files.pythonhosted.org/packages/fd/a3/e3c0156664e9505af7b23072c3e947cec3a7ee938764c70424051366c368/moonshine_voice-0.1.0-py3-none-manylinux_2_34_x86_64.whl \
    "$work/moonshine.whl" "$MOONSHINE_WHEEL_SHA256"
  mkdir -p "$work/moonshine"
  python3 - "$work/moonshine.whl" "$work/moonshine" <<'PY'
import base64, os, sys, zipfile

wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name, target in [
        ("moonshine_voice/assets/tiny-en/encoder_model.ort", "encoder_model.ort"),
        ("moonshine_voice/assets/tiny-en/decoder_model_merged.ort", "decoder_model_merged.ort"),
        ("moonshine_voice/assets/tiny-en/tokenizer.bin", "tokenizer.bin"),
        ("moonshine_voice-0.1.0.dist-info/licenses/LICENSE", "LICENSE"),
    ]:
        with z.open(name) as src, open(os.path.join(out, target), "wb") as dst:
            dst.write(src.read())
# tokenizer.bin: per token a length (one byte < 128, else two: low 7 bits then high) and its
# bytes; tokens.txt: the bytes in base64 and the token's id, one per line.
data = open(os.path.join(out, "tokenizer.bin"), "rb").read()
tokens, i = [], 0
while i < len(data):
    first = data[i]
    i += 1
    if first == 0:
        tokens.append(b"")
        continue
    if first < 128:
        n = first
    else:
        n = data[i] * 128 + (first - 128)
        i += 1
    tokens.append(data[i : i + n])
    i += n
with open(os.path.join(out, "tokens.txt"), "w", encoding="utf-8") as f:
    for index, token in enumerate(tokens):
        f.write(f"{base64.b64encode(token).decode('ascii')} {index}\n")
PY
  if ! (cd "$work/moonshine" && echo "$MOONSHINE_FILES_SHA256" | sha256sum --check --status); then
    echo "fetch-listen: Moonshine tiny's files are not the expected ones" >&2
    exit 1
  fi
  rm -rf "$moonshine"
  mv "$work/moonshine" "$moonshine"
  touch "$moonshine/.complete"
fi
french="$models/speech-samples-fr"
if [[ ! -f "$french/.complete" ]]; then
  # Debian's pool: a version's file keeps its address while the version is in an archive.
  pool=http://deb.debian.org/debian/pool/main/a/asterisk-core-sounds
  fetch_pinned "$pool/asterisk-core-sounds-fr-wav_1.6.1-1_all.deb" "$work/fr-wav.deb" "$FRENCH_WAV_DEB_SHA256"
  fetch_pinned "$pool/asterisk-core-sounds-fr_1.6.1-1_all.deb" "$work/fr.deb" "$FRENCH_TEXT_DEB_SHA256"
  dpkg-deb -x "$work/fr-wav.deb" "$work/fr"
  dpkg-deb -x "$work/fr.deb" "$work/fr"
  rm -rf "$french"
  mkdir -p "$work/french"
  cp -r "$work/fr/usr/share/asterisk/sounds/fr_CA_f_June/." "$work/french/"
  gzip -dc "$work/fr/usr/share/doc/asterisk-core-sounds-fr/core-sounds-fr.txt.gz" >"$work/french/core-sounds-fr.txt"
  cp "$work/fr/usr/share/doc/asterisk-core-sounds-fr-wav/copyright" "$work/french/copyright"
  mv "$work/french" "$french"
  touch "$french/.complete"
fi
echo "$vad"
echo "$samples"
echo "$moonshine"
echo "$french"
