"""The DeepSeek-VL use-case taxonomy as data, and its tools (`vlcurate taxonomy`).

deepseek_vl.yaml (Table 3 of the paper: 8 main, 19 secondary, 88 tertiary categories), tree (load
a taxonomy YAML safely, validate it, query the tree), changes (diff two versions, migrate labels
through moved_from), cli (validate, show, diff, migrate, stats), labeler (the two fastText models
that give a sample its main category and leaf, with the review threshold) and labeler_cli (train,
predict), langid (language id with fastText's lid.176), mix (a dataset's labels per main category
against a target mix), and desk/ (the editors' review desk, `vlcurate review`: its queue, decisions
log, web app, apply and the Label Studio round trip). See docs/taxonomy.md.
"""
