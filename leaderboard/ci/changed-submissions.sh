#!/usr/bin/env bash
# The submission folders a change adds or modifies, one per line (none: prints nothing).
# Usage: changed-submissions.sh BASE_REF [HEAD_REF] [SUBMISSIONS_DIR]
set -euo pipefail
base=$1
head=${2:-HEAD}
root=${3:-leaderboard/submissions}
depth=$(awk -F/ '{print NF}' <<<"${root%/}")
git diff --name-only --diff-filter=AMR "$base" "$head" -- "$root" \
  | awk -F/ -v keep="$((depth + 1))" 'NF > keep { out = $1; for (i = 2; i <= keep; i++) out = out "/" $i; print out }' \
  | sort -u \
  | while read -r dir; do
      if [ -d "$dir" ]; then echo "$dir"; fi
    done
