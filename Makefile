VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo_out

.PHONY: venv demo test bench lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: venv
	$(VENV)/bin/vsearch data synth --out $(DEMO_DIR)/screen --size 128 --overwrite
	$(VENV)/bin/vsearch data describe $(DEMO_DIR)/screen
	rm -rf $(DEMO_DIR)/results $(DEMO_DIR)/results-next $(DEMO_DIR)/study
	$(VENV)/bin/vsearch run search_spaces/demo.yaml --results $(DEMO_DIR)/results
	$(VENV)/bin/vsearch study studies/demo.yaml --results $(DEMO_DIR)/study
	$(VENV)/bin/vsearch report $(DEMO_DIR)/results
	$(VENV)/bin/vsearch report $(DEMO_DIR)/study
	$(VENV)/bin/vsearch recommend $(DEMO_DIR)/results --budget 24
	@echo "synthetic screen: $(DEMO_DIR)/screen   search: $(DEMO_DIR)/results   study: $(DEMO_DIR)/study"
	@echo "report: $(DEMO_DIR)/study/report.html (the generalisation matrix; open it in a browser)"
	@echo "search report (trials and the recommended mix): $(DEMO_DIR)/results/report.html"

test: venv
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q --durations=12

bench: venv
	$(PY) benchmarks/data_io.py
	$(PY) benchmarks/evaluate.py
	$(PY) benchmarks/calibration.py
	$(PY) benchmarks/train_throughput.py --preset cpu
	$(PY) benchmarks/learning.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) $(DEMO_DIR)
