"""The rule language: YAML rule files and rule test files in, compiled RuleSets and
positioned problems (`file:line:column: message`) out.

loader.py reads files all or nothing; yamlnodes.py keeps every node's position; clauses.py,
operands.py, find.py and sweeps.py parse the parts of a rule; fieldcheck.py checks names
against spec.py's tables; schema.py renders the JSON Schema; casefile.py and cases.py read
and run `*.test.yaml`. It may import the rules package's shared modules (model, spec,
suggest, cron) and evaluation/ (a rule compiles into what evaluation runs), never the other
way round.
"""
