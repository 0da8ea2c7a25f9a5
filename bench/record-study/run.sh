#!/usr/bin/env bash
# Design study: what one record per recipient (record.lua) would cost Redis, against the scripts
# verifyd runs today (src/store/lua), measured the same way in interleaved rounds on a private,
# warm redis-server with redis-benchmark. Prints figures; asserts nothing. See README.md here.
#
#   bash bench/record-study/run.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS="${1:-3}"
CALLS=200000
for tool in redis-server redis-cli redis-benchmark node; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no --loglevel warning >/dev/null 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
R() { redis-cli -p "$PORT" "$@"; }
for _ in $(seq 50); do R ping >/dev/null 2>&1 && break; sleep 0.1; done

LUA=../../src/store/lua
TODAY_SEND=$(R script load "$(cat "$LUA/admit.lua")")
TODAY_CHECK=$(R script load "$(cat "$LUA/attempt.lua")")
RECORD_SEND=$(R script load "$(cat record.lua send.lua)")
RECORD_CHECK=$(R script load "$(cat record.lua attempt.lua)")
PER_IP=$(R script load "$(cat "$LUA/window-increment.lua")")
NOW=$(date +%s)

# Key names shaped as verifyd builds them (default KEY_PREFIX, 22-character recipient ids); redis-
# benchmark puts the same 12 random digits in every __rand_int__ of one command.
ID='AAAAAAAAAA__rand_int__'
TODAY_SEND_ARGS=(6 "verifyd:limit:cooldown:sms:{$ID}" "verifyd:limit:send:sms:{$ID}"
  'verifyd:limit:ip-targets:{127.0.0.1}' 'verifyd:limit:sms-budget'
  "verifyd:limit:ip-target:{127.0.0.1}:$ID" "verifyd:code:signup:{$ID}"
  1 3 1700000000000 30 1 HHHHHHHHHHHHHHHHHHHHHH 600 4 BBBBBBBBBBBBBBBBBBBBBB '' 5
  600 5 0 0 3600 1000000000 1 3600 3600 1000000000 0 0)
RECORD_SEND_ARGS=(3 "verifyd:recipient:sms:{$ID}" 'verifyd:limit:ip-targets:{127.0.0.1}'
  'verifyd:limit:sms-budget' "$NOW" 30 600 100000 TAG1 BINDING8 HASHHASH10 600 3600 1000000000
  3600 1000000000)
TODAY_CHECK_ARGS=(3 "verifyd:code:signup:{$ID}" "verifyd:limit:fail:{$ID}"
  "verifyd:limit:fail-day:{$ID}" wrongwrongwrongwrongwr 1000000000 '' 2 3600 1000000000 86400
  1000000000)
RECORD_CHECK_ARGS=(1 "verifyd:recipient:sms:{$ID}" "$NOW" WRONGWRONG 200 3600 1000000000
  1000000000)

# Microseconds per call of EVALSHA (commandstats), for CALLS calls at 4 connections.
per_call() {
  local range=$1; shift
  R config resetstat >/dev/null
  redis-benchmark -p "$PORT" -n "$CALLS" -r "$range" -c 4 -q "$@" >/dev/null 2>&1
  R info commandstats | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p'
}
# Sends to new numbers: the random range is far larger than the calls.
send_today() { R flushall >/dev/null; per_call 1000000000 evalsha "$TODAY_SEND" "${TODAY_SEND_ARGS[@]}"; }
send_record() { R flushall >/dev/null; per_call 1000000000 evalsha "$RECORD_SEND" "${RECORD_SEND_ARGS[@]}"; }
# Wrong codes at 100,000 recipients that hold a code (each checked about twice: the first wrong
# code opens the failure windows, the second counts in them).
check_today() {
  R flushall >/dev/null
  redis-benchmark -p "$PORT" -n 400000 -r 100000 -c 4 -q hset "verifyd:code:signup:{$ID}" \
    b BBBBBBBBBBBBBBBBBBBBBB i 1 h1 HHHHHHHHHHHHHHHHHHHHHH >/dev/null 2>&1
  per_call 100000 evalsha "$TODAY_CHECK" "${TODAY_CHECK_ARGS[@]}"
}
check_record() {
  R flushall >/dev/null
  redis-benchmark -p "$PORT" -n 400000 -r 100000 -c 4 -q evalsha "$RECORD_SEND" \
    "${RECORD_SEND_ARGS[@]}" >/dev/null 2>&1
  per_call 100000 evalsha "$RECORD_CHECK" "${RECORD_CHECK_ARGS[@]}"
}
# used_memory growth per send to a new number, on an emptied server, over 20,000 sends.
bytes_per_send() {
  R flushall >/dev/null
  local before after
  before=$(R info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
  redis-benchmark -p "$PORT" -n 20000 -r 1000000000 -c 4 -q "$@" >/dev/null 2>&1
  after=$(R info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
  echo $(( (after - before) / 20000 ))
}

echo "record study: redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), $CALLS calls per figure, 4 connections, $ROUNDS interleaved rounds"
echo
echo '| round | send, today µs | send, record µs | wrong code, today µs | wrong code, record µs | bytes per send, today | bytes per send, record |'
echo '|---|---|---|---|---|---|---|'
for round in $(seq "$ROUNDS"); do
  a=$(send_today); b=$(send_record); c=$(check_today); d=$(check_record)
  e=$(bytes_per_send evalsha "$TODAY_SEND" "${TODAY_SEND_ARGS[@]}")
  f=$(bytes_per_send evalsha "$RECORD_SEND" "${RECORD_SEND_ARGS[@]}")
  echo "| $round | $a | $b | $c | $d | $e | $f |"
done
R flushall >/dev/null
echo
echo "The per-IP limit every request pays first (window-increment.lua on a live counter): $(per_call 1 evalsha "$PER_IP" 1 'verifyd:rl:ip:{127.0.0.1}' 60) µs."
echo
echo "(µs: INFO commandstats usec_per_call of EVALSHA, which includes the commands a script runs. Bytes: used_memory growth over 20,000 sends to new numbers on an emptied server, per send, with every key a send leaves behind.)"
