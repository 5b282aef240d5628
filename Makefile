# Shortcuts for people who have make; dev.py is the real thing (it needs only Python).
.PHONY: run test lint bench
run:
	python3 dev.py run
test:
	python3 dev.py test
lint:
	python3 dev.py lint
bench:
	python3 dev.py bench
