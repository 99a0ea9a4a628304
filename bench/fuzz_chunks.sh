#!/bin/sh
# The 100,000-case mass fuzz in chunks (issue 12 "Goal"), so an interruption loses one chunk
# only: chunk k runs cases k*SIZE .. (k+1)*SIZE-1 of bench/fuzz_mass.py and writes
# OUT/chunk-k.json (summary), OUT/chunk-k.jsonl (notable cases) and OUT/cases/ (their mails).
# A chunk whose summary says it finished is skipped, so running this again resumes.
#
# Each chunk runs a snapshot of the branch's last commit (OUT/code/<commit>), so a fix
# committed while the run goes on applies from the next chunk on, and every chunk's summary
# names the commit it ran ("code"). Sum the chunks afterwards:
#
#   .venv/bin/python bench/fuzz_mass.py --merge OUT/chunk-*.json --out OUT/merged.json
#
#   nohup sh bench/fuzz_chunks.sh /work/fuzz-out /work/shared/corpora > /work/fuzz-out/driver.log 2>&1 &
set -u
OUT=${1:?output directory}
CORPORA=${2:-}
CHUNKS=${CHUNKS:-10}
FIRST=${FIRST:-0}  # the first chunk to run (FIRST=6 resumes a run whose chunks 0-5 are elsewhere)
SIZE=${SIZE:-10000}
JOBS=${JOBS:-2}
NICE=${NICE:-15}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=$REPO/.venv/bin/python
mkdir -p "$OUT/code" "$OUT/cases"
echo "driver pid $$ started $(date -Is)"
k=$FIRST
while [ "$k" -lt "$CHUNKS" ]; do
    start=$((k * SIZE))
    json=$OUT/chunk-$k.json
    if [ -f "$json" ] && "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["cases"] != d["requested"])' "$json"; then
        echo "chunk $k: done already"
        k=$((k + 1))
        continue
    fi
    sha=$(git -C "$REPO" rev-parse --short HEAD)
    code=$OUT/code/$sha
    if [ ! -d "$code" ]; then
        mkdir -p "$code.tmp"
        git -C "$REPO" archive HEAD | tar -x -C "$code.tmp"
        echo "$sha" > "$code.tmp/CODE_VERSION"
        mv "$code.tmp" "$code"
    fi
    rm -f "$OUT/chunk-$k.jsonl" "$json"
    echo "chunk $k: cases $start..$((start + SIZE - 1)), code $sha, started $(date -Is), load $(cut -d' ' -f1-3 /proc/loadavg)"
    PYTHONPATH=$code nice -n "$NICE" "$PY" "$code/bench/fuzz_mass.py" --start "$start" --count "$SIZE" \
        --jobs "$JOBS" --nice "$NICE" ${CORPORA:+--corpora "$CORPORA"} \
        --out "$json" --cases-out "$OUT/chunk-$k.jsonl" --save "$OUT/cases" > "$OUT/chunk-$k.txt" 2>&1
    echo "chunk $k: exit $?, ended $(date -Is), load $(cut -d' ' -f1-3 /proc/loadavg)"
    k=$((k + 1))
done
echo "driver done $(date -Is)"
