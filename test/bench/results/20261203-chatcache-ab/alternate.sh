#!/bin/bash
# Run twice: with "for v in base mem" (sb-mem: the chat cache and the readers' page cache cut) and "for v in base cc" (sb-cc: the chat cache only), the outputs then named mem-* and cc-*.
# Alternates two gateway binaries at 100,000 Telegram chats, sampling the
# gateway's anonymous and file-backed RSS every second.
cd /work/main
for i in 1 2; do
  for v in base cc; do
    echo "== $v run $i $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    ( maxa=0; maxf=0; while sleep 1; do pid=$(pgrep -f "^/tmp/sb-$v serve" | head -1); [ -z "$pid" ] && { [ -f /tmp/ab/cc-$v-$i.stop ] && break; continue; }; a=$(awk '/^Anonymous:/{print $2}' /proc/$pid/smaps_rollup 2>/dev/null); f=$(awk '/^Pss_File:/{print $2}' /proc/$pid/smaps_rollup 2>/dev/null); [ -n "$a" ] && [ "$a" -gt "$maxa" ] && maxa=$a; [ -n "$f" ] && [ "$f" -gt "$maxf" ] && maxf=$f; echo "$maxa $maxf" > /tmp/ab/cc-$v-$i.smaps; done ) &
    poller=$!
    go run ./test/bench -skip-pg -drivers telegram -chats 100000 -targets gateway -rates 500 -gateway-bin /tmp/sb-$v -out /tmp/ab/cc-$v-$i > /tmp/ab/cc-$v-$i.log 2>&1
    echo "rc=$?"
    touch /tmp/ab/cc-$v-$i.stop; sleep 2; kill $poller 2>/dev/null
    echo "max anonymous, file KiB: $(cat /tmp/ab/cc-$v-$i.smaps)"
  done
done
echo done $(date +%T)
