"""Workflows: rules and rounds whose decisions are ordinary, reviewable commits.

Annotation rounds (`review`: the review queue and auto-accept; `select`: frames for people to label;
`predictions`: a model's output as one commit), field rules (`repeats`, `sequences`) and the
sensitive-species and people `policy` that exports and loaders apply. Internal: reach them through
Dataset and Store.
"""
