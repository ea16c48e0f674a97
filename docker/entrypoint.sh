#!/bin/sh
# Container entrypoint. SageMaker runs the image with the argument `serve`: start the multi-model
# contract on SAGEMAKER_BIND_TO_PORT (8080 when unset). Any other argument runs as a command.
set -e
app="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${1:-serve}" = "serve" ]; then
  [ "$#" -gt 0 ] && shift
  exec node "$app/dist/src/cli/main.js" serve --mode sagemaker "$@"
fi
exec "$@"
