# Sourced by the measure-*.sh scripts: CPU use of the real mascot under Xvfb.
#
# cpu_of_run SECONDS WARMUP CONFIG [RUN ARGS...]
# Starts `desktop-mate run --config CONFIG [RUN ARGS...]` (HOME=$tmp), waits WARMUP seconds
# (window, pipelines, avatar), then prints the process CPU use over SECONDS as a percentage of
# one core (utime + stime from /proc) and stops it. Needs $bin and $tmp.
cpu_of_run() {
  local seconds=$1 warmup=$2 config=$3
  shift 3
  HOME="$tmp" xvfb-run -a -s "-screen 0 1280x1024x24" "$bin" run --config "$config" "$@" \
    >/dev/null 2>"$tmp/log" &
  sleep "$warmup"
  local pid before after
  pid=$(pgrep -n -f "desktop-mate run --config $config")
  read -r -a before <"/proc/$pid/stat"
  sleep "$seconds"
  read -r -a after <"/proc/$pid/stat"
  kill "$pid"
  wait || true
  awk -v c="$((after[13] + after[14] - before[13] - before[14]))" -v t="$(getconf CLK_TCK)" \
    -v s="$seconds" 'BEGIN { printf "%.1f", 100 * c / t / s }'
}
