#!/usr/bin/env bash
# bench/large-corpus.sh OUTDIR — the bigger real corpus: the 957 tarballs of the dependency
# closure of bench/large-corpus/root.json (jest, webpack, eslint, babel, typescript, express,
# react, nest, mongoose, …), in the shared harness's corpus dir format, so that its load.mjs,
# nginx/snapshot.mjs and install.sh take it as they take the small corpus.
#
# Runs the shared corpus.sh (which packs every listed name@version with one `npm pack` from
# the npm registry and checks each tarball against the checked-in sums) on a copy of itself
# next to this corpus's list, sums and root project. Then, for the install benchmark:
#   B/install.sh URL OUTDIR/root-package.json
# Needs: node, npm reaching the npm registry, and the shared harness (SHARED=…/shared/bench).
# Env: SHARED=../shared/bench UPDATE_SUMS=1 (rewrite corpus.sums after editing corpus.list)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: large-corpus.sh OUTDIR}"
shared="$(cd "${SHARED:-$here/../../shared/bench}" && pwd)"
own="$here/large-corpus"
harness="$(mktemp -d /tmp/large-corpus-harness.XXXXXX)"
trap 'rm -rf "$harness"' EXIT
cp "$shared/corpus.sh" "$harness/corpus.sh"
cp "$own/corpus.list" "$harness/corpus.list"
cp "$own/root.json" "$harness/corpus.root.json"
[[ -f "$own/corpus.sums" ]] && cp "$own/corpus.sums" "$harness/corpus.sums"
"$harness/corpus.sh" "$out"
if [[ "${UPDATE_SUMS:-0}" == 1 || ! -f "$own/corpus.sums" ]]; then
  cp "$harness/corpus.sums" "$own/corpus.sums"
fi
