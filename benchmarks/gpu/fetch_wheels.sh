#!/usr/bin/env bash
# Download, into .whl/, the wheels that the lent GPU machine's image lacks for `import multiviz`
# and its training (CPython 3.12, x86-64, no network there). Run from the repo root:
#     bash benchmarks/gpu/fetch_wheels.sh
# Versions are those of the known-good dev venv (.venv, `pip freeze`). The set is the recursive
# Requires-Dist closure of pyproject's runtime dependencies (scanpy[skmisc] via scvi-tools included)
# minus what the GPU image already has. Optional extras (grakel,
# captum) are not fetched. Set NO_PANDAS=1 to leave out pandas 2.3.3 (+ pytz, tzdata): it is
# carried only because anndata 0.12 caps pandas<3 and the image's pandas is probably 3.x.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

WHEELS=(
  anndata==0.12.19
  array-api-compat==1.16.0
  donfig==0.8.1.post1
  google-crc32c==1.9.0
  legacy-api-wrap==1.5
  ml-collections==1.1.0
  mudata==0.3.10
  natsort==8.4.0
  numcodecs==0.16.6
  openTSNE==1.0.4
  pynndescent==0.7.0
  pyro-api==0.1.2
  pyro-ppl==1.9.2
  scanpy==1.11.5
  scikit-misc==0.5.3
  scverse-misc==0.0.3
  scvi-tools==1.4.2
  session-info2==0.4.1
  sparse==0.19.3
  umap-learn==0.5.12
  zarr==3.1.6
)
# on PyPI only as an sdist (pure Python): built into a py3-none-any wheel here
SDIST_PURE=(docrep==0.3.2)
if [ "${NO_PANDAS:-0}" != 1 ]; then
  WHEELS+=(pandas==2.3.3 pytz==2026.6 tzdata==2026.6)
fi

# keep the wheels out of git
mkdir -p .git/info
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude

PY=python3
"$PY" -m pip --version >/dev/null 2>&1 || PY=.venv/bin/python

plat=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux1_x86_64; do
  plat+=(--platform "$p")
done

# start clean so that no stale second version of a package stops the install there
rm -rf .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${plat[@]}" -d .whl "${WHEELS[@]}"
"$PY" -m pip wheel -q --no-deps --no-binary=:all: -w .whl "${SDIST_PURE[@]}"
for f in .whl/*.whl; do  # the sdist builds must give pure wheels, nothing bound to this machine
  case "$f" in *-none-any.whl|*-cp312-*) ;; *) echo "ERROR: unexpected tag: $f" >&2; exit 1;; esac
done

n_want=$(( ${#WHEELS[@]} + ${#SDIST_PURE[@]} ))
n_got=$(ls .whl/*.whl | wc -l)
echo "wheels: $n_got of $n_want"
[ "$n_got" -eq "$n_want" ] || { echo "ERROR: expected $n_want wheels" >&2; exit 1; }
ls -l .whl | awk 'NR>1 {printf "%10d  %s\n", $5, $9}'
whl_b=$(du -cb .whl/*.whl | tail -1 | cut -f1)
tracked_b=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | awk '/\ttotal$/ {s+=$1} END {print s}')
awk -v w="$whl_b" -v t="$tracked_b" 'BEGIN {
  printf "total .whl: %.1f MiB; tracked files: %.1f MiB; together: %.1f MiB (limit 64 MiB)\n",
         w/2^20, t/2^20, (w+t)/2^20 }'
[ "$whl_b" -lt $((60 * 1024 * 1024)) ] || { echo "ERROR: .whl is over 60 MiB" >&2; exit 1; }
