"""Field workflows on top of the store: repeat detections, sequence labels and smoothing, the
sensitive-species and people policy. Each is a rule whose decisions are ordinary, reviewable commits.
"""
