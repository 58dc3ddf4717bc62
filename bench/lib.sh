# Helpers the bench scripts share (sourced, not run). Callers set TMP and CARGO_TARGET_DIR.

# A free loopback port.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Writes a gateway config: gw_config FILE PORT STORE-DIR [DISPATCH-URL]. The quota is out of the
# way (every bench request comes from a new number anyway), the admin token is "bench",
# WORKERS sets server.workers (0, the default, is one per core) and COMMIT_INTERVAL, when set,
# storage.commit_interval, SECOND_OPINION=0 switches rules.second_opinion off. Callers may append
# sections.
gw_config() {
  cat > "$1" <<CFG
[server]
listen = "127.0.0.1:$2"
node_id = 1
workers = ${WORKERS:-0}
[storage]
path = "$3"
${COMMIT_INTERVAL:+commit_interval = \"$COMMIT_INTERVAL\"}
[dispatch]
url = "${4:-}"
[admin]
token = "bench"
[nuisance]
quota = 1000000
[rules]
second_opinion = $( [ "${SECOND_OPINION:-1}" = 0 ] && echo false || echo true )
CFG
}

# Starts dispatch-sim and a gateway of $BIN on free ports and waits until both answer: PS and PG
# are their ports, SIM and GW their pids. The relay delivers to dispatch-sim unless RELAY=0;
# SIM_NICE=N runs dispatch-sim N nice steps down. Callers set TMP and BIN.
start_gateway() {
  PS=$(port); PG=$(port)
  gw_config "$TMP/gw.toml" "$PG" "$TMP/data" "$( [ "${RELAY:-1}" = 1 ] && echo "http://127.0.0.1:$PS" )"
  nice -n "${SIM_NICE:-0}" "$BIN" dispatch-sim --listen 127.0.0.1:$PS --out "$TMP/sim.jsonl" >/dev/null 2>&1 &
  SIM=$!
  "$BIN" serve --config "$TMP/gw.toml" >"$TMP/gw.log" 2>&1 &
  GW=$!
  wait_up $PS $PG
}

# Waits until every given port answers HTTP (up to 10 s each).
wait_up() {
  for p in "$@"; do
    for _ in $(seq 100); do curl -s -o /dev/null "127.0.0.1:$p/" && break; sleep 0.1; done
  done
}

# Requests per second from a wrk report on stdin.
rps() { awk '/Requests\/sec/ {print $2}'; }

# CPU time the hypervisor has taken from this VM since boot (steal, all vCPUs), in ms. Under load
# the host throttles this VM on a 100 ms period: every thread, of any process, stops for up to
# ~25 ms at once (BENCHMARKS.md, 2026-12-02 second session). A phase that shows steal had its
# tail set by that, whatever server it measured.
steal_ms() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / {print int($9 * 1000 / hz)}' /proc/stat; }

# Runs a command and appends the steal during it to its one-line report.
with_steal() { local s0 out; s0=$(steal_ms); out=$("$@"); echo "$out; host steal $(( $(steal_ms) - s0 )) ms"; }
