#!/usr/bin/env bash
# demo.sh runs hookrelay end to end on the local PostgreSQL and NATS:
# a signature-checking receiver, one consumer, three endpoints, and the
# 5,000 events of testdata/message-events.ndjson. It resets its own
# database (hookrelay_demo) and streams (prefix "demo") first, so it can run
# again and again, and stops what it started when it ends.
#
# Settings: DEMO_NATS_URL (default nats://127.0.0.1:4222),
# DEMO_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/hookrelay_demo),
# DEMO_FILE (default testdata/message-events.ndjson), DEMO_TIMEOUT (seconds
# to wait for deliveries to settle, default 120).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=$ROOT/.demo
NATS_URL=${DEMO_NATS_URL:-nats://127.0.0.1:4222}
DATABASE_URL=${DEMO_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/hookrelay_demo?sslmode=disable}
FILE=${DEMO_FILE:-testdata/message-events.ndjson}
TIMEOUT=${DEMO_TIMEOUT:-120}
PREFIX=demo

for tool in go curl jq awk base64 head; do
	command -v "$tool" >/dev/null || { echo "demo: $tool is required" >&2; exit 1; }
done

# since START END: seconds between two `date +%s.%N` values.
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '\n== %s  [%(%T)T]\n' "$*" -1; }
die() { echo "demo: $*" >&2; exit 1; }

pids=()
cleanup() {
	local code=$?
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$STATE"
rm -f "$STATE"/*.log

say "build"
go build -o bin/ ./cmd/consumer ./cmd/publisher ./cmd/receiver
go build -o "$STATE/democtl" ./scripts/democtl
echo "bin/consumer bin/publisher bin/receiver"

started=$(date +%s.%N)

say "reset database and streams of the demo"
"$STATE/democtl" reset --nats-url "$NATS_URL" --database-url "$DATABASE_URL" --prefix "$PREFIX"

# Each endpoint gets its own Standard Webhooks secret: whsec_ and the base64
# of 32 random bytes. The receiver accepts a signature made with any of them.
secret() { printf 'whsec_%s' "$(head -c 32 /dev/urandom | base64 -w0)"; }
secret_all=$(secret)
secret_solapi=$(secret)
secret_failed=$(secret)
token=$(head -c 24 /dev/urandom | base64 -w0 | tr '+/' '-_')

say "start receiver"
bin/receiver -addr 127.0.0.1:0 -secret "$secret_all,$secret_solapi,$secret_failed" \
	>"$STATE/receiver.log" 2>&1 &
pids+=($!)
receiver=""
for _ in $(seq 100); do
	receiver=$(sed -n 's/^listening on \(http:\/\/[0-9.:]*\)$/\1/p' "$STATE/receiver.log")
	[[ -n $receiver ]] && break
	kill -0 "${pids[-1]}" 2>/dev/null || die "receiver exited: $(cat "$STATE/receiver.log")"
	sleep 0.1
done
[[ -n $receiver ]] || die "receiver did not start: $(cat "$STATE/receiver.log")"
echo "receiver on $receiver (log .demo/receiver.log)"

say "start consumer"
port=$("$STATE/democtl" freeport)
api="http://127.0.0.1:$port"
# A clean environment: settings of the shell (DATABASE_URL, HOOKRELAY_*) must
# not point the demo at another database or change its behaviour.
env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
	NATS_URL="$NATS_URL" DATABASE_URL="$DATABASE_URL" HOOKRELAY_PREFIX="$PREFIX" \
	HOOKRELAY_HTTP_ADDR="127.0.0.1:$port" HOOKRELAY_API_TOKEN="$token" \
	HOOKRELAY_ALLOW_CIDRS=127.0.0.0/8 \
	bin/consumer >"$STATE/consumer.log" 2>&1 &
pids+=($!)
consumer_pid=${pids[-1]}
for _ in $(seq 300); do
	curl -fs "$api/readyz" >/dev/null 2>&1 && break
	kill -0 "$consumer_pid" 2>/dev/null || die "consumer exited: $(tail -20 "$STATE/consumer.log")"
	sleep 0.1
done
curl -fs "$api/readyz" >/dev/null || die "consumer not ready: $(tail -20 "$STATE/consumer.log")"
echo "consumer on $api (log .demo/consumer.log)"

# call METHOD PATH [BODY]: the admin API with the bearer token.
call() {
	local args=(-sS -X "$1" -H "Authorization: Bearer $token" "$api$2")
	if [[ $# -ge 3 ]]; then
		args+=(-H 'Content-Type: application/json' --data-binary "$3")
	fi
	curl "${args[@]}"
}

# endpoint PATH SECRET DESCRIPTION EVENT_TYPES_JSON FILTERS_JSON: create one
# and print its id.
endpoint() {
	local body
	body=$(jq -nc --arg url "$receiver$1" --arg secret "$2" --arg desc "$3" \
		--argjson types "$4" --argjson filters "$5" \
		'{url: $url, secret: $secret, description: $desc, event_types: $types, filters: $filters}')
	local out
	out=$(call POST /v1/endpoints "$body")
	jq -er .id <<<"$out" 2>/dev/null || die "create endpoint $1: $out"
}

say "register endpoints"
ep_all=$(endpoint /all "$secret_all" "every event" '["*"]' '{}')
ep_solapi=$(endpoint /solapi "$secret_solapi" "message events of solapi" \
	'["message.*"]' '{"provider_id":["solapi"]}')
ep_failed=$(endpoint /failed "$secret_failed" "failed SMS" \
	'["message.failed"]' '{"channel_id":["ch_sms"]}')
call GET '/v1/endpoints?limit=10' |
	jq -r '.data | reverse[] | "\(.id)  \(.url)  event_types=\(.event_types|join(","))  filters=\(.filters|with_entries(select(.value|length>0))|tojson)"'

# What each endpoint should get, counted from the file itself.
want_all=$(jq -s 'map(.id) | unique | length' "$FILE")
want_solapi=$(jq -s 'map(select((.type|startswith("message.")) and .metadata.providerId == "solapi")) | map(.id) | unique | length' "$FILE")
want_failed=$(jq -s 'map(select(.type == "message.failed" and .metadata.channelId == "ch_sms")) | map(.id) | unique | length' "$FILE")

say "publish $FILE"
published=$(date +%s.%N)
env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
	bin/publisher send --file "$FILE" --nats-url "$NATS_URL" --prefix "$PREFIX"

say "wait for deliveries to settle (at most ${TIMEOUT}s)"
stats() { curl -fsS "$receiver/stats"; }
unique() { jq -r --arg p "$2" '.paths[$p].unique // 0' <<<"$1"; }
settled=""
deadline=$(($(date +%s) + TIMEOUT))
while (($(date +%s) < deadline)); do
	s=$(stats)
	if (($(unique "$s" /all) >= want_all && $(unique "$s" /solapi) >= want_solapi &&
		$(unique "$s" /failed) >= want_failed)); then
		pending=$(call GET '/v1/deliveries?status=pending&limit=1' | jq '.data | length')
		if [[ $pending == 0 ]]; then
			settled=$(date +%s.%N)
			break
		fi
	fi
	sleep 0.2
done
if [[ -n $settled ]]; then
	printf 'settled %ss after the publish started\n' "$(since "$published" "$settled")"
else
	echo "not settled within ${TIMEOUT}s: the counts below are what arrived"
fi

# count ENDPOINT_ID STATUS: deliveries in the history, counted page by page.
count() {
	local n=0 cursor="" page
	while :; do
		page=$(call GET "/v1/deliveries?endpoint_id=$1&status=$2&limit=500${cursor:+&cursor=$cursor}")
		n=$((n + $(jq '.data | length' <<<"$page")))
		cursor=$(jq -r '.next_cursor // empty' <<<"$page")
		[[ -n $cursor ]] || break
	done
	echo "$n"
}

say "summary"
s=$(stats)
printf '%-8s %-34s %-36s %8s | %8s %6s %10s %8s | %9s %6s %7s\n' \
	path endpoint subscription expected received unique duplicates bad_sig \
	succeeded failed pending
ok=1
row() { # PATH EP SUBSCRIPTION WANT
	local p
	p=$(jq -c --arg p "$1" '.paths[$p] // {requests:0,unique:0,duplicates:0,bad_signatures:0}' <<<"$s")
	local req uni dup bad succ fail pend
	req=$(jq .requests <<<"$p") uni=$(jq .unique <<<"$p")
	dup=$(jq .duplicates <<<"$p") bad=$(jq .bad_signatures <<<"$p")
	succ=$(count "$2" succeeded) fail=$(count "$2" failed) pend=$(count "$2" pending)
	printf '%-8s %-34s %-36s %8s | %8s %6s %10s %8s | %9s %6s %7s\n' \
		"$1" "$2" "$3" "$4" "$req" "$uni" "$dup" "$bad" "$succ" "$fail" "$pend"
	[[ $uni == "$4" && $bad == 0 && $succ == "$4" ]] || ok=0
}
row /all "$ep_all" '* (all events)' "$want_all"
row /solapi "$ep_solapi" 'message.* where provider_id=solapi' "$want_solapi"
row /failed "$ep_failed" 'message.failed where channel_id=ch_sms' "$want_failed"
echo "expected: events in the file that match; received: POSTs the receiver got;"
echo "unique: distinct webhook-id values; succeeded/failed/pending: GET /v1/deliveries"
rejected=$(call GET '/v1/rejected?limit=500' | jq '.data | length')
echo "messages the consumer rejected (GET /v1/rejected): $rejected"

say "a sample delivery with its attempts (GET /v1/deliveries/{id})"
sample=$(call GET "/v1/deliveries?endpoint_id=$ep_failed&limit=1" | jq -r '.data[0].id // empty')
if [[ -n $sample ]]; then
	call GET "/v1/deliveries/$sample" | jq .
fi

elapsed=$(since "$started" "$(date +%s.%N)")
dbname=${DATABASE_URL##*/}
dbname=${dbname%%\?*}
if ((ok)); then
	printf '\ndemo OK in %ss (after the build). The history stays in database %s until the next run.\n' \
		"$elapsed" "$dbname"
else
	printf '\ndemo FAILED: counts differ from what was expected; see .demo/consumer.log\n' >&2
	exit 1
fi
