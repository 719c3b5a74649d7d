# screenpop: `make run` serves the demo; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck bench bench-ab bench-sources clean

$(STAMP): pyproject.toml
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

test: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

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
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache screenpop.db*
