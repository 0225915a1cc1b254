"""What the experts do on a user's own run: router statistics of a trained model over data
(``collect``), their report and figures (``report``), and training curves from ``metrics.jsonl``
(``curves``)."""
