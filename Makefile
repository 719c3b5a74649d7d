# screenpop: `make run` serves the demo; `make test` runs the whole suite.
# Any Python >= 3.11 on PATH will do: python3 first, then the newest named one.
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; \
	done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The lowest-bounds environment: every direct dependency at the lower bound pyproject.toml allows.
LOWEST := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed
# The image's Python and platform, for the lock file.
LOCK_PLATFORM := --python-version 3.11 --python-platform x86_64-manylinux_2_28

.PHONY: install run test test-lowest lint typecheck docs bench bench-ab bench-sources lock constraints clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "no Python >= 3.11 found on PATH (set PYTHON=...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	SCREENPOP_LOG_JSON=$${SCREENPOP_LOG_JSON:-0} $(BIN)/screenpop serve --demo --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check app telephony tests bench migrations
	$(BIN)/ruff format --check app telephony tests bench

typecheck: $(STAMP)
	$(BIN)/mypy app telephony bench

# The browser tests' accessibility checker (axe-core), from the npm registry.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $(NODE_STAMP)

# The suite with the newest allowed versions (.venv), then once more with the lowest ones.
test: lint typecheck $(NODE_STAMP)
	$(BIN)/pytest -q -p no:cacheprovider
	$(MAKE) test-lowest

$(LOWEST_STAMP): pyproject.toml constraints/lowest.txt
	@test -n "$(PYTHON)" || { echo "no Python >= 3.11 found on PATH (set PYTHON=...)"; exit 2; }
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install --quiet --upgrade pip
	$(LOWEST)/bin/pip install --quiet -c constraints/lowest.txt -e '.[dev]'
	touch $(LOWEST_STAMP)

# The lowest bounds are checked by the suites that exercise the bounded libraries on the
# server side (the event path, customers, live delivery, users, the API documents); the
# browser, SIP and end-to-end process suites drive the same app and add no library of their own.
LOWEST_TESTS ?= tests/calls tests/customers tests/live tests/users tests/telephony \
	tests/test_hot_pool.py tests/ops/test_api_docs.py tests/ops/test_dependencies.py \
	--deselect tests/calls/test_durability.py --deselect tests/calls/test_demo_centre.py
test-lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/pytest -q -p no:cacheprovider $(LOWEST_TESTS)

# Maintainer targets (need network access to PyPI): refresh the image's lock file and the
# lowest-bounds constraints after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --quiet \
		$(LOCK_PLATFORM) -o constraints/locked.txt

constraints: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --resolution lowest-direct --upgrade --quiet \
		--python-version 3.11 -o constraints/lowest.txt

# The docs site (docs/, mkdocs.yml) into build/site; broken links and anchors fail it.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# A/B of the latency scenario against another revision: make bench-ab REV=main [BENCH_ARGS=--quick]
bench-ab: $(STAMP)
	@test -n "$(REV)" || { echo "usage: make bench-ab REV=<git revision> [BENCH_ARGS='--quick --rounds 5']"; exit 2; }
	$(BIN)/python -m bench --ab $(REV) $(BENCH_ARGS)

# Does a live source (50 ms, or hanging) delay the agent's pop? See bench/sources.py.
bench-sources: $(STAMP)
	$(BIN)/python -m bench.sources

clean:
	rm -rf $(VENV) $(LOWEST) *.egg-info .pytest_cache .mypy_cache .ruff_cache screenpop.db*
