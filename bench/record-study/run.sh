#!/usr/bin/env bash
# Design study: what one packed record per recipient (record.lua) would cost Redis, against the
# scripts verifyd ran before its records (commit 7c256b8), measured the same way in interleaved
# rounds on a private, warm redis-server with redis-benchmark. Prints figures; asserts nothing. See README.md here.
#
#   bash bench/record-study/run.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS="${1:-3}"
CALLS=200000
for tool in redis-server redis-cli redis-benchmark node git; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no --loglevel warning >/dev/null 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
R() { redis-cli -p "$PORT" "$@"; }
for _ in $(seq 50); do R ping >/dev/null 2>&1 && break; sleep 0.1; done

LUA=../../src/store/lua
# "before": the scripts verifyd ran before it kept a recipient's state as one record, read from
# the repository's history (commit 7c256b8), so this needs a git clone. verifyd's own scripts now
# take the record prelude and the same recipient id in several keys, which redis-benchmark cannot
# repeat; `npm run bench` measures them.
BEFORE=7c256b8
BEFORE_SEND=$(R script load "$(git show "$BEFORE:src/store/lua/admit.lua")")
BEFORE_CHECK=$(R script load "$(git show "$BEFORE:src/store/lua/attempt.lua")")
RECORD_SEND=$(R script load "$(cat record.lua store-key.lua send.lua)")
RECORD_CHECK=$(R script load "$(cat record.lua store-key.lua attempt.lua)")
BUCKET_SEND=$(R script load "$(cat record.lua store-bucket.lua send.lua)")
BUCKET_CHECK=$(R script load "$(cat record.lua store-bucket.lua attempt.lua)")
SWEEP=$(R script load "$(cat record.lua sweep.lua)")
PER_IP=$(R script load "$(cat "$LUA/window-increment.lua")")
NOW=$(date +%s)

# Key names shaped as verifyd builds them (default KEY_PREFIX, 22-character recipient ids); redis-
# benchmark draws each __rand_int__ of a command on its own (12 digits, below the -r range).
ID='AAAAAAAAAA__rand_int__'
BEFORE_SEND_ARGS=(6 "verifyd:limit:cooldown:sms:{$ID}" "verifyd:limit:send:sms:{$ID}"
  'verifyd:limit:ip-targets:{127.0.0.1}' 'verifyd:limit:sms-budget'
  "verifyd:limit:ip-target:{127.0.0.1}:$ID" "verifyd:code:signup:{$ID}"
  1 3 1700000000000 30 1 HHHHHHHHHHHHHHHHHHHHHH 600 4 BBBBBBBBBBBBBBBBBBBBBB '' 5
  600 5 0 0 3600 1000000000 1 3600 3600 1000000000 0 0)
RECORD_SEND_ARGS=(3 "verifyd:recipient:sms:{$ID}" 'verifyd:limit:ip-targets:{127.0.0.1}'
  'verifyd:limit:sms-budget' "$NOW" 30 600 100000 TAG1 BINDING8 HASHHASH10 600 3600 1000000000
  3600 1000000000)
BEFORE_CHECK_ARGS=(3 "verifyd:code:signup:{$ID}" "verifyd:limit:fail:{$ID}"
  "verifyd:limit:fail-day:{$ID}" wrongwrongwrongwrongwr 1000000000 '' 2 3600 1000000000 86400
  1000000000)
RECORD_CHECK_ARGS=(1 "verifyd:recipient:sms:{$ID}" "$NOW" WRONGWRONG 200 3600 1000000000
  1000000000)
# The bucket layout: the same arguments, with the bucket as the record's key and the recipient's
# field last. Sends spread over 4,096 buckets (fields of 28 characters, three draws, so that a
# send almost never meets an earlier record); checks go to 100 buckets of 100 records each.
BUCKET_SEND_ARGS=(3 'verifyd:recipient:sms:{__rand_int__}' "${RECORD_SEND_ARGS[@]:2:2}"
  "${RECORD_SEND_ARGS[@]:4}" 'AAAA__rand_int____rand_int__')
BUCKET_CHECK_ARGS=(1 'verifyd:recipient:sms:{__rand_int__}' "${RECORD_CHECK_ARGS[@]:2}"
  '__rand_int__')

# Microseconds per call of EVALSHA (commandstats), for CALLS calls at 4 connections.
per_call() {
  local range=$1; shift
  R config resetstat >/dev/null
  redis-benchmark -p "$PORT" -n "$CALLS" -r "$range" -c 4 -q "$@" >/dev/null 2>&1
  R info commandstats | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p'
}
# Sends to new numbers: the random range is far larger than the calls.
send_before() { R flushall >/dev/null; per_call 1000000000 evalsha "$BEFORE_SEND" "${BEFORE_SEND_ARGS[@]}"; }
send_record() { R flushall >/dev/null; per_call 1000000000 evalsha "$RECORD_SEND" "${RECORD_SEND_ARGS[@]}"; }
# Wrong codes at 100,000 recipients that hold a code (each checked about twice: the first wrong
# code opens the failure windows, the second counts in them).
check_before() {
  R flushall >/dev/null
  redis-benchmark -p "$PORT" -n 400000 -r 100000 -c 4 -q hset "verifyd:code:signup:{$ID}" \
    b BBBBBBBBBBBBBBBBBBBBBB i 1 h1 HHHHHHHHHHHHHHHHHHHHHH >/dev/null 2>&1
  per_call 100000 evalsha "$BEFORE_CHECK" "${BEFORE_CHECK_ARGS[@]}"
}
check_record() {
  R flushall >/dev/null
  redis-benchmark -p "$PORT" -n 400000 -r 100000 -c 4 -q evalsha "$RECORD_SEND" \
    "${RECORD_SEND_ARGS[@]}" >/dev/null 2>&1
  per_call 100000 evalsha "$RECORD_CHECK" "${RECORD_CHECK_ARGS[@]}"
}
send_bucket() { R flushall >/dev/null; per_call 4096 evalsha "$BUCKET_SEND" "${BUCKET_SEND_ARGS[@]}"; }
# Wrong codes at 10,000 records in 100 buckets, each checked about 20 times (the first opens the
# failure windows). Then one sweep of every bucket, per record looked at (none has ended).
check_bucket() {
  R flushall >/dev/null
  redis-benchmark -p "$PORT" -n 400000 -r 100 -c 4 -q evalsha "$BUCKET_SEND" 3 \
    'verifyd:recipient:sms:{__rand_int__}' "${RECORD_SEND_ARGS[@]:2:2}" "${RECORD_SEND_ARGS[@]:4}" \
    '__rand_int__' >/dev/null 2>&1
  per_call 100 evalsha "$BUCKET_CHECK" "${BUCKET_CHECK_ARGS[@]}"
}
sweep_per_record() {
  R config resetstat >/dev/null
  local looked=0 bucket reply
  while read -r bucket; do
    reply=$(R evalsha "$SWEEP" 1 "$bucket" "$NOW" | head -1)
    looked=$((looked + reply))
  done < <(R --scan --pattern 'verifyd:recipient:sms:*')
  local usec
  usec=$(R info commandstats | sed -n 's/^cmdstat_evalsha:calls=[0-9]*,usec=\([0-9]*\).*/\1/p')
  node -e "console.log((${usec} / ${looked}).toFixed(2))"
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

# The same for the bucket layout, from Node: real ids (22 base64url characters, the first 2 naming
# one of 4,096 buckets, the other 20 the field), so that fields are as long as verifyd's would be.
bytes_per_send_bucket() {
  R flushall >/dev/null
  node -e "
    const { createClient } = require('redis');
    const { randomBytes } = require('node:crypto');
    const [port, sha, sends, ...args] = process.argv.slice(1);
    (async () => {
      const redis = createClient({ url: 'redis://127.0.0.1:' + port });
      await redis.connect();
      const used = async () => Number(/used_memory:(\\d+)/.exec(await redis.info('memory'))[1]);
      const before = await used();
      for (let done = 0; done < Number(sends); done += 500) {
        await Promise.all(Array.from({ length: 500 }, () => {
          const id = randomBytes(17).toString('base64url').slice(0, 22);
          const bucket = 'verifyd:recipient:sms:{' + id.slice(0, 2) + '}';
          return redis.sendCommand(['EVALSHA', sha, '3', bucket, ...args, id.slice(2)]);
        }));
      }
      console.log(Math.round(((await used()) - before) / Number(sends)));
      await redis.close();
    })();
  " "$PORT" "$BUCKET_SEND" "$1" "${RECORD_SEND_ARGS[@]:2:2}" "${RECORD_SEND_ARGS[@]:4}"
}

echo "record study: redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), $CALLS calls per figure, 4 connections, $ROUNDS interleaved rounds"
echo
echo '| round | send µs: before, record, bucket | wrong code µs: before, record, bucket | sweep µs per record | bytes per send: before, record, bucket (20,000; 200,000 sends) |'
echo '|---|---|---|---|---|'
for round in $(seq "$ROUNDS"); do
  a=$(send_before); b=$(send_record); g=$(send_bucket)
  c=$(check_before); d=$(check_record); h=$(check_bucket); i=$(sweep_per_record)
  e=$(bytes_per_send evalsha "$BEFORE_SEND" "${BEFORE_SEND_ARGS[@]}")
  f=$(bytes_per_send evalsha "$RECORD_SEND" "${RECORD_SEND_ARGS[@]}")
  j=$(bytes_per_send_bucket 20000); k=$(bytes_per_send_bucket 200000)
  echo "| $round | $a, $b, $g | $c, $d, $h | $i | $e, $f, $j; $k |"
done
R flushall >/dev/null
echo
echo "The per-IP limit every request pays first (window-increment.lua on a live counter): $(per_call 1 evalsha "$PER_IP" 1 'verifyd:rl:ip:{127.0.0.1}' 60) µs."
echo
echo "(µs: INFO commandstats usec_per_call of EVALSHA, which includes the commands a script runs. Sweep: one sweep.lua call per bucket over 10,000 live records in 100 buckets, EVALSHA time per record looked at. Bytes: used_memory growth over 20,000 sends to new numbers on an emptied server, per send, with every key a send leaves behind; the bucket layout's also after 200,000, since what a record costs there depends on how full the buckets are.)"
