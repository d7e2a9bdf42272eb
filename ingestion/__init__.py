"""Getting data in: the event collector (HTTP -> Kafka) and the landing jobs (Kafka -> lake)."""
