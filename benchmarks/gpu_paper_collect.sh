#!/usr/bin/env bash
# After a `gpu_session.sh paper` device call: FILES_AT is the folder its $OUT came back to.
# Puts the run state where the next call carries it from (.data/paper-state), and when the
# call finished every run, unpacks its reports (cifar-table, degradation, responses, and the
# summary page of every claim) into docs/results/gpu-b1 (RESULTS.md, figures, CSV; the runs' machine is named in each).
set -euo pipefail
src=${1:?usage: $0 FILES_AT [RESULTS_DIR]}
dest=${2:-docs/results/gpu-b1}
state=${STATE:-.data/paper-state}
ls "$src"/paper-state.tgz.part* >/dev/null  # fails loudly when the call returned no state
rm -rf "$state.new" && mkdir -p "$state.new"
cp "$src"/paper-state.tgz.part* "$state.new/"
cat "$state.new"/paper-state.tgz.part* | tar tzf - >/dev/null  # the parts are whole
rm -rf "$state" && mv "$state.new" "$state"
echo "state for the next call: $(du -sh "$state" | cut -f1) in $state"
if [ -f "$src/paper-reports.tgz" ]; then
  tmp=$(mktemp -d)
  tar xzf "$src/paper-reports.tgz" -C "$tmp"
  mkdir -p "$dest"
  for r in cifar-table degradation responses; do
    rm -rf "${dest:?}/$r" && cp -r "$tmp/reports/$r" "$dest/$r" && rm -rf "$dest/$r/runs"
  done
  cp "$tmp/reports/RESULTS.md" "$dest/RESULTS.md"  # every claim on one page, linking the three
  rm -rf "$tmp"
  echo "reports: $dest/RESULTS.md and $dest/{cifar-table,degradation,responses}/RESULTS.md"
else
  echo "not every run has finished yet: run the device call again"
fi
