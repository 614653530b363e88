#!/usr/bin/env bash
# Print the pull-request comment of `segflow impact` for every pipeline file given, comparing the
# working tree with BASE (a git revision). Used by examples/ci/github-actions-impact.yml; runs the
# same anywhere: `examples/ci/segflow-impact.sh origin/main pipelines/*.yaml > comment.md`.
#
# Environment: SEGFLOW (the binary; default `segflow` on PATH), SEGFLOW_IMPACT_GATE (a share such
# as `5%`: exit 14 after printing when more customers than that change segment), SEGFLOW_IMPACT_ARGS
# (more arguments for every `segflow impact`, e.g. `--no-sample`).
set -uo pipefail

base="${1:?usage: segflow-impact.sh BASE PIPELINE...}"
shift
segflow="${SEGFLOW:-segflow}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

status=0
n=0
for pipeline in "$@"; do
    n=$((n + 1))
    args=(impact "$pipeline" --base "$base" --out "$work/impact-$n" --quiet)
    if [[ -n "${SEGFLOW_IMPACT_GATE:-}" ]]; then
        args+=(--fail-if-moved-above "$SEGFLOW_IMPACT_GATE")
    fi
    # shellcheck disable=SC2206 # extra arguments are split as words on purpose
    args+=(${SEGFLOW_IMPACT_ARGS:-})
    "$segflow" "${args[@]}" >/dev/null 2>"$work/stderr-$n"
    code=$?
    if [[ -f "$work/impact-$n/impact.md" ]]; then
        cat "$work/impact-$n/impact.md"
        echo
    else
        # No impact (the base does not parse, a source is missing): say why in the comment.
        echo "## segflow impact: \`$pipeline\`"
        echo
        echo "segflow could not compare this pipeline with \`$base\` (exit $code):"
        echo
        echo '```'
        cat "$work/stderr-$n"
        echo '```'
        echo
    fi
    if [[ $code -ne 0 && $status -eq 0 ]]; then
        status=$code
    fi
done
exit "$status"
