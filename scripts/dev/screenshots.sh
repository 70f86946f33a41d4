#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png from the real app under Xvfb (Mesa lavapipe renders on the
# CPU, so no GPU or screen is needed). Uses the bundled default settings, not yours. The chat
# screenshot uses the small stories260K test model from ../shared when it is there.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Every run writes into its own temporary HOME, never the user's data (memories, history).
unset XDG_DATA_HOME XDG_CONFIG_HOME XDG_CACHE_HOME DESKTOP_MATE_EMBEDDING_MODEL
scripts/setup.sh --test
cargo build --locked
bin="${CARGO_TARGET_DIR:-target}/debug/desktop-mate"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp config/mascot.ron "$tmp/mascot.ron"
mkdir -p docs/screenshots
shoot() {
  HOME="$tmp" xvfb-run -a -s "-screen 0 1280x1024x24" "$bin" snapshot --config "$tmp/mascot.ron" \
    --size "${SIZE:-400x600}" "$@"
}
shoot --settings --no-chat --out docs/screenshots/settings.png
# Listening on: its section open, with the catalogue's recognizers to download (fresh HOME).
sed 's/^        enabled: false,\( *\)\/\/ hold/        enabled: true, \1\/\/ hold/' config/mascot.ron >"$tmp/listen-on.ron"
grep -q '^        enabled: true, *// hold' "$tmp/listen-on.ron"
HOME="$tmp" xvfb-run -a -s "-screen 0 1280x1024x24" "$bin" snapshot --config "$tmp/listen-on.ron" \
  --size 440x760 --settings --no-chat --out docs/screenshots/listen-settings.png
echo "wrote docs/screenshots/settings.png, listen-settings.png"
shoot --no-chat --out docs/screenshots/mascot.png
shoot --no-chat --expression joy=1 --out docs/screenshots/mascot-joy.png
SIZE=640x600 shoot --no-chat --expressions-panel --expression surprised=1 --out docs/screenshots/expressions.png
shoot --no-chat --menu --out docs/screenshots/menu.png
# A file that cannot be shown: the built-in mascot and the reason at the top of the window.
shoot --no-chat --avatar "$tmp/missing.vrm" --out docs/screenshots/notice.png
echo "wrote docs/screenshots/mascot.png, mascot-joy.png, expressions.png, menu.png, notice.png"
# Motion: the wave of the greeting, the joy bounce, the sleepy pose, the listening pose
# (clips held at a time).
shoot --no-chat --motion greeting --at 1.3 --out docs/screenshots/motion-wave.png
shoot --no-chat --motion joy --at 0.5 --expression joy=1 --out docs/screenshots/motion-joy.png
shoot --no-chat --motion sleepy --at 1.0 --expression blink=1 --out docs/screenshots/motion-sleepy.png
shoot --no-chat --motion listening --at 1.6 --out docs/screenshots/motion-listening.png
echo "wrote docs/screenshots/motion-wave.png, motion-joy.png, motion-sleepy.png, motion-listening.png"
# The Memory panel (F5) with a few memories, written as the chat keeps them.
for said in "The user said: I have a cat called Miso" "The user said: I work nights at a bakery" \
  "The user said: my name is Léa"; do
  HOME="$tmp" "$bin" memory --config "$tmp/mascot.ron" add "$said" >/dev/null
done
SIZE=440x600 shoot --no-chat --memory-panel --out docs/screenshots/memory.png
rm -rf "$tmp/.local"
echo "wrote docs/screenshots/memory.png"
godette=../shared/avatars/Godette_vrm_v4.vrm
if [[ -f $godette ]]; then
  shoot --no-chat --avatar "$godette" --out docs/screenshots/godette.png
  shoot --no-chat --avatar "$godette" --expression angry=1 --out docs/screenshots/godette-angry.png
  shoot --no-chat --avatar "$godette" --motion angry --at 1.5 --expression angry=1 \
    --out docs/screenshots/godette-arms-crossed.png
  echo "wrote docs/screenshots/godette.png, godette-angry.png, godette-arms-crossed.png"
fi
vrm1=../shared/avatars/VRMC_vrm_expressions_isBinary_Overridden.vrm
if [[ -f $vrm1 ]]; then
  # A VRM 1.0 sample: happy shown, its override hides the binary blink (green checks = right).
  SIZE=600x600 shoot --no-chat --avatar "$vrm1" --expression joy=1 --expression blink=1 \
    --out docs/screenshots/vrm1.png
  echo "wrote docs/screenshots/vrm1.png"
fi
# First run without a model: the catalogue, then a download in progress (from a slow local
# server standing in for Hugging Face: nothing leaves this machine, the file is zeros).
shoot --out docs/screenshots/first-run.png
port=18765
size=$(sed -n 's/.*size_bytes: \([0-9]*\),.*/\1/p' config/models.ron | sed -n 2p)
python3 scripts/dev/slow-file-server.py "$port" "$size" 20000000 &
server=$!
# The download must find the server listening (it refused a connection once under load).
for _ in $(seq 50); do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
HF_ENDPOINT="http://127.0.0.1:$port" shoot --download qwen2.5-1.5b --settle-frames 60 \
  --out docs/screenshots/download.png
kill "$server"
rm -rf "$tmp/.local"
echo "wrote docs/screenshots/first-run.png, download.png"
model=../shared/models/stories260K.gguf
if [[ -f $model ]]; then
  # stories260K is a story model without chat template: let the persona start a story.
  cat >"$tmp/story.ron" <<'RON'
(
    llm: (n_threads: 1, sampling: (temperature: 0.0, max_tokens: 48)),
    persona: (name: "Mate", system_prompt: "Once upon a time"),
)
RON
  HOME="$tmp" xvfb-run -a -s "-screen 0 1280x1024x24" "$bin" snapshot --config "$tmp/story.ron" \
    --size 400x600 --model "$model" --say "Tell me a story" --out docs/screenshots/chat.png
  echo "wrote docs/screenshots/chat.png"
  rm -rf "$tmp/.local" # each screenshot starts a fresh conversation
  HOME="$tmp" xvfb-run -a -s "-screen 0 1280x1024x24" "$bin" snapshot --config "$tmp/story.ron" \
    --size 760x800 --model "$model" --say "Tell me a story" --overlay --out docs/screenshots/overlay.png
  echo "wrote docs/screenshots/overlay.png"
else
  echo "no $model: docs/screenshots/chat.png and overlay.png not regenerated" >&2
fi
# The voice: its settings with the test voice loaded (scripts/fetch-voice.sh) on a private
# PulseAudio server with a null sink, then a catalogue voice downloading from the slow server.
voice=$HOME/.cache/desktop-mate/models/voices/en_US-joe-medium.onnx
if [[ -f $voice ]] && command -v pulseaudio >/dev/null; then
  mkdir -p "$tmp/run"
  pulseaudio -n --daemonize=no --exit-idle-time=-1 --use-pid-file=no \
    -L "module-null-sink sink_name=mascot rate=22050 channels=1" \
    -L "module-native-protocol-unix socket=$tmp/run/native auth-anonymous=1" >/dev/null 2>&1 &
  pulse=$!
  export XDG_RUNTIME_DIR=$tmp/run PULSE_SERVER=unix:$tmp/run/native DESKTOP_MATE_VOICES=$tmp/voices
  for _ in $(seq 50); do pactl set-default-sink mascot 2>/dev/null && break; sleep 0.2; done
  # Prepared into the voices folder under its catalogue id, as `voice pull` would.
  HOME="$tmp" "$bin" say "Hello." --voice "$voice" --out "$tmp/hello.wav"
  sed 's/^        enabled: false,\( *\)\/\/ speak/        enabled: true, \1\/\/ speak/' config/mascot.ron >"$tmp/voice.ron"
  HOME="$tmp" xvfb-run -a -s "-screen 0 1280x1024x24" "$bin" snapshot --config "$tmp/voice.ron" \
    --size 440x520 --settings --no-chat --out docs/screenshots/voice.png
  sed 's/"en_US-joe-medium", \/\//"fr_FR-siwis-medium", \/\//' "$tmp/voice.ron" >"$tmp/voice-fr.ron"
  size=$(sed -n '/fr_FR-siwis-medium/,/model_bytes/s/.*model_bytes: \([0-9_]*\),.*/\1/p' src/voice/catalogue.rs | tr -d _)
  python3 scripts/dev/slow-file-server.py "$port" "$size" 8000000 &
  server=$!
  for _ in $(seq 50); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  DESKTOP_MATE_VOICE_BASE_URL="http://127.0.0.1:$port" HOME="$tmp" xvfb-run -a \
    -s "-screen 0 1280x1024x24" "$bin" snapshot --config "$tmp/voice-fr.ron" --size 440x520 \
    --settings --no-chat --download-voice fr_FR-siwis-medium --settle-frames 60 \
    --out docs/screenshots/voice-download.png
  kill "$server"
  echo "wrote docs/screenshots/voice.png, voice-download.png"
  # Listening: push-to-talk held while read speech (LibriVox, scripts/fetch-listen.sh) plays
  # into a second null sink whose monitor is the microphone; the capture shows the words so far.
  models=$HOME/.cache/desktop-mate/models
  story=../shared/models/stories260K.gguf
  speech=$models/speech-samples/librivox/sense_and_sensibility_01_austen_64kb-0890.wav
  if [[ -f $models/moonshine-tiny-en/.complete && -f $models/silero-vad.onnx && -f $story && -f $speech ]]; then
    pactl load-module module-null-sink sink_name=room rate=16000 channels=1 >/dev/null
    pactl set-default-source room.monitor
    cat >"$tmp/listen.ron" <<RON
(
    llm: (n_threads: 1, sampling: (temperature: 0.0, max_tokens: 48)),
    persona: (name: "Mate", system_prompt: "Once upon a time"),
    listen: (enabled: true, language: "en", recognizer: Some("$models/moonshine-tiny-en"),
             vad: Some("$models/silero-vad.onnx")),
)
RON
    rm -rf "$tmp/.local"
    (while true; do paplay --device=room "$speech"; sleep 0.5; done) &
    speaking=$!
    HOME="$tmp" xvfb-run -a -s "-screen 0 1280x1024x24" "$bin" snapshot --config "$tmp/listen.ron" \
      --size 400x600 --model "$story" --say "Tell me a story" --hold-to-talk --settle-frames 2 \
      --out docs/screenshots/listening.png
    pkill -P "$speaking" paplay || true
    kill "$speaking"
    echo "wrote docs/screenshots/listening.png"
  else
    echo "no Moonshine tiny, Silero VAD, $story or $speech: docs/screenshots/listening.png not regenerated" >&2
  fi
  kill "$pulse"
else
  echo "no $voice or no pulseaudio: docs/screenshots/voice*.png not regenerated" >&2
fi

# The mascot on a composited X desktop (xcompmgr/picom over a patterned wallpaper): the
# pattern through the transparent pixels, the avatar and the panel over it (pixels checked).
scripts/dev/compositor-screenshot.sh docs/screenshots/desktop-x11.png "$bin"
echo "wrote docs/screenshots/desktop-x11.png"

# The mascot natively on Wayland (weston's headless backend, no XWayland): the test that
# checks its see-through pixels and its input region saves the screenshot it checked.
DESKTOP_MATE_WAYLAND_SHOT="$PWD/docs/screenshots/desktop-wayland.png" cargo test --locked --test it -- \
  --exact wayland::on_wayland_without_xwayland_the_mascot_is_transparent_and_lets_clicks_through_its_empty_pixels
echo "wrote docs/screenshots/desktop-wayland.png"
