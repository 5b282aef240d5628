"""Rule evaluation: one event and a RuleSet in, a Plan (which rules fire, the one update)
out, with the reasons when someone asks.

engine.py makes the plan from program.py's compiled predicates over facts.py; conditions.py
and verdicts.py interpret a rule's tree to explain it; actions.py and merge.py turn fired
rules into one update; dates.py, values.py, fields.py, texts.py, patterns.py and
templates.py are what conditions and actions read and compute with. It imports the rules
package's shared modules (model, spec, suggest, cron), never language/.
"""
