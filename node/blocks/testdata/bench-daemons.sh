#!/bin/sh
# Two shoal daemons on loopback: add a 256 MiB random file on A, fetch it on B.
set -e
S=${SHOAL:-shoal}
D=$(mktemp -d)
$S init --repo $D/a --network bench --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 >/dev/null
$S daemon --repo $D/a --log-level warn >$D/a.log 2>&1 & PA=$!
until $S --repo $D/a id --json >$D/a.id 2>/dev/null; do sleep 0.2; done
ADDR=$(python3 -c "import json;print(json.load(open('$D/a.id'))['addrs'][0])")
$S init --repo $D/b --network bench --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 --bootstrap $ADDR >/dev/null
$S daemon --repo $D/b --log-level warn >$D/b.log 2>&1 & PB=$!
until $S --repo $D/b id >/dev/null 2>&1; do sleep 0.2; done
head -c 268435456 /dev/urandom > $D/file
/usr/bin/time -f "add: %e s wall" $S --repo $D/a add -q $D/file > $D/cid
CID=$(cat $D/cid)
TOK=$(cat $D/b/api-token); API=$(cat $D/b/api)
grep VmHWM /proc/$PB/status | sed 's/^/B before: /'
curl -s -o /dev/null -H "Authorization: Bearer $TOK" -w "fetch: first byte %{time_starttransfer}s, total %{time_total}s, %{speed_download} B/s\n" http://$API/v1/cat/$CID
grep VmHWM /proc/$PB/status | sed 's/^/B after: /'
grep VmHWM /proc/$PA/status | sed 's/^/A after: /'
# second fetch of a small file: first byte on a warm connection
head -c 67108864 /dev/urandom > $D/file64
CID64=$($S --repo $D/a add -q $D/file64)
curl -s -o /dev/null -H "Authorization: Bearer $TOK" -w "fetch 64MiB: first byte %{time_starttransfer}s, total %{time_total}s, %{speed_download} B/s\n" http://$API/v1/cat/$CID64
kill $PA $PB; wait $PA $PB 2>/dev/null || true
rm -rf $D
