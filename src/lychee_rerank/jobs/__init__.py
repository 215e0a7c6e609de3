"""Offline jobs over many queries: batch reranking (:mod:`.batch`), evaluation
(:mod:`.eval`) and score-threshold choice (:mod:`.thresholds`)."""
