# paygate: `make run` starts paygate locally, `make test` runs the whole test suite.
# Both install what they need first (scripts/bootstrap), so they work on a fresh clone.
export SAM_CLI_TELEMETRY := 0
.PHONY: setup run test lint sam-validate sam-build bench

setup:
	@scripts/bootstrap

run: setup
	.venv/bin/python -m paygate_dev.serve $(ARGS)

test: setup
	.venv/bin/python -m pytest -n 2 --dist loadfile

lint: setup
	.venv/bin/ruff check .

sam-validate:
	@scripts/bootstrap --sam
	.venv-sam/bin/sam validate --lint

sam-build:
	@scripts/bootstrap --sam
	PATH="$(CURDIR)/.venv-sam/bin:$$PATH" .venv-sam/bin/sam build --parallel

bench: setup
	.venv/bin/python -m bench
